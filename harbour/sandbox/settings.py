"""The Ocean sandbox's own settings: its own database, URLs and cookies.

It runs the same code base as Harbour but is a different server, reached by Harbour only over
HTTP at the address configured as the clinic's Ocean server.
"""
from harbour.settings import *  # noqa: F403
from harbour.settings import VAR_DIR, database_from_url, env_str, env_int

ROOT_URLCONF = "harbour.sandbox.urls"
DATABASES = {
    "default": database_from_url(env_str("SANDBOX_DATABASE_URL") or f"sqlite:///{VAR_DIR / 'sandbox.sqlite3'}",
                                 name="SANDBOX_DATABASE_URL")
}
# No clinics, and its own /healthz (Harbour's probes read Harbour's worker heartbeats).
HARBOUR_ONLY_MIDDLEWARE = {"harbour.clinics.tenancy.ClinicMiddleware", "harbour.core.health.ProbeMiddleware"}
MIDDLEWARE = [m for m in MIDDLEWARE if m not in HARBOUR_ONLY_MIDDLEWARE]  # noqa: F405
LANGUAGE_CODE = "en"
# English only, like Ocean: the browser's language never switches Django's own messages to French.
LANGUAGES = [("en", "English")]
HARBOUR_WORKER_APPS = ["harbour.sandbox"]
# Harbour and the sandbox both run on localhost in development: cookies must not collide.
SESSION_COOKIE_NAME = "sandbox_sessionid"
CSRF_COOKIE_NAME = "sandbox_csrftoken"
LANGUAGE_COOKIE_NAME = "sandbox_language"
LOGIN_URL = "sandbox:login"
LOGIN_REDIRECT_URL = "sandbox:home"
LOGOUT_REDIRECT_URL = "sandbox:login"
# The address the sandbox is reached at: the root of its naming systems and $letter URLs.
SANDBOX_PUBLIC_URL = env_str("SANDBOX_PUBLIC_URL", "http://localhost:8081").rstrip("/")
# Compresses Ocean's retry schedule: 60 means one hour passes in one minute.
SANDBOX_TIME_SCALE = float(env_str("SANDBOX_TIME_SCALE", "1"))
SANDBOX_TOKEN_LIFETIME_SECONDS = env_int("SANDBOX_TOKEN_LIFETIME_SECONDS", 3600)
# How long a webhook delivery waits for the integration's endpoint before counting a failure.
SANDBOX_DELIVERY_TIMEOUT_SECONDS = float(env_str("SANDBOX_DELIVERY_TIMEOUT_SECONDS", "10"))


def _admin_token() -> str:
    """The JSON admin API's token: SANDBOX_ADMIN_TOKEN, else one generated once under var/."""
    import secrets

    path = VAR_DIR / "sandbox-admin-token"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


# Protects /sandbox-api/ (header X-Sandbox-Admin-Token); `harbour sandbox admin_token` prints it.
SANDBOX_ADMIN_TOKEN = env_str("SANDBOX_ADMIN_TOKEN") or _admin_token()
