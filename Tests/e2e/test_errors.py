"""Bad input gets an OpenAI-shaped error with the right status, never a crash (C10, C11, C19, C31)."""
import json
import urllib.error
import urllib.request

import rawhttp


def assert_error(status, body, expected_status, param=None):
    assert status == expected_status, body
    err = json.loads(body)["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    if param is not None:
        assert err["param"] == param


def test_malformed_json(server):
    status, _, body = server.post("/v1/chat/completions", b'{"messages": [')
    assert_error(status, body, 400)


def test_not_an_object(server):
    status, _, body = server.post("/v1/chat/completions", b'[1, 2]')
    assert_error(status, body, 400)


def test_missing_messages(server):
    status, _, body = server.post("/v1/chat/completions", {"model": "smollm2"})
    assert_error(status, body, 400, "messages")


def test_n_beyond_the_bound(server):
    # The bound is min(--max-n 16, --max-num-seqs 8) here; 129 is beyond any server's.
    for n in (9, 129, 0):
        status, _, body = server.post("/v1/chat/completions", {"model": "smollm2", "n": n,
                                                               "messages": [{"role": "user", "content": "hi"}]})
        assert_error(status, body, 400, "n")


def test_prompt_longer_than_context(server):
    status, _, body = server.post("/v1/chat/completions", {
        "model": "smollm2", "messages": [{"role": "user", "content": "hello " * 3000}]})
    assert_error(status, body, 400)
    assert json.loads(body)["error"]["code"] == "context_length_exceeded"


def test_unknown_route(server):
    status, _, body = server.get("/v1/nope")
    assert_error(status, body, 404)


def test_body_too_large(server):
    # Only the head is sent: the server must answer from Content-Length alone, before any body arrives.
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10485760\r\n\r\n")
    resp = rawhttp.request(server.port, head, timeout=30)
    status, _, body = rawhttp.split(resp)
    assert_error(status, body, 413)


def test_server_survives_all_of_the_above(server):
    status, _, body = server.get("/health")
    assert status == 200


def test_wrong_method_is_405_with_allow(server):
    # HEAD is served wherever GET is (the router falls back), so Allow names it too.
    req = urllib.request.Request(server.base + "/health", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(req, timeout=30)
        assert False, "POST /health was accepted"
    except urllib.error.HTTPError as e:
        assert e.code == 405
        assert e.headers["Allow"] == "GET, HEAD"
        assert json.loads(e.read())["error"]["message"]
    status, headers, _ = server.post("/v1/models", {})
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, _ = server.get("/v1/chat/completions")
    assert status == 405 and headers["Allow"] == "POST"
