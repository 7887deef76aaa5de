"""Harbour's settings, read from the environment with safe defaults.

The embedded default is a SQLite file under var/ with developer secrets generated there.
HARBOUR_ENV=production refuses to start without SECRET_KEY, HARBOUR_ENCRYPTION_KEYS and
HARBOUR_ALLOWED_HOSTS, and with HARBOUR_DEBUG on. A value Harbour cannot use (a malformed key,
a database URL it does not support) stops the start with ImproperlyConfigured naming the
variable, which `harbour` prints as one line.
"""
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from harbour.core.env import env_bool, env_int, env_list, env_str, fernet_keys, required_secret

BASE_DIR = Path(__file__).resolve().parent
# A source checkout keeps its state in <checkout>/var; an installed package in ./var.
_CHECKOUT = BASE_DIR.parent if (BASE_DIR.parent / "pyproject.toml").exists() else Path.cwd()
VAR_DIR = Path(env_str("HARBOUR_VAR_DIR") or _CHECKOUT / "var").resolve()

PRODUCTION = env_str("HARBOUR_ENV", "development") == "production"
DEBUG = env_bool("HARBOUR_DEBUG", False)
if PRODUCTION and DEBUG:
    # Django's debug pages show settings, SQL and patients' data to whoever causes an error.
    raise ImproperlyConfigured("HARBOUR_DEBUG cannot be on when HARBOUR_ENV=production; unset HARBOUR_DEBUG")

SECRET_KEY = required_secret("SECRET_KEY", PRODUCTION, VAR_DIR)
# Checked here, so a malformed key stops the start instead of the first secret saved (a 500).
HARBOUR_ENCRYPTION_KEYS = fernet_keys(
    "HARBOUR_ENCRYPTION_KEYS", required_secret("HARBOUR_ENCRYPTION_KEYS", PRODUCTION, VAR_DIR)
)

if PRODUCTION:
    ALLOWED_HOSTS = env_list("HARBOUR_ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "HARBOUR_ALLOWED_HOSTS must be set when HARBOUR_ENV=production; "
            "give the host names Harbour is reached at, comma-separated"
        )
else:
    ALLOWED_HOSTS = env_list("HARBOUR_ALLOWED_HOSTS", ["*"])

# The address Harbour is reached at, used to show the Request URL when a clinic has no domain.
HARBOUR_PUBLIC_URL = env_str("HARBOUR_PUBLIC_URL", "http://localhost:8000").rstrip("/")
# Largest inbound bundle accepted, enforced while reading the body.
HARBOUR_MAX_BUNDLE_BYTES = env_int("HARBOUR_MAX_BUNDLE_BYTES", 25 * 1024 * 1024)
# How many reverse proxies in front of Harbour to trust in X-Forwarded-For (the intake's rate
# limit counts failures per caller address; behind a proxy, 0 would lump every caller together).
HARBOUR_TRUSTED_PROXY_COUNT = env_int("HARBOUR_TRUSTED_PROXY_COUNT", 0)
# The intake's rate limit (harbour.intake.ratelimit): FAILURE_LIMIT rejected calls (401) from
# one address to one host within FAILURE_WINDOW seconds block that address on that host (429)
# for BLOCK_SECONDS.
HARBOUR_INTAKE_FAILURE_LIMIT = env_int("HARBOUR_INTAKE_FAILURE_LIMIT", 20)
HARBOUR_INTAKE_FAILURE_WINDOW = env_int("HARBOUR_INTAKE_FAILURE_WINDOW", 300)
HARBOUR_INTAKE_BLOCK_SECONDS = env_int("HARBOUR_INTAKE_BLOCK_SECONDS", 300)
# How long the worker sleeps when it finds nothing to do.
HARBOUR_WORKER_IDLE_SECONDS = float(env_str("HARBOUR_WORKER_IDLE_SECONDS", "0.5"))
# Each worker writes a heartbeat this often; /readyz fails when the newest is older than STALE.
HARBOUR_WORKER_HEARTBEAT_SECONDS = float(env_str("HARBOUR_WORKER_HEARTBEAT_SECONDS", "10"))
HARBOUR_WORKER_STALE_SECONDS = float(env_str("HARBOUR_WORKER_STALE_SECONDS", "120"))
# The outbox's retry schedule (harbour.ocean.outbox): base·2^(n-1) seconds, capped, with jitter;
# a message is dead after MAX_ATTEMPTS; one left "sending" by a killed worker is retried after LEASE.
HARBOUR_OUTBOX_BACKOFF_BASE = float(env_str("HARBOUR_OUTBOX_BACKOFF_BASE", "30"))
HARBOUR_OUTBOX_BACKOFF_CAP = float(env_str("HARBOUR_OUTBOX_BACKOFF_CAP", "3600"))
HARBOUR_OUTBOX_MAX_ATTEMPTS = env_int("HARBOUR_OUTBOX_MAX_ATTEMPTS", 10)
HARBOUR_OUTBOX_LEASE_SECONDS = float(env_str("HARBOUR_OUTBOX_LEASE_SECONDS", "300"))
# Staff may message the receiver from a copy of a referral the clinic sent (harbour.ocean.actions).
# On, as issue #5 asks; the switch is there because the contract's stance keeps sent copies
# read-only (§3.2, §5.4) and Ocean may refuse such a message with a 400 and an email to the
# clinic's administrator (§6): a clinic that meets that turns it off.
HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES = env_bool("HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES", True)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "harbour.core",
    "harbour.clinics",
    "harbour.audit",
    "harbour.intake",
    "harbour.referrals",
    "harbour.patients",
    "harbour.ocean",
    # The sandbox's tables exist here too so its tests run in one process; it is served only
    # by its own settings (harbour.sandbox.settings) against its own database.
    "harbour.sandbox",
]

