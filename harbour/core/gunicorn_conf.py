"""gunicorn's configuration for `harbour serve` (loaded with `-c python:harbour.core.gunicorn_conf`).

`harbour serve` passes bind, workers, threads and max-requests on the command line; this file
holds what does not change per run: the log format of gunicorn's own messages (JSON lines like
Django's when HARBOUR_LOG_FORMAT is json, the production default) and no gunicorn access log
(Harbour's RequestContextMiddleware writes one access line per request, with its request id).
"""
import os

worker_class = "gthread"
timeout = 60
graceful_timeout = 10
keepalive = 5
accesslog = None
# Headers larger than this are refused before Django sees them (gunicorn's defaults, stated).
limit_request_line = 4094
limit_request_fields = 100

_production = os.environ.get("HARBOUR_ENV", "development").strip() == "production"
_format = os.environ.get("HARBOUR_LOG_FORMAT", "").strip() or ("json" if _production else "plain")

if _format == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "harbour.core.logging.JsonFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }
