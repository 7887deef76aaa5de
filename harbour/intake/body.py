"""Reading and parsing an inbound body within a size cap, without ever touching request.body.

request.body would load everything and trip DATA_UPLOAD_MAX_MEMORY_SIZE; here the declared
length is checked first, then the stream is read in chunks and reading stops past the cap.
A body that cannot be read whole (a broken chunked encoding, a connection that ends early,
fewer bytes than Content-Length) is BodyIncomplete: never stored, even when the part that
arrived happens to be JSON.
"""
from harbour.fhir.parse import NotJSON as BodyNotJSON, parse_json  # noqa: F401 (the endpoint's names)

try:  # gunicorn's body readers raise these (not OSError) for a malformed chunked encoding
    from gunicorn.http.errors import ParseException as _ServerBodyError
except ImportError:  # pragma: no cover (gunicorn is a dependency; other servers raise OSError)
    _ServerBodyError = OSError

CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyIncomplete(Exception):
    """`message` is a plain English sentence for an OperationOutcome; `reason` a log code."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.message = message
        self.reason = reason


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
    """The whole body; BodyTooLarge as soon as more than `limit` bytes are declared or read;
    BodyIncomplete when the server cannot hand it over whole or it is shorter than declared."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge
    stream = _stream(request)
    chunks, size = [], 0
    while True:
        try:
            chunk = stream.read(min(CHUNK_BYTES, limit + 1 - size))
        except (OSError, _ServerBodyError) as exc:
            # OSError: the connection failed or ended inside a chunked body (gunicorn's NoMoreData;
            # Django's UnreadablePostError). The exception's text may quote body bytes: not kept.
            raise _incomplete(exc) from None
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
    if declared is not None and size < declared:  # the server hands over what came before EOF
        raise BodyIncomplete(f"The body is shorter than its Content-Length ({size} of {declared} bytes).", "short-body")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _incomplete(exc: Exception) -> BodyIncomplete:
    # gunicorn reports a chunked body cut short by EOF as a missing terminator of under 2 bytes;
    # Django wraps the socket's OSError (a read timeout: `harbour serve`) in UnreadablePostError.
    if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
        why = "the client stopped sending before the end of the body"
    elif isinstance(exc, OSError) or len(getattr(exc, "term", b"..")) < 2:
        why = "the connection ended before the end of the body"
    else:
        why = "its chunked transfer encoding is invalid"
    return BodyIncomplete(f"The body could not be read completely: {why}.", "incomplete")
