"""Reading and parsing an inbound body within a size cap, without ever touching request.body.

request.body would load everything and trip DATA_UPLOAD_MAX_MEMORY_SIZE; here the declared
length is checked first, then the stream is read in chunks and reading stops past the cap.
"""
import json

import orjson

CHUNK_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"


class BodyTooLarge(Exception):
    pass


class BodyNotJSON(Exception):
    """`message` is a plain English sentence for the OperationOutcome."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def declared_length(request) -> int | None:
    """Content-Length as a number, or None when absent or not a number."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


def _stream(request):
    # Django's WSGIRequest reads nothing without a Content-Length; a chunked body is still
    # readable from wsgi.input, which the server (gunicorn) de-chunks until EOF.
    if declared_length(request) is None and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        stream = request.META.get("wsgi.input")
        if stream is not None:
            return stream
    return request


def read_body(request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than `limit` bytes are declared or read."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge
    stream = _stream(request)
    chunks, size = [], 0
    while True:
        chunk = stream.read(min(CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(raw: bytes):
    """The JSON value of a body, or BodyNotJSON saying what is wrong.

    orjson first (fast). What it refuses but is still JSON (a UTF-8 byte order mark, numbers
    beyond a double, lone surrogate escapes) is read by the standard library, so no body that
    is JSON gets a 400.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyNotJSON(f"The body is not valid UTF-8 (invalid byte at offset {exc.start}).") from None
    if not text.strip():
        raise BodyNotJSON("The body is empty.")
    try:
        return json.loads(text[1:] if raw.startswith(_BOM) else text)
    except (ValueError, RecursionError):
        pass
    raise BodyNotJSON(f"The body is not valid JSON (line {error.lineno}, column {error.colno}).")
