"""Bytes to a JSON value, as leniently as JSON allows (pure Python, shared by the endpoint,
the worker, the outbox and `harbour inspect`, so they never disagree on what is JSON)."""
import json

import orjson

_BOM = b"\xef\xbb\xbf"


class NotJSON(Exception):
    """`message` is a plain English sentence for an OperationOutcome."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_json(raw: bytes):
    """The JSON value of a body, or NotJSON saying what is wrong.

    orjson first (fast). What it refuses but is still JSON (a UTF-8 byte order mark, numbers
    beyond a double, lone surrogate escapes) is read by the standard library, so no body that
    is JSON gets a 400.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = exc
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJSON(f"The body is not valid UTF-8 (invalid byte at offset {exc.start}).") from None
    if not text.strip():
        raise NotJSON("The body is empty.")
    try:
        return json.loads(text[1:] if bytes(raw).startswith(_BOM) else text)
    except (ValueError, RecursionError):
        pass
    raise NotJSON(f"The body is not valid JSON (line {error.lineno}, column {error.colno}).")
