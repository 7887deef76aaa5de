"""Reading and parsing an inbound body within a size cap, without ever touching request.body.

request.body would load everything and trip DATA_UPLOAD_MAX_MEMORY_SIZE; here the declared
length is checked first, then the stream is read in chunks and reading stops past the cap.
"""
from harbour.fhir.parse import NotJSON as BodyNotJSON, parse_json  # noqa: F401 (the endpoint's names)

CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    pass


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
