"""gunicorn's configuration for `harbour serve` (loaded with `-c python:harbour.core.gunicorn_conf`).

`harbour serve` passes bind, workers, threads and max-requests on the command line; this file
holds what does not change per run: the log format of gunicorn's own messages (JSON lines like
Django's when HARBOUR_LOG_FORMAT is json, the production default) and no gunicorn access log
(Harbour's RequestContextMiddleware writes one access line per request, with its request id).
"""
import os
import socket
import struct

worker_class = "gthread"
timeout = 60
graceful_timeout = 10
keepalive = 5
accesslog = None
# Headers larger than this are refused before Django sees them (gunicorn's defaults, stated).
limit_request_line = 4094
limit_request_fields = 100
# gunicorn 25.1+ opens a control socket for `gunicornc`, by default one path per user
# ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl): a second `harbour serve` would take it over and
# remove it when it stops. Harbour does not use it; older gunicorns ignore this unknown name.
control_socket_disable = True

# A client that stops sending in the middle of a request (headers or body: "slowloris") would
# hold one of the worker's threads for ever: gunicorn reads with blocking sockets and no timeout,
# so a few dozen such connections stop the server for everyone, Ocean included. Accepted sockets
# inherit SO_RCVTIMEO from the listening socket (Linux), so any read that waits longer than this
# fails and gunicorn closes that connection; a slow but moving upload is not affected (the limit
# is per read, not per request). A buffering reverse proxy in front does the same, and more.
READ_TIMEOUT_SECONDS = int(os.environ.get("HARBOUR_READ_TIMEOUT_SECONDS") or 30)


def when_ready(server):
    timeval = struct.pack("ll", READ_TIMEOUT_SECONDS, 0)
    for listener in server.LISTENERS:
        try:
            listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        except OSError:  # a platform without this option: rely on the reverse proxy
            server.log.warning("no read timeout on %s: run Harbour behind a reverse proxy", listener)


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
