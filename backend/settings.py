"""Rochdale settings, read once from the environment.

Every knob is an environment variable with a default that is safe for local use. Production variables are
listed in docs/operations.md; `manage.py check --deploy` passes with them set.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from importlib.metadata import version as package_version
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)
_secret = os.environ.get("DJANGO_SECRET_KEY", "")
if not _secret:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set and DJANGO_DEBUG is off: refusing to start with a guessable key. "
            "Set DJANGO_SECRET_KEY to a long random value (see docs/operations.md)."
        )
    # Only ever reached with DEBUG on, i.e. on a developer's machine.
    _secret = "insecure-local-development-key-do-not-use-in-production-rochdale"
SECRET_KEY = _secret

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
# Where people reach the API from outside: links in messages (a guest's trip link) are made with it.
ROCHDALE_PUBLIC_URL = env_str("ROCHDALE_PUBLIC_URL", "http://localhost:8000")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Django's admin, whose site signs staff in through /account/login/ with their second factor.
    "backend.accounts.admin_config.SecondFactorAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "pgtrigger",
    # Second factor (TOTP) for directors and staff on the board, the members' portal and the admin.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_prometheus",
    "corsheaders",
    "backend.accounts",
    "backend.fares",
    "backend.cards",
    "backend.compliance",
    "backend.organisations",
    "backend.notifications",
    "dispatch",
    "governance",
    "mobile_api",
    "dispatch.livemap",
]

MIDDLEWARE = [
    # Probes first: /api/v1/health/live and /ready answer before any host check, since a kubelet or a load
    # balancer sends its own address as Host (docs/operations.md, "Health").
    "backend.health.HealthProbeMiddleware",
    # Prometheus scrapes a pod by its address too; the metrics guard decides (docs/operations.md, "Metrics").
    "backend.views_metrics.MetricsScrapeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # A request id for every log line and the X-Request-ID answer header (docs/operations.md, "Logs").
    "backend.request_context.RequestContextMiddleware",
    # Outermost: a request whose database connection died runs once more where that is safe.
    "mobile_api.db_retry.DatabaseRetryMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of every message: Accept-Language, else the signed-in user's setting (docs/languages.md).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Pages signed in by session: the account's language before the browser's (docs/languages.md).
    "backend.accounts.languages.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "backend.urls"
ASGI_APPLICATION = "backend.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASE_URL = env_str("DATABASE_URL", "postgis://postgres@localhost:5432/rochdale")
# Under ASGI every request runs in a context of its own, so Django's persistent connections are never
# reused: each REST request would open (and leak until garbage collection) a PostgreSQL connection. A
# psycopg pool per process hands connections out and takes them back at the end of each request or socket
# command instead. The servers turn it on (infra/bin/run.sh, the container image, the benchmarks); it is off
# by default for code that runs Django in one thread of its own (the test suite, shell, management
# commands), where DATABASE_CONN_MAX_AGE applies.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 0)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=0 if DATABASE_POOL_MAX_SIZE else env_int("DATABASE_CONN_MAX_AGE", 60)
    ),
}
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"].setdefault("OPTIONS", {})
if DATABASE_POOL_MAX_SIZE:
    # A database restart kills every pooled connection, and the pool only learns so on use. With health
    # checks on, the pool checks each connection as it hands it out (psycopg_pool's check_connection: one
    # empty query) and replaces a dead one; one that dies under a request is retried by
    # mobile_api/db_retry.py where that is safe (docs/operations.md, "Database restarts").
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env_float("DATABASE_POOL_TIMEOUT_S", 10.0),
        "max_idle": 60,
    }
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", "") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://localhost:6379/0")
# Any node of a Redis Cluster (redis://host:port): our own clients (live dispatch state, presence, tickets,
# throttles, heartbeats) then use the cluster; the channel layer, the cache and Celery stay on REDIS_URL.
ROCHDALE_REDIS_CLUSTER_URL = env_str("ROCHDALE_REDIS_CLUSTER_URL", "")
# Connections of each process's shared asyncio Redis client; callers beyond it wait up to the timeout.
ROCHDALE_REDIS_POOL_SIZE = env_int("ROCHDALE_REDIS_POOL_SIZE", 32)
ROCHDALE_REDIS_POOL_TIMEOUT_S = env_float("ROCHDALE_REDIS_POOL_TIMEOUT_S", 5.0)
# A server process sends the location fixes that arrive within this window (ms) to Redis in one pipeline: at
# a fix every 4 s per driver a loop turn holds one or two, and the round trip costs more than the fixes
# (make bench-e2e: 10 ms cut the servers' CPU per fix from 689 to 563 µs). Each fix, and its push to the
# rider, waits up to that long; 0 sends each loop turn's fixes at once.
ROCHDALE_FIX_BATCH_MS = env_float("ROCHDALE_FIX_BATCH_MS", 10.0)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "rochdale",
    }
}

CHANNEL_LAYERS = {
    "default": {
        # The pub/sub layer is several times faster than the core layer on these machines (docs/dispatch.md)
        # and we only ever send to groups of live sockets, never to durable channels.
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNEL_LAYER_PREFIX", "rochdale")},
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env_list(
    "DJANGO_PASSWORD_HASHERS",
    [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)

LANGUAGE_CODE = "en"
# English and Spanish are complete; Bengali, French and Haitian Creole have catalogues in progress
# (docs/languages.md says how to add one). Codes in error bodies never change with the language.
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("bn", "বাংলা"),
    ("fr", "Français"),
    ("ht", "Kreyòl ayisyen"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One sign-in page for the board, the members' portal and (for staff) the admin: backend/accounts/web.py.
LOGIN_URL = "/account/login/"
TIME_ZONE = env_str("ROCHDALE_TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# Uploaded files (drivers' and vehicles' documents, docs/compliance.md): on local disk under
# ROCHDALE_MEDIA_ROOT by default; ROCHDALE_DOCUMENT_STORAGE=s3 keeps them in an S3-compatible bucket instead
# (needs django-storages[s3], not installed by default). Never served by a static route: only through the
# API's short-lived signed links.
ROCHDALE_MEDIA_ROOT = Path(env_str("ROCHDALE_MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
MEDIA_ROOT = ROCHDALE_MEDIA_ROOT
_document_storage: dict[str, object] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {
        "location": ROCHDALE_MEDIA_ROOT,
        "file_permissions_mode": 0o600,
        "directory_permissions_mode": 0o700,
    },
}
if env_str("ROCHDALE_DOCUMENT_STORAGE", "local") == "s3":
    _document_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("ROCHDALE_DOCUMENT_S3_BUCKET", ""),
            "endpoint_url": env_str("ROCHDALE_DOCUMENT_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("ROCHDALE_DOCUMENT_S3_REGION", "") or None,
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
elif env_str("ROCHDALE_DOCUMENT_STORAGE", "local") != "local":
    raise ImproperlyConfigured('ROCHDALE_DOCUMENT_STORAGE must be "local" or "s3"')
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "documents": _document_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ROCHDALE_MAX_BODY_BYTES", 64 * 1024)

# The real client (docs/operations.md, "Behind a proxy"): how many proxies in front of the servers append
# to X-Forwarded-For. 0 (no proxy): the header is never read. 1 behind the bundled nginx: only its last
# entry, the address nginx saw. The ASGI server (backend/serve.py) and DRF (NUM_PROXIES) both use it.
ROCHDALE_TRUSTED_PROXY_HOPS = env_int("ROCHDALE_TRUSTED_PROXY_HOPS", 0)
if ROCHDALE_TRUSTED_PROXY_HOPS < 0:
    raise ImproperlyConfigured("ROCHDALE_TRUSTED_PROXY_HOPS must be 0 or more")

REST_FRAMEWORK = {
    # SimpleJWT's access tokens, plus the signed-in user's language for the answer (docs/languages.md).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "backend.accounts.authentication.LanguageJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "mobile_api.schema.autoschema.RochdaleAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "mobile_api.pagination.CursorPage",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "mobile_api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Every signed-in route: `user` requests per account (keyed on the user id, not the address: many
    # accounts behind one address each keep their own). The public routes set their own per-IP throttles.
    "DEFAULT_THROTTLE_CLASSES": ["backend.accounts.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "sign_in_ip": env_str("ROCHDALE_SIGN_IN_RATE_IP", "30/min"),
        "register": env_str("ROCHDALE_REGISTER_RATE", "20/hour"),
        "user": env_str("ROCHDALE_USER_RATE", "600/min"),
    },
    "NUM_PROXIES": ROCHDALE_TRUSTED_PROXY_HOPS,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("ROCHDALE_ACCESS_TOKEN_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("ROCHDALE_REFRESH_TOKEN_DAYS", 30)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "SIGNING_KEY": SECRET_KEY,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Rochdale API",
    "DESCRIPTION": "The mobile and board API of a drivers' cooperative. See docs/api.md.",
    "VERSION": package_version("rochdale"),  # one version for the package and its API (CHANGELOG.md)
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ReachabilityEnum": ["ok", "down"],
        "MemberStatusEnum": "governance.models.MemberStatus",
        "ProposalKindEnum": "governance.models.ProposalKind",
        "ProposalStatusEnum": "governance.models.ProposalStatus",
        "VoteChoiceEnum": "governance.models.VoteChoice",
        "SeatSourceEnum": "governance.models.SeatSource",
        "DividendBasisEnum": "governance.models.DividendBasis",
        "ElectionStatusEnum": "mobile_api.serializers_governance.ELECTION_STATUSES",
        "CountMethodEnum": "mobile_api.serializers_governance.COUNT_METHODS",
        "DocumentStatusEnum": "backend.compliance.models.DocumentStatus",
        "DocumentSubjectEnum": "backend.compliance.models.DocumentSubject",
        "TripStatusEnum": "mobile_api.serializers_organisations.TRIP_STATUSES",
        "OrganisationKindEnum": "backend.organisations.models.OrganisationKind",
        "OrganisationRoleEnum": "backend.organisations.models.OrganisationRole",
        "BookingRuleEnum": "backend.organisations.models.BookingRule",
        "InvoiceStatusEnum": "dispatch.models.InvoiceStatus",
        "InvoiceLineKindEnum": "dispatch.money.invoices.LINE_KINDS",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
    ],
}

# Celery: Redis broker; a task is acknowledged only after it ran, and requeued if its worker died.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_S", 3600)}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "idempotency-keys-expire": {"task": "mobile_api.tasks.expire_idempotency_keys", "schedule": 3600.0},
    "fare-estimates-expire": {"task": "dispatch.tasks.purge_expired_estimates", "schedule": 900.0},
    "dispatch-sweep": {"task": "dispatch.tasks.sweep_dispatch", "schedule": 2.0},
    "presence-sweep": {
        "task": "dispatch.tasks.sweep_presence",
        "schedule": env_float("ROCHDALE_PRESENCE_SWEEP_S", 5.0),
    },
    "abandoned-trips": {"task": "dispatch.tasks.end_abandoned_trips", "schedule": 60.0},
    "locations-flush": {"task": "dispatch.tasks.flush_locations", "schedule": 2.0},
    "location-retention": {"task": "dispatch.tasks.apply_location_retention", "schedule": 3600.0},
    "ledger-verify": {"task": "backend.fares.tasks.verify_ledger", "schedule": 3600.0},
    "weekly-floor": {"task": "dispatch.tasks.post_weekly_top_ups", "schedule": 3600.0},
    # After the floor: the payout run posts the week's top-ups itself before it reads a balance
    # (docs/payouts.md); hourly, it also retries payouts whose outcome was unknown, with their same keys.
    "driver-payouts": {"task": "dispatch.tasks.run_driver_payouts", "schedule": 3600.0},
    # Often: a capture whose worker died is retried within its lease (provider timeout + 5 s) plus this.
    "payment-capture-retry": {
        "task": "backend.fares.tasks.retry_failed_captures",
        "schedule": env_float("ROCHDALE_PAYMENT_RETRY_SWEEP_S", 15.0),
    },
    # Card holds whose answer was lost, whose request died before its trip, or whose trip owes nothing.
    "card-holds-sweep": {"task": "backend.cards.tasks.sweep_card_holds", "schedule": 60.0},
    # Authorisations at Stripe that no hold row records (a request rolled back after Stripe held the money).
    "card-orphaned-authorisations": {
        "task": "backend.cards.tasks.release_orphaned_authorisations",
        "schedule": 900.0,
    },
    # Reminders before a document's expiry (docs/compliance.md): once a document and day, so running it
    # hourly loses no day to a beat that was down at one hour and sends nothing twice.
    "document-expiry-reminders": {
        "task": "backend.compliance.tasks.send_expiry_reminders",
        "schedule": 3600.0,
    },
    # Notifications whose first delivery failed (after their backoff) or whose enqueue was lost.
    "notifications-deliver-due": {
        "task": "backend.notifications.tasks.deliver_due_notifications",
        "schedule": 30.0,
    },
    "governance-close-proposals": {"task": "governance.tasks.close_due_proposals", "schedule": 5.0},
    # Tells the voter roll when an election's ballot opens (docs/notifications.md); deduplicated per election.
    "governance-notify-ballots-open": {"task": "governance.tasks.notify_ballots_open", "schedule": 60.0},
    "governance-close-elections": {"task": "governance.tasks.close_due_elections", "schedule": 30.0},
    # Recurring rides' occurrences within the horizon become reservations (docs/recurring.md); one the
    # booking refused is tried again at the next run while it is still far enough ahead.
    "recurring-rides-materialise": {"task": "dispatch.tasks.materialise_recurring_rides", "schedule": 900.0},
    # Last month's invoices to the organisations that pay for their trips (docs/billing.md): hourly, and
    # idempotent (one invoice per organisation and month), so a beat that was down loses no month.
    "organisation-invoices": {"task": "dispatch.tasks.issue_organisation_invoices", "schedule": 3600.0},
    # Rides booked ahead (docs/scheduling.md): often, since a reservation's lead time is its road ETA plus
    # the board's margin and a pass late by this much makes the driver that much later.
    "reservations-dispatch": {"task": "dispatch.tasks.dispatch_due_reservations", "schedule": 15.0},
    "reservations-reminders": {"task": "dispatch.tasks.send_reservation_reminders", "schedule": 60.0},
    # Card holds of rides booked ahead, once their pickup is within three days (docs/payments.md).
    "reservation-holds": {"task": "dispatch.tasks.place_reservation_holds", "schedule": 900.0},
}

# Security headers. HTTPS is terminated at a proxy (nginx, an ingress) that sets X-Forwarded-Proto; the header
# is believed only when such a proxy is trusted, or a client could claim HTTPS with a made-up one.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if ROCHDALE_TRUSTED_PROXY_HOPS else None
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health(/live|/ready)?$", r"^metrics$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True


# Logs (docs/operations.md, "Logs"): every line carries the request, user, trip and region it is about when
# known (LogContextFilter); the console's format, JSON lines or plain, is ROCHDALE_LOG_FORMAT's (set below).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"()": "backend.logs.PlainLogFormatter"},
        "json": {"()": "backend.logs.JsonLogFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["log_context"],
            "stream": sys.stderr,
        }
    },
    "root": {"handlers": ["console"], "level": env_str("ROCHDALE_LOG_LEVEL", "INFO")},
    "filters": {
        "log_context": {"()": "backend.request_context.LogContextFilter"},
        # channels-redis logs a traceback a second while Redis is down: once per outage is enough.
        "redis_outage_once": {"()": "backend.redis.RepeatedRedisErrorFilter"},
    },
    "loggers": {
        # Only through the root's console: Django's default "django" handler would print each line again.
        "django": {"level": "INFO"},
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        "channels_redis.pubsub": {"filters": ["redis_outage_once"]},
        # WeasyPrint (receipt and statement PDFs) narrates every step at INFO; fontTools every subset.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# --- Rochdale domain settings (documented in docs/operations.md) ---
ROCHDALE_AUTO_APPROVE_DRIVERS = env_bool("ROCHDALE_AUTO_APPROVE_DRIVERS", False)
ROCHDALE_CURRENCY = env_str("ROCHDALE_CURRENCY", "USD")
ROCHDALE_WS_TICKET_TTL_S = env_int("ROCHDALE_WS_TICKET_TTL_S", 30)

# Sign-in throttling: per phone and per IP, atomic Redis counters; lockout after repeated failures.
ROCHDALE_SIGN_IN_MAX_FAILURES = env_int("ROCHDALE_SIGN_IN_MAX_FAILURES", 5)
ROCHDALE_SIGN_IN_LOCKOUT_S = env_int("ROCHDALE_SIGN_IN_LOCKOUT_S", 900)
ROCHDALE_SIGN_IN_IP_MAX_FAILURES = env_int("ROCHDALE_SIGN_IN_IP_MAX_FAILURES", 50)

# The second factor on the web sign-in (docs/sign-in.md): wrong TOTP codes per account before its code step
# locks, and for how long; how long a proven password waits for its code (or first enrolment) before the
# person must start again; the issuer authenticator apps show next to the code.
ROCHDALE_SECOND_FACTOR_MAX_FAILURES = env_int("ROCHDALE_SECOND_FACTOR_MAX_FAILURES", 5)
ROCHDALE_SECOND_FACTOR_LOCKOUT_S = env_int("ROCHDALE_SECOND_FACTOR_LOCKOUT_S", 900)
ROCHDALE_SECOND_FACTOR_STEP_S = env_int("ROCHDALE_SECOND_FACTOR_STEP_S", 600)
OTP_TOTP_ISSUER = env_str("ROCHDALE_TOTP_ISSUER", "Rochdale co-op")
# Staff see that a person has a device in the admin, never its secret (nor its QR code).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# ETA model shared by estimates and dispatch (dispatch/matching/eta.py documents the numbers).
ROCHDALE_ETA_CIRCUITY = env_float("ROCHDALE_ETA_CIRCUITY", 1.3)
ROCHDALE_ETA_SPEED_PROFILE_KMH = [
    float(v) for v in env_list("ROCHDALE_ETA_SPEED_PROFILE_KMH", [])
]  # empty: the model's documented default profile

# Road routing (docs/roads.md). ROCHDALE_ROUTER: "auto" (Valhalla in-process when ROCHDALE_ROADS_CITY's tiles
# exist under ROCHDALE_ROADS_DIR, else the model), "valhalla", "valhalla-http" (ROCHDALE_VALHALLA_URL, a
# valhalla_service or compatible server) or "model" (the ETA model above). A point farther than
# ROCHDALE_ROAD_SNAP_RADIUS_M from any road is off the graph and is routed by the model.
ROCHDALE_ROUTER = env_str("ROCHDALE_ROUTER", "auto")
ROCHDALE_ROADS_DIR = Path(env_str("ROCHDALE_ROADS_DIR", str(BASE_DIR / "var" / "roads")))
ROCHDALE_ROADS_CITY = env_str("ROCHDALE_ROADS_CITY", "demo")
ROCHDALE_VALHALLA_URL = env_str("ROCHDALE_VALHALLA_URL", "http://127.0.0.1:8002")
ROCHDALE_ROUTER_TIMEOUT_S = env_float("ROCHDALE_ROUTER_TIMEOUT_S", 2.0)
ROCHDALE_ROAD_SNAP_RADIUS_M = env_int("ROCHDALE_ROAD_SNAP_RADIUS_M", 250)
# Dispatch ranks this many nearest free drivers (straight line) by road ETA, in one matrix call; docs/roads.md
# shows how rarely the road's best driver lies beyond them.
ROCHDALE_ROAD_CANDIDATES = env_int("ROCHDALE_ROAD_CANDIDATES", 16)
# How often a trip's countdown on `driver.location` is recomputed by road (counted down in between).
ROCHDALE_REMAINING_ETA_REFRESH_S = env_float("ROCHDALE_REMAINING_ETA_REFRESH_S", 30.0)
# Fixes farther apart than this split a trail for map matching; the gap is bridged by the road route.
ROCHDALE_MATCH_GAP_M = env_float("ROCHDALE_MATCH_GAP_M", 500.0)

ROCHDALE_ESTIMATE_TTL_S = env_int("ROCHDALE_ESTIMATE_TTL_S", 300)
ROCHDALE_IDEMPOTENCY_KEY_TTL_H = env_int("ROCHDALE_IDEMPOTENCY_KEY_TTL_H", 24)

# Dispatch defaults; the board's dispatch policy versions override the fairness part.
ROCHDALE_OFFER_TIMEOUT_S = env_int("ROCHDALE_OFFER_TIMEOUT_S", 15)
ROCHDALE_SEARCH_BUDGET_S = env_int("ROCHDALE_SEARCH_BUDGET_S", 180)
ROCHDALE_SEARCH_RADIUS_M = env_int("ROCHDALE_SEARCH_RADIUS_M", 8000)
ROCHDALE_BATCH_WINDOW_MS = env_int("ROCHDALE_BATCH_WINDOW_MS", 0)
ROCHDALE_PRESENCE_GRACE_S = env_int("ROCHDALE_PRESENCE_GRACE_S", 30)
# Server leases (docs/dispatch.md): a socket server renews its lease every RENEW_S; one not renewed for
# LEASE_S is dead, and the presence sweep ends its sockets through the disconnect grace.
ROCHDALE_SERVER_LEASE_S = env_float("ROCHDALE_SERVER_LEASE_S", 10.0)
ROCHDALE_SERVER_LEASE_RENEW_S = env_float("ROCHDALE_SERVER_LEASE_RENEW_S", 3.0)
# Frame budgets per socket (docs/dispatch.md): sustained frames/s and burst. Apps send a fix about every 4 s
# (the demo's fastest simulated drivers every ~1 s); the fix burst holds the backlog of a minute without
# signal (older fixes are refused as too old anyway); a socket past the flood ceiling is closed (4429).
ROCHDALE_WS_FIX_RATE_PER_S = env_float("ROCHDALE_WS_FIX_RATE_PER_S", 2.0)
ROCHDALE_WS_FIX_BURST = env_float("ROCHDALE_WS_FIX_BURST", 20.0)
ROCHDALE_WS_COMMAND_RATE_PER_S = env_float("ROCHDALE_WS_COMMAND_RATE_PER_S", 5.0)
ROCHDALE_WS_COMMAND_BURST = env_float("ROCHDALE_WS_COMMAND_BURST", 20.0)
ROCHDALE_WS_FLOOD_FRAMES_PER_S = env_float("ROCHDALE_WS_FLOOD_FRAMES_PER_S", 20.0)
ROCHDALE_WS_FLOOD_BURST = env_float("ROCHDALE_WS_FLOOD_BURST", 200.0)
ROCHDALE_FIX_MAX_AGE_S = env_int("ROCHDALE_FIX_MAX_AGE_S", 30)
ROCHDALE_MAX_PLAUSIBLE_SPEED_MPS = env_float("ROCHDALE_MAX_PLAUSIBLE_SPEED_MPS", 70.0)
ROCHDALE_OFF_TRIP_FIX_RETENTION_H = env_int("ROCHDALE_OFF_TRIP_FIX_RETENTION_H", 48)
ROCHDALE_TRIP_TRACE_RETENTION_D = env_int("ROCHDALE_TRIP_TRACE_RETENTION_D", 90)
# Abandoned trips (docs/dispatch.md): a trip whose driver has had no socket and no fix for this long is ended
# by the system; an in-progress one is completed on its trail only if the trail ends this near the dropoff.
ROCHDALE_ABANDONED_TRIP_AFTER_S = env_int("ROCHDALE_ABANDONED_TRIP_AFTER_S", 300)
ROCHDALE_ABANDONED_TRIP_DROPOFF_RADIUS_M = env_int("ROCHDALE_ABANDONED_TRIP_DROPOFF_RADIUS_M", 300)

# Real-time dispatch (docs/dispatch.md): the region this process serves (one dispatch worker per region),
# how often a trip with nobody to offer it to is searched again, and how many candidates a round ranks.
ROCHDALE_DISPATCH_REGION = env_str("ROCHDALE_DISPATCH_REGION", "default")
ROCHDALE_DISPATCH_RETRY_S = env_float("ROCHDALE_DISPATCH_RETRY_S", 5.0)

# Payments: "cash", "test" (no network) or "stripe" (cards, backend/cards/; docs/payments.md); another
# provider plugs in through backend/fares/payments.py.
ROCHDALE_PAYMENT_PROVIDER = env_str("ROCHDALE_PAYMENT_PROVIDER", "test")
# Stripe: the secret key, the API's address (localstripe in tests and `make run`), the webhook endpoint's
# signing secret, and the publishable key the apps get with a card setup.
STRIPE_API_KEY = env_str("STRIPE_API_KEY", "")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY", "")
# How long one provider call may take; a capture's processing lease is this plus 5 s (payments.py).
ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S = env_float("ROCHDALE_PAYMENT_PROVIDER_TIMEOUT_S", 20.0)

# Email (receipts, docs/receipts.md): Django's SMTP backend, to a local SMTP server unless told otherwise.
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_S", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "receipts@rochdale.localhost")
# SMS (docs/notifications.md): `log` (the default) writes messages to the log; `twilio` sends them with
# the account below (TWILIO_API_BASE points the adapter elsewhere, e.g. at a test double).
ROCHDALE_SMS_PROVIDER = env_str("ROCHDALE_SMS_PROVIDER", "log")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")
# Push (docs/notifications.md). Web Push signs with the VAPID key below, or one generated on first use into
# the key file; `sub` is the contact push services may write to. Mobile push: FCM with a service
# account's JSON key, APNs with the team's .p8 key; without a key each writes its messages to the log.
ROCHDALE_VAPID_PRIVATE_KEY = env_str("ROCHDALE_VAPID_PRIVATE_KEY", "")
ROCHDALE_VAPID_KEY_FILE = env_str("ROCHDALE_VAPID_KEY_FILE", str(BASE_DIR / "var" / "vapid_private.pem"))
ROCHDALE_VAPID_SUBJECT = env_str("ROCHDALE_VAPID_SUBJECT", "mailto:push@rochdale.localhost")
ROCHDALE_WEB_PUSH_TTL_S = env_int("ROCHDALE_WEB_PUSH_TTL_S", 12 * 3600)
# The push services a browser's subscription may point at (the server POSTs there; ".x" allows subdomains),
# and whether plain http is accepted (a local push receiver only).
ROCHDALE_WEB_PUSH_HOSTS = env_list(
    "ROCHDALE_WEB_PUSH_HOSTS",
    [
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        ".push.services.mozilla.com",
        ".notify.windows.com",
        ".push.apple.com",
    ],
)
ROCHDALE_WEB_PUSH_ALLOW_HTTP = env_bool("ROCHDALE_WEB_PUSH_ALLOW_HTTP", False)
ROCHDALE_FCM_SERVICE_ACCOUNT_FILE = env_str("ROCHDALE_FCM_SERVICE_ACCOUNT_FILE", "")
ROCHDALE_FCM_SERVICE_ACCOUNT_JSON = env_str("ROCHDALE_FCM_SERVICE_ACCOUNT_JSON", "")
ROCHDALE_FCM_PROJECT_ID = env_str("ROCHDALE_FCM_PROJECT_ID", "")
ROCHDALE_FCM_BASE_URL = env_str("ROCHDALE_FCM_BASE_URL", "https://fcm.googleapis.com")
ROCHDALE_APNS_KEY_FILE = env_str("ROCHDALE_APNS_KEY_FILE", "")
ROCHDALE_APNS_KEY = env_str("ROCHDALE_APNS_KEY", "")
ROCHDALE_APNS_KEY_ID = env_str("ROCHDALE_APNS_KEY_ID", "")
ROCHDALE_APNS_TEAM_ID = env_str("ROCHDALE_APNS_TEAM_ID", "")
ROCHDALE_APNS_TOPIC = env_str("ROCHDALE_APNS_TOPIC", "")
ROCHDALE_APNS_HOST = env_str("ROCHDALE_APNS_HOST", "https://api.push.apple.com")
# The name receipts and statements are issued in, and an address that gets a copy of every receipt (the
# co-op's books; empty: none).
ROCHDALE_COOPERATIVE_NAME = env_str("ROCHDALE_COOPERATIVE_NAME", "Rochdale drivers' cooperative")
ROCHDALE_RECEIPT_COPY_TO = env_str("ROCHDALE_RECEIPT_COPY_TO", "")

# Driver payouts (docs/payouts.md): the weekly run's method ("auto": Stripe for drivers who onboarded, else
# their bank account on file; "stripe"; "ach"), whether the beat job runs it, the provider's timeout and how
# many unanswered attempts before staff must look, where bank files are written (full account numbers:
# keep the directory private), and the Stripe Connect onboarding's country and the app's return links.
ROCHDALE_PAYOUT_METHOD = env_str("ROCHDALE_PAYOUT_METHOD", "auto")
ROCHDALE_PAYOUTS_AUTO_RUN = env_bool("ROCHDALE_PAYOUTS_AUTO_RUN", True)
ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S = env_float("ROCHDALE_PAYOUT_PROVIDER_TIMEOUT_S", 20.0)
ROCHDALE_PAYOUT_MAX_ATTEMPTS = env_int("ROCHDALE_PAYOUT_MAX_ATTEMPTS", 8)
ROCHDALE_PAYOUT_FILES_DIR = Path(env_str("ROCHDALE_PAYOUT_FILES_DIR", str(BASE_DIR / "var" / "payouts")))
ROCHDALE_STRIPE_CONNECT_COUNTRY = env_str("ROCHDALE_STRIPE_CONNECT_COUNTRY", "US")
ROCHDALE_STRIPE_CONNECT_RETURN_URL = env_str(
    "ROCHDALE_STRIPE_CONNECT_RETURN_URL", "https://rochdale.localhost/driver/payouts/stripe-return"
)
ROCHDALE_STRIPE_CONNECT_REFRESH_URL = env_str(
    "ROCHDALE_STRIPE_CONNECT_REFRESH_URL", "https://rochdale.localhost/driver/payouts/stripe-refresh"
)
# The co-op's ACH origination agreement: its bank (immediate destination) and ids; empty: no bank files.
ROCHDALE_ACH = {
    "destination_routing_number": env_str("ROCHDALE_ACH_DESTINATION_ROUTING_NUMBER", ""),
    "destination_name": env_str("ROCHDALE_ACH_DESTINATION_NAME", ""),
    "origin_id": env_str("ROCHDALE_ACH_ORIGIN_ID", ""),
    "origin_name": env_str("ROCHDALE_ACH_ORIGIN_NAME", "ROCHDALE COOP"),
    "company_name": env_str("ROCHDALE_ACH_COMPANY_NAME", "ROCHDALE COOP"),
    "company_id": env_str("ROCHDALE_ACH_COMPANY_ID", ""),
    "odfi": env_str("ROCHDALE_ACH_ODFI", ""),
    "entry_description": env_str("ROCHDALE_ACH_ENTRY_DESCRIPTION", "PAYOUT"),
}

# Compliance (docs/compliance.md): the regulator profile (`none`, `nyc_tlc`, or the path of a co-op's own
# JSON profile) and the co-op's base licence number where the regulator gives one (e.g. a TLC base number).
ROCHDALE_REGULATOR_PROFILE = env_str("ROCHDALE_REGULATOR_PROFILE", "none")
ROCHDALE_REGULATOR_BASE_NUMBER = env_str("ROCHDALE_REGULATOR_BASE_NUMBER", "")
# The licence number of the high-volume FHV service itself (New York: `HV0005` and the like), the first
# column of the TLC's trip-record file (docs/compliance.md, "Trip records for the regulator").
ROCHDALE_REGULATOR_HVFHS_LICENSE_NUMBER = env_str("ROCHDALE_REGULATOR_HVFHS_LICENSE_NUMBER", "")
# Drivers' document uploads: the largest file taken, and how long a signed link to a file works.
ROCHDALE_DOCUMENT_MAX_BYTES = env_int("ROCHDALE_DOCUMENT_MAX_BYTES", 10 * 1024 * 1024)
ROCHDALE_DOCUMENT_LINK_TTL_S = env_int("ROCHDALE_DOCUMENT_LINK_TTL_S", 300)
# Recurring rides (docs/recurring.md): how many days ahead their occurrences are booked (never more than the
# board's reservations.max_ahead_days).
ROCHDALE_RECURRING_HORIZON_DAYS = env_int("ROCHDALE_RECURRING_HORIZON_DAYS", 3)

# Safety (docs/safety.md). Share-trip links: how long a new one works unless the rider asks for less (at most
# the maximum), and how many may work at once for one trip; the per-IP rate of the link's JSON and page
# (a page polls about every 10 s).
ROCHDALE_SHARE_LINK_TTL_S = env_int("ROCHDALE_SHARE_LINK_TTL_S", 4 * 3600)
ROCHDALE_SHARE_LINK_MAX_TTL_S = env_int("ROCHDALE_SHARE_LINK_MAX_TTL_S", 24 * 3600)
ROCHDALE_SHARE_LINKS_PER_TRIP = env_int("ROCHDALE_SHARE_LINKS_PER_TRIP", 3)
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["shared_trip_ip"] = env_str("ROCHDALE_SHARED_TRIP_RATE_IP", "60/min")
ROCHDALE_SHARE_PAGE_POLL_S = env_float("ROCHDALE_SHARE_PAGE_POLL_S", 10.0)
# Ride PIN: wrong PINs a driver may try before the start is locked (the rider then issues a new PIN).
ROCHDALE_RIDE_PIN_MAX_FAILURES = env_int("ROCHDALE_RIDE_PIN_MAX_FAILURES", 3)
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(
    {
        "SafetyAlertStatusEnum": "dispatch.safety_serializers.ALERT_STATUSES",
        "SafetyAlertRoleEnum": "dispatch.models.SafetyAlertRole",
        "SafetyAlertSourceEnum": "dispatch.models.SafetyAlertSource",
        "SharedTripStatusEnum": "dispatch.safety_serializers.SHARED_TRIP_STATUSES",
    }
)

# Governance bylaws (docs/governance.md explains each default).
ROCHDALE_SHARE_PRICE_MINOR = env_int("ROCHDALE_SHARE_PRICE_MINOR", 10000)
ROCHDALE_SHARE_INSTALMENT_RATE = env_str("ROCHDALE_SHARE_INSTALMENT_RATE", "0.10")
ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL = env_str("ROCHDALE_SHARE_REPAYMENT_ON_WITHDRAWAL", "paid")
ROCHDALE_BOARD_TERM_DAYS = env_int("ROCHDALE_BOARD_TERM_DAYS", 730)
ROCHDALE_DIVIDEND_MIN_CASH_SHARE = env_str("ROCHDALE_DIVIDEND_MIN_CASH_SHARE", "0.20")
# Proposal decision rules per kind: quorum (share of eligible voters who must vote, abstentions count) and
# threshold (share of yes among yes + no), exact fractions such as "2/3". Defaults and the strictness of each
# comparison are in governance/tally.py; docs/governance.md explains them.
ROCHDALE_PROPOSAL_RULES = {
    kind: {
        "quorum": env_str(f"ROCHDALE_{kind.upper()}_QUORUM", quorum),
        "threshold": env_str(f"ROCHDALE_{kind.upper()}_THRESHOLD", threshold),
    }
    for kind, quorum, threshold in (
        ("fare_policy", "1/2", "1/2"),
        ("bylaw", "1/4", "2/3"),
        ("dividend", "1/10", "1/2"),
        ("general", "1/10", "1/2"),
    )
}

# The members' portal (docs/portal.md): how fast one member may post or edit comments in proposals'
# discussions, a burst rate and a daily one (per account, on the same Redis counters as the API's limits).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["portal_comment"] = env_str("ROCHDALE_PORTAL_COMMENT_RATE", "5/min")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["portal_comment_daily"] = env_str(
    "ROCHDALE_PORTAL_COMMENT_DAILY_RATE", "60/day"
)

# The co-op's public fairness figures (docs/figures.md): how often one address may read them (no sign-in),
# and the fewest drivers a figure may be computed over before it is withheld (so no driver can be singled
# out of a small co-op's month).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["coop_figures"] = env_str("ROCHDALE_COOP_FIGURES_RATE", "60/min")
ROCHDALE_FIGURES_MIN_DRIVERS = env_int("ROCHDALE_FIGURES_MIN_DRIVERS", 5)

# GDAL < 3.9 cannot block file/network access while parsing spatial references. We never parse a spatial
# reference or WKT a client sends: places arrive as two validated numbers and become Points in SRID 4326.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

# --- Operations (docs/operations.md) ---
# Metrics: /metrics answers only a scraper from these networks, or one sending this bearer token.
ROCHDALE_METRICS_TOKEN = env_str("ROCHDALE_METRICS_TOKEN", "")
ROCHDALE_METRICS_ALLOWED_NETWORKS = env_list("ROCHDALE_METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
# Heartbeats of the Celery worker, beat and the dispatch worker: written every interval, and readiness
# fails once one is older than the stale age.
ROCHDALE_HEARTBEAT_INTERVAL_S = env_float("ROCHDALE_HEARTBEAT_INTERVAL_S", 10.0)
ROCHDALE_HEARTBEAT_STALE_S = env_float("ROCHDALE_HEARTBEAT_STALE_S", 30.0)
# Logs: JSON lines in production, readable lines on a developer's machine; Sentry only when a DSN is set.
ROCHDALE_LOG_FORMAT = env_str("ROCHDALE_LOG_FORMAT", "plain" if DEBUG else "json")
if ROCHDALE_LOG_FORMAT not in LOGGING["formatters"]:
    raise ImproperlyConfigured(f"ROCHDALE_LOG_FORMAT must be json or plain, not {ROCHDALE_LOG_FORMAT!r}")
LOGGING["handlers"]["console"]["formatter"] = ROCHDALE_LOG_FORMAT
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    from backend.logs import sentry_init

    sentry_init(
        SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"),
        release=f"rochdale@{package_version('rochdale')}",
    )
# CORS for the co-op's own web apps: only these origins, only the API.
CORS_ALLOWED_ORIGINS = env_list("ROCHDALE_CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (
    "accept",
    "accept-language",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ["x-request-id", "retry-after"]
# Backups (manage.py backup / restore) and the audit chain's signed head, exported on a schedule.
ROCHDALE_BACKUP_DIR = Path(env_str("ROCHDALE_BACKUP_DIR", str(BASE_DIR / "var" / "backups")))
ROCHDALE_AUDIT_HEAD_DIR = Path(env_str("ROCHDALE_AUDIT_HEAD_DIR", str(BASE_DIR / "var" / "audit-heads")))
ROCHDALE_AUDIT_HEAD_KEY_FILE = env_str(
    "ROCHDALE_AUDIT_HEAD_KEY_FILE", str(BASE_DIR / "var" / "audit_head_signing.pem")
)
CELERY_BEAT_SCHEDULE.update(
    {
        # Expired JWT blacklist entries and sessions, daily (issue 18).
        "tokens-and-sessions-purge": {
            "task": "backend.accounts.tasks.purge_expired_tokens_and_sessions",
            "schedule": 86400.0,
        },
        # The audit chain's head, signed, for staff to publish (docs/operations.md, "Backups").
        "audit-head-export": {"task": "governance.tasks.export_audit_head", "schedule": 3600.0},
    }
)
