"""Alert rules: conditions worth a look that are not waste by themselves (DESIGN §8).

Each module is a rule like the detectors (``KIND``, ``DEFAULTS``, ``detect(ctx)``, see
``findings.detectors.base``) and is registered in ``findings.detectors.RULE_MODULES``.
An alert is a ``Finding`` of an alert kind; its ``monthly_savings`` is the monthly cost
at stake, and the waste floor (``FindingsPolicy.min_monthly_savings``) does not apply:
each rule has its own thresholds.
"""