# Apps whose jobs.py the worker runs (the sandbox runs its own worker with its own settings).
HARBOUR_WORKER_APPS = [app for app in INSTALLED_APPS if app.startswith("harbour.") and app != "harbour.sandbox"]

MIDDLEWARE = [
    # First: the request id and the access line cover everything below, static files included.
    "harbour.core.logging.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "harbour.core.security.SecurityHeadersMiddleware",
    "harbour.core.health.ProbeMiddleware",  # before CommonMiddleware checks the Host header
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "harbour.clinics.tenancy.ClinicMiddleware",
]

ROOT_URLCONF = "harbour.urls"
WSGI_APPLICATION = "harbour.wsgi.application"

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
                "django.template.context_processors.i18n",
                "harbour.clinics.context.clinic",
                "harbour.referrals.context.unread_referrals",
                "harbour.ocean.context.credentials_banner",
                "harbour.ocean.context.worker_banner",
            ],
        },
    },
]


SUPPORTED_DATABASES = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}


def database_from_url(url: str, name: str = "DATABASE_URL") -> dict:
    """Django's DATABASES entry for `url`, the value of the variable `name` (named in errors;
    the URL itself is never repeated: it may hold a password)."""
    scheme = url.partition("://")[0] if "://" in url else ""
    hint = "use postgresql://user:password@host:5432/name or sqlite:////absolute/path.sqlite3"
    # Health checks: a connection kept across requests is tested before reuse, so the first
    # request after a database restart does not fail on a dead socket.
    try:
        config = dj_database_url.parse(
            url, conn_max_age=env_int("HARBOUR_DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    except ImproperlyConfigured:
        raise
    except Exception:
        described = f"its scheme {scheme!r} is not one Harbour knows" if scheme.isalnum() else "it is not a database URL"
        raise ImproperlyConfigured(f"{name} cannot be read ({described}); {hint}") from None
    if config.get("ENGINE") not in SUPPORTED_DATABASES:
        raise ImproperlyConfigured(
            f"{name} names a database Harbour does not support ({scheme!r}); Harbour runs on PostgreSQL or SQLite: {hint}"
        )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        folder = Path(config["NAME"]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"cannot create the folder of the SQLite database {folder} ({exc.strerror or type(exc).__name__}); "
                f"make it writable or set {name} or HARBOUR_VAR_DIR elsewhere"
            ) from None
        # WAL lets readers work while the intake writes; IMMEDIATE transactions take the write
        # lock up front so concurrent writers wait (timeout) instead of failing mid-transaction.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": float(env_str("HARBOUR_SQLITE_TIMEOUT_SECONDS", "20")),
        }
        config["CONN_MAX_AGE"] = 0 if config["NAME"] == ":memory:" else config["CONN_MAX_AGE"]
    else:
        # psycopg prepares a statement on the server after five runs of it, and Django turns that
        # off unless told (for poolers). Only bound_cursor's statements can be prepared
        # (harbour/core/cursors.py: the intake's, the worker's plain INSERTs); Django's own
        # cursors bind on the client and never prepare.
        prepared = env_bool("HARBOUR_DB_PREPARED_STATEMENTS", True)
        config.setdefault("OPTIONS", {})["prepare_threshold"] = 5 if prepared else None
    return config


DATABASES = {"default": database_from_url(env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'harbour.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "clinics.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
TIME_ZONE = env_str("HARBOUR_TIME_ZONE", "America/Toronto")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise serves the apps' static files directly; STATIC_ROOT only for `collectstatic` setups.
STATIC_ROOT = env_str("HARBOUR_STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(env_str("HARBOUR_MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Self only, no inline script or style (the templates have none). Set to "" to send no policy.
HARBOUR_CONTENT_SECURITY_POLICY = env_str(
    "HARBOUR_CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
HARBOUR_PERMISSIONS_POLICY = env_str(
    "HARBOUR_PERMISSIONS_POLICY",
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()",
)
if PRODUCTION:
    # Behind a TLS proxy that sets X-Forwarded-Proto (README, "Running in production").
    SESSION_COOKIE_SECURE = env_bool("HARBOUR_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Sent on HTTPS responses only; one year. Subdomains are not included: clinics' hosts differ.
    SECURE_HSTS_SECONDS = env_int("HARBOUR_HSTS_SECONDS", 31536000)
# Opt-in: usually the proxy redirects. The probes stay reachable over plain HTTP.
SECURE_SSL_REDIRECT = env_bool("HARBOUR_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
CSRF_TRUSTED_ORIGINS = env_list("HARBOUR_CSRF_TRUSTED_ORIGINS", [])

# Logs carry ids and event codes only; never names, health card numbers, bodies or secrets.
# JSON lines (harbour.core.logging) by default in production, plain text in development.
HARBOUR_LOG_FORMAT = env_str("HARBOUR_LOG_FORMAT", "json" if PRODUCTION else "plain")
if HARBOUR_LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("HARBOUR_LOG_FORMAT must be json or plain; unset it or choose one of these")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "harbour.core.logging.ContextFilter"},
        "security_events": {"()": "harbour.core.logging.SecurityEventFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s clinic=%(clinic_id)s] %(message)s"},
        "json": {"()": "harbour.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": HARBOUR_LOG_FORMAT, "filters": ["context", "security_events"]},
    },
    "root": {"handlers": ["console"], "level": env_str("HARBOUR_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
