"""The registry of detection rules: finding kind → the module that detects it.

Waste detectors live in ``findings.detectors``, alert rules in ``findings.alerts``; each
module declares ``KIND``, ``DEFAULTS`` and ``detect(ctx)`` (see ``findings.detectors.base``).
Modules are named here by dotted path and imported on first use, so that a rule module
can import ``findings.detectors.base`` without an import cycle through this package.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from findings.detectors.base import Rule

RULE_MODULES: tuple[str, ...] = (
    "findings.detectors.model_overkill",
    "findings.detectors.batch_eligibility",
    "findings.detectors.prompt_caching_gap",
    "findings.detectors.orphaned_spend",
    "findings.detectors.staging_on_production_models",
    "findings.detectors.free_tier_subsidy",
    "findings.alerts.cost_drift",
    "findings.alerts.tenant_concentration",
    "findings.alerts.request_burst",
    "findings.alerts.retry_overhead",
    "findings.alerts.budgets",
)


@cache
def rules() -> dict[str, Rule]:
    """Every registered rule by its kind, in registry order."""
    registry: dict[str, Rule] = {}
    for path in RULE_MODULES:
        module = import_module(path)
        kind = str(module.KIND)
        if kind in registry:
            raise ValueError(f"two rules for kind {kind!r}: {registry[kind].__name__}, {path}")
        registry[kind] = module
    return registry


def rule_get(kind: str) -> Rule:
    """The rule of ``kind``; KeyError names the known kinds."""
    try:
        return rules()[str(kind)]
    except KeyError:
        raise KeyError(f"no rule for kind {kind!r} (known: {', '.join(rules())})") from None
