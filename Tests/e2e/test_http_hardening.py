"""Issue 21, HTTP layer: network-reachable crashes and denials of service, over raw sockets to 127.0.0.1.

Every loop here is bounded in count and in time.
"""
import json
import socket
import time

import rawhttp


def health_ok(server) -> bool:
    status, _, body = server.get("/health")
    return status == 200 and json.loads(body) == {"status": "ok"}


def status_of(resp: bytes) -> int:
    assert resp.startswith(b"HTTP/1.1 "), resp[:200]
    return int(resp.split(b" ", 2)[1])


def test_chunk_size_near_int_max_is_refused_and_server_lives(server):
    raw = (b"POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"1\r\na\r\n7fffffffffffffff\r\n")
    resp = rawhttp.request(server.port, raw, timeout=10)
    assert status_of(resp) == 413, resp[:300]
    assert server.proc.poll() is None, "the server process died: " + server.logtext()
    assert health_ok(server)


def test_percent_encoded_path_does_not_reach_tokenize(server):
    # The plain route answers, so a miss below is the routing rule, not a missing route.
    plain = rawhttp.request(server.port, rawhttp.post("/v1/tokenize", {"content": "hello"}), timeout=30)
    assert status_of(plain) == 200 and b'"tokens"' in plain
    for path in ("/v1/%74okenize", "/%74okenize", "/v1/tokeni%7Ae"):
        resp = rawhttp.request(server.port, rawhttp.post(path, {"content": "hello"}), timeout=30)
        status, _, body = rawhttp.split(resp)
        assert status in (400, 404), (path, resp[:300])
        assert b'"tokens"' not in body
        assert "error" in json.loads(body)


def test_missing_or_repeated_host_is_400(server):
    for raw in (b"GET /health HTTP/1.1\r\n\r\n",
                b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: example.com\r\n\r\n"):
        resp = rawhttp.request(server.port, raw, timeout=10)
        assert status_of(resp) == 400, resp[:300]
    assert health_ok(server)


def test_bare_lf_and_bad_framing_are_400(server):
    cases = [
        b"GET /health HTTP/1.1\nHost: 127.0.0.1\n\n",
        b"POST /v1/tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2;\x01\r\n{}\r\n0\r\n\r\n",
        b"POST /v1/tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: ,\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /v1/tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\n0\r\n\r\n",
    ]
    for raw in cases:
        resp = rawhttp.request(server.port, raw, timeout=10)
        assert status_of(resp) == 400, (raw, resp[:300])


def test_crlf_trickle_gets_408_at_header_deadline(server):
    # The header deadline (10 s by default) runs from the first byte, empty lines included.
    start = time.time()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        got = b""
        for _ in range(15):                        # at most 15 × 2 s
            try:
                s.sendall(b"\r\n")
            except OSError:
                break
            s.settimeout(2)
            try:
                data = s.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            got += data
            if b"\r\n\r\n" in got:
                break
        elapsed = time.time() - start
    assert got.startswith(b"HTTP/1.1 408"), got[:300]
    assert 8 <= elapsed <= 16, elapsed
    assert health_ok(server)


def test_health_answers_while_slow_requests_hold_every_worker(server):
    """Cheap routes run on a queue of their own: four near-limit chat bodies (each ~2 s of parsing, rendering and
    tokenizing before their 400 context_length_exceeded) held both workers of the global pool, and `/health` (the
    liveness and readiness probe) waited 1.7–3.8 s behind them. Prompts far over the context are now refused before
    tokenizing, so the slow handlers here are many prompts just small enough to be tokenized (~150 KB each, about
    20,000 tokens, refused after tokenizing), 400 of them eight at a time."""
    import concurrent.futures
    body = json.dumps({"messages": [{"role": "user", "content": "hello world, this is text. " * 5_500}],
                       "max_tokens": 5}).encode()

    def big():
        return status_of(rawhttp.request(server.port, rawhttp.post("/v1/chat/completions", body), timeout=120))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(big) for _ in range(400)]
        time.sleep(0.3)   # the bodies are in; their handlers run
        latencies = []
        deadline = time.time() + 120
        while not all(f.done() for f in futures) and time.time() < deadline and len(latencies) < 400:
            t0 = time.time()
            assert health_ok(server)
            latencies.append(time.time() - t0)
            time.sleep(0.1)
        statuses = [f.result() for f in futures]
    assert statuses == [400] * 400, statuses
    assert len(latencies) >= 3, latencies   # the probes overlapped the slow handlers
    assert max(latencies) < 1.0, latencies
