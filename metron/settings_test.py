"""Test-only overrides: a fast password hasher, tasks run inline, mail kept in memory."""

from metron.settings import *  # noqa: F403
from metron.settings import Q_CLUSTER

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
# seed_demo's 90 days of usage at 1% volume: every pattern, a fraction of the time.
METRON_DEMO_USAGE_SCALE = 0.01
