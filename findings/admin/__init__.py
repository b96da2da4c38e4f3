"""The findings workflow in the admin (DESIGN §8): triage, remediation and approvals,
configuration and logs, the weekly review.

- ``findings`` (+ ``triage``): the triage queue, a finding's evidence and steps;
- ``remediation`` (+ ``approvals``): remediation items, maker-checker approvals;
- ``settings``: the findings policy, budgets, webhook endpoints;
- ``logs``: finding activity, detector runs, transitions, notification deliveries;
- ``review``: the weekly review page (its URL is in ``findings.admin_urls``).

Every write of the workflow goes through ``findings.services``; these modules only ask
for input, call a service and report its answer.
"""

from findings.admin import findings, logs, remediation, settings  # noqa: F401
