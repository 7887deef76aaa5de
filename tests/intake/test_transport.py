"""Bodies that do not arrive whole or plain, over real HTTP: broken chunked encodings, a client
that stops early, fewer bytes than Content-Length, compressed bodies. None is stored; each is
a 400 or 415 OperationOutcome counted as a rejection, never a 500 or a traceback."""
import gzip
import logging

import pytest
from django.test import Client

from harbour.intake.models import InboundMessage
from tests.intake.intake_client import HOST, KEY_META, REAL_BUNDLE, URL, give_key, ocean, outcome, post
from tests.intake.live_http import base_url, gunicorn_url, raw_post  # noqa: F401 (fixtures)

KEY_HEADER = "Referral-Integration-API-Key"
CUT_SHORT = "The body could not be read completely: the connection ended before the end of the body."
BAD_CHUNKS = "The body could not be read completely: its chunked transfer encoding is invalid."


@pytest.fixture
def key(clinic):
    return give_key(clinic)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def assert_refused_quietly(clinic, caplog, status, reason):
    assert not InboundMessage.objects.exists()
    settings_row = ocean(clinic)
    assert (settings_row.rejected_count, settings_row.last_rejected_status) == (1, status)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    [line] = [r for r in caplog.records if r.name == "harbour.access"]
    assert line.reason == reason and f" {status} " in line.getMessage()


# --- Chunked bodies, de-chunked by gunicorn's own reader -------------------------------------------


def test_a_whole_chunked_body_is_stored(gunicorn_url, clinic, key):
    body = chunk(REAL_BUNDLE[:1000]) + chunk(REAL_BUNDLE[1000:]) + b"0\r\n\r\n"
    status, answer = raw_post(gunicorn_url, {KEY_HEADER: key, "Transfer-Encoding": "chunked"}, body)

    assert status == 200, answer
    assert bytes(InboundMessage.objects.get().raw) == REAL_BUNDLE


@pytest.mark.parametrize("body", [
    b"zz\r\n" + REAL_BUNDLE,  # a chunk size that is not hexadecimal
    chunk(REAL_BUNDLE) + b"1;=\r\nx\r\n0\r\n\r\n",  # a malformed chunk extension
    b"%x\r\n%sXY0\r\n\r\n" % (len(REAL_BUNDLE), REAL_BUNDLE),  # a chunk not followed by CRLF
], ids=["size", "extension", "terminator"])
def test_an_invalid_chunked_encoding_is_a_400(gunicorn_url, clinic, key, caplog, body):
    caplog.set_level(logging.INFO)
    status, answer = raw_post(gunicorn_url, {KEY_HEADER: key, "Transfer-Encoding": "chunked"}, body)

    assert status == 400, answer
    assert answer["issue"] == [{"severity": "error", "code": "invalid", "diagnostics": BAD_CHUNKS}]
    assert_refused_quietly(clinic, caplog, 400, "incomplete")


@pytest.mark.parametrize("body", [
    b"%x\r\n%s" % (len(REAL_BUNDLE) + 100, REAL_BUNDLE),  # inside a chunk
    chunk(REAL_BUNDLE),  # after a whole chunk, before the last one
    chunk(REAL_BUNDLE) + b"0\r\n",  # after the last chunk, before its trailer section ends
], ids=["in-a-chunk", "no-last-chunk", "no-final-crlf"])
def test_a_chunked_body_cut_short_by_the_client_is_a_400_though_what_came_is_json(gunicorn_url, clinic, key, caplog,
                                                                                  body):
    caplog.set_level(logging.INFO)
    status, answer = raw_post(gunicorn_url, {KEY_HEADER: key, "Transfer-Encoding": "chunked"}, body)

    assert status == 400, answer
    assert answer["issue"] == [{"severity": "error", "code": "invalid", "diagnostics": CUT_SHORT}]
    assert_refused_quietly(clinic, caplog, 400, "incomplete")


STALLED = "The body could not be read completely: the client stopped sending before the end of the body."


