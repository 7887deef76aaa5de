"""Harbour's settings, read from the environment with safe defaults.

The embedded default is a SQLite file under var/ with developer secrets generated there.
HARBOUR_ENV=production refuses to start without SECRET_KEY, HARBOUR_ENCRYPTION_KEYS and
HARBOUR_ALLOWED_HOSTS.
"""
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from harbour.core.env import env_bool, env_int, env_list, env_str, required_secret

BASE_DIR = Path(__file__).resolve().parent
# A source checkout keeps its state in <checkout>/var; an installed package in ./var.
_CHECKOUT = BASE_DIR.parent if (BASE_DIR.parent / "pyproject.toml").exists() else Path.cwd()
VAR_DIR = Path(env_str("HARBOUR_VAR_DIR") or _CHECKOUT / "var").resolve()

PRODUCTION = env_str("HARBOUR_ENV", "development") == "production"
DEBUG = env_bool("HARBOUR_DEBUG", False)

SECRET_KEY = required_secret("SECRET_KEY", PRODUCTION, VAR_DIR)
HARBOUR_ENCRYPTION_KEYS = [
    key.strip() for key in required_secret("HARBOUR_ENCRYPTION_KEYS", PRODUCTION, VAR_DIR).split(",") if key.strip()
]

if PRODUCTION:
    ALLOWED_HOSTS = env_list("HARBOUR_ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("HARBOUR_ALLOWED_HOSTS must be set when HARBOUR_ENV=production.")
else:
    ALLOWED_HOSTS = env_list("HARBOUR_ALLOWED_HOSTS", ["*"])

# The address Harbour is reached at, used to show the Request URL when a clinic has no domain.
HARBOUR_PUBLIC_URL = env_str("HARBOUR_PUBLIC_URL", "http://localhost:8000").rstrip("/")
# Largest inbound bundle accepted, enforced while reading the body.
HARBOUR_MAX_BUNDLE_BYTES = env_int("HARBOUR_MAX_BUNDLE_BYTES", 25 * 1024 * 1024)
# How long the worker sleeps when it finds nothing to do.
HARBOUR_WORKER_IDLE_SECONDS = float(env_str("HARBOUR_WORKER_IDLE_SECONDS", "0.5"))

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
    "django.middleware.security.SecurityMiddleware",
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
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=env_int("HARBOUR_DB_CONN_MAX_AGE", 60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # WAL lets readers work while the intake writes; IMMEDIATE transactions take the write
        # lock up front so concurrent writers wait (timeout) instead of failing mid-transaction.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        config["CONN_MAX_AGE"] = 0 if config["NAME"] == ":memory:" else config["CONN_MAX_AGE"]
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
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("HARBOUR_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("HARBOUR_CSRF_TRUSTED_ORIGINS", [])

# Logs carry ids and event codes only; never names, health card numbers, bodies or secrets.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("HARBOUR_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
