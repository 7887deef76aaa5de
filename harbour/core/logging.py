"""Structured logs: one JSON object a line, with the request id and clinic id of the request.

- `RequestContextMiddleware` (first in MIDDLEWARE) gives every request an id (the proxy's
  X-Request-ID when it is a plain token, else a new one; echoed in the response), keeps it in a
  context variable while the request runs, and writes one access line at the end: method,
  path without the query string, status, duration, request id, clinic id.
- `ContextFilter` (on the handler) copies the context onto every record emitted meanwhile, so
  a warning from deep inside a view carries the same request id as the access line.
- `JsonFormatter` writes records as JSON. An exception is written as its type and the
  file:line of its frames, never its text: exception messages may quote payload values
  (names, health card numbers), and logs carry ids and event codes only.
- `SecurityEventFilter` (on the handler) shortens Django's refusals of suspicious requests to
  the name of the check: their text quotes the sender's headers.
- `scope(clinic_id=...)` gives the worker's loops the same context per message, delivery or
  download, so their lines name the clinic too.
- `bind(clinic_id=...)` lets a view that finds its clinic in another way (the intake endpoint
  finds it from the key) name it for the access line; `describe(...)` adds a view's own ids and
  codes to that line (the intake's event code, message id, reason), so a call is one line.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import os
import re
import time
import traceback
import uuid

import orjson
from django.utils.functional import LazyObject, empty

access_log = logging.getLogger("harbour.access")

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("harbour_log_context", default=None)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Liveness and readiness probes arrive every few seconds: logged at DEBUG to keep INFO readable.
QUIET_PATHS = frozenset({"/healthz", "/readyz"})
CONTEXT_FIELDS = ("request_id", "clinic_id")


def current() -> dict:
    """The logging context of the running request (empty outside one)."""
    return _context.get() or {}


@contextlib.contextmanager
def scope(**fields):
    """A logging context for work outside a request (a worker's message, delivery or download):
    the records emitted inside carry these ids, as a request's carry its request and clinic ids."""
    token = _context.set({name: value for name, value in fields.items() if value is not None})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields) -> None:
    """Add fields (ids only) to the running request's context; outside a request, nothing."""
    context = _context.get()
    if context is not None:
        context.update({name: value for name, value in fields.items() if value is not None})


def describe(**fields) -> bool:
    """Ids and codes the running request's access line adds (`name=value` in the text, keys in
    JSON). False outside a request: the caller then logs them itself."""
    context = _context.get()
    if context is None:
        return False
    context.setdefault("details", {}).update(fields)
    return True


def details_text(fields: dict) -> str:
    """` name=value` for each field: how the access line writes a view's details."""
    return "".join(f" {name}={value}" for name, value in fields.items())


def request_id_from(value: str | None) -> str:
    value = (value or "").strip()
    return value if _REQUEST_ID.match(value) else uuid.uuid4().hex


def _clinic_id(request, context: dict):
    """The clinic of the request if something already looked it up: never a query of our own."""
    if context.get("clinic_id") is not None:
        return context["clinic_id"]
    clinic = request.__dict__.get("clinic")
    if isinstance(clinic, LazyObject):  # the tenancy middleware's lazy lookup
        clinic = None if clinic._wrapped is empty else clinic._wrapped
    pk = getattr(clinic, "pk", None)
    if isinstance(pk, int):
        return pk
    user = request.__dict__.get("_cached_user")  # set once AuthenticationMiddleware's lazy user is read
    return getattr(user, "clinic_id", None)


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        context = {"request_id": request.request_id}
        token = _context.set(context)
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = request.request_id
            return response
        finally:
            context["clinic_id"] = _clinic_id(request, context)
            # Decoded %0A and friends must not start a new line in plain-text logs.
            path = _CONTROL.sub("?", request.path)[:300]
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            details = context.get("details") or {}
            access_log.log(
                logging.DEBUG if path in QUIET_PATHS else logging.INFO,
                "%s %s %s %.1fms%s", request.method, path, status, duration_ms,
                details_text(details),
                extra={"method": request.method, "path": path, "status": status, "duration_ms": duration_ms, **details},
            )
            _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the request context on every record (`-` outside a request) for both formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current()
        request = getattr(record, "request", None)
        if not context and request is not None:
            # django.request logs 4xx/5xx after the middleware has finished: the request knows.
            context = {"request_id": getattr(request, "request_id", None)}
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                value = context.get(name)
                setattr(record, name, "-" if value is None else value)
        return True


class SecurityEventFilter(logging.Filter):
    """Django's `django.security.*` records (a disallowed Host header, too many form fields) quote
    what the sender sent and carry a traceback, at ERROR, for a client's mistake: keep one
    warning that names the check, not the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security."):
            record.msg, record.args = "request refused: %s", (record.name.rsplit(".", 1)[-1],)
            record.exc_info = record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}
# Objects some loggers attach (django.request's request, whose repr has the query string).
_DROPPED = frozenset({"request", "server_time"})


def safe_exception(exc_info) -> dict:
    """An exception's type and where it went, without its message (see the module docstring)."""
    exc_type, exc, tb = exc_info
    frames = [f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)][-15:]
    return {"type": f"{exc_type.__module__}.{exc_type.__qualname__}" if exc_type else "", "frames": frames}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for name, value in vars(record).items():
            if name in _STANDARD or name.startswith("_") or name in _DROPPED:
                continue
            if name in CONTEXT_FIELDS and value == "-":
                continue
            entry[name] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = safe_exception(record.exc_info)
        return orjson.dumps(entry).decode()