@pytest.mark.parametrize("error, diagnostics", [
    (ConnectionResetError("reset by peer"), CUT_SHORT),
    (TimeoutError("timed out"), STALLED),  # `harbour serve` sets a read timeout on its sockets
])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_socket_error_while_reading_is_a_400(clinic, key, caplog, error, diagnostics, framing):
    # With a Content-Length, Django turns the OSError from wsgi.input into UnreadablePostError;
    # a chunked body is read from wsgi.input itself, where the OSError arrives as it is.
    caplog.set_level(logging.INFO)

    class Failing:
        def read(self, size=-1):
            raise error

        readline = read

    framed = {"CONTENT_LENGTH": str(len(REAL_BUNDLE))} if framing == "content-length" else {
        "HTTP_TRANSFER_ENCODING": "chunked"}
    response = Client(HTTP_HOST=HOST).generic(
        "POST", URL, b"", content_type="application/fhir+json", **{"wsgi.input": Failing(), **framed, KEY_META: key},
    )
    assert response.status_code == 400
    assert outcome(response) == ("error", "invalid", diagnostics)
    assert_refused_quietly(clinic, caplog, 400, "incomplete")


# --- Fewer bytes than Content-Length ---------------------------------------------------------------


@pytest.mark.parametrize("server", ["base_url", "gunicorn_url"])
def test_a_body_shorter_than_its_content_length_is_a_400_though_it_is_json(request, transactional_db, clinic, key, caplog,
                                                                         server):
    # transactional_db named here: the server is chosen in the body, after the key is saved.
    caplog.set_level(logging.INFO)
    url = request.getfixturevalue(server)
    declared = len(REAL_BUNDLE) + 100
    status, answer = raw_post(url, {KEY_HEADER: key, "Content-Length": str(declared)}, REAL_BUNDLE)

    assert status == 400, answer
    assert answer["issue"][0]["diagnostics"] == (
        f"The body is shorter than its Content-Length ({len(REAL_BUNDLE)} of {declared} bytes).")
    assert_refused_quietly(clinic, caplog, 400, "short-body")


def test_a_body_of_exactly_its_content_length_is_stored(gunicorn_url, clinic, key):
    status, answer = raw_post(gunicorn_url, {KEY_HEADER: key, "Content-Length": str(len(REAL_BUNDLE))}, REAL_BUNDLE)
    assert status == 200, answer
    assert bytes(InboundMessage.objects.get().raw) == REAL_BUNDLE


# --- Content-Encoding ------------------------------------------------------------------------------

COMPRESSED = ("error", "not-supported",
              "Compressed bodies are not accepted: send the Bundle as plain JSON, with no Content-Encoding "
              "(as Ocean does).")


@pytest.mark.parametrize("encoding, body", [
    ("gzip", gzip.compress(REAL_BUNDLE)),
    ("br", REAL_BUNDLE),  # labelled compressed, plain in fact: still refused, never guessed
    ("GZIP, identity", gzip.compress(REAL_BUNDLE)),
    ("deflate", REAL_BUNDLE),
])
def test_a_content_encoding_is_a_415(clinic, key, caplog, encoding, body):
    caplog.set_level(logging.INFO)
    response = post(body, key, HTTP_CONTENT_ENCODING=encoding)

    assert response.status_code == 415
    assert outcome(response) == COMPRESSED
    assert_refused_quietly(clinic, caplog, 415, "content-encoding")


def test_a_content_encoding_is_refused_before_the_body_is_read(clinic, key):
    class Unread:
        consumed = False

        def read(self, size=-1):
            Unread.consumed = True
            return b""

        readline = read

    response = Client(HTTP_HOST=HOST).generic(
        "POST", URL, b"", content_type="application/fhir+json",
        **{"wsgi.input": Unread(), "CONTENT_LENGTH": "100", "HTTP_CONTENT_ENCODING": "gzip", KEY_META: key},
    )
    assert response.status_code == 415
    assert not Unread.consumed


@pytest.mark.parametrize("encoding", ["identity", " Identity ", ""])
def test_identity_or_an_empty_content_encoding_is_plain(clinic, key, encoding):
    assert post(REAL_BUNDLE, key, HTTP_CONTENT_ENCODING=encoding).status_code == 200
    assert bytes(InboundMessage.objects.get().raw) == REAL_BUNDLE


def test_a_gzip_body_over_real_http_is_a_415(base_url, clinic, key):
    status, answer = raw_post(
        base_url, {KEY_HEADER: key, "Content-Encoding": "gzip", "Content-Length": str(len(gzip.compress(REAL_BUNDLE)))},
        gzip.compress(REAL_BUNDLE),
    )
    assert status == 415
    assert answer["issue"][0]["diagnostics"] == COMPRESSED[2]
    assert not InboundMessage.objects.exists()
