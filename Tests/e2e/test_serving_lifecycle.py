"""Issue 16: the queue bound counts only requests that wait for room; gzip both ways over HTTP; CORS origins;
`Expect: 100-continue` with a wrong key; /health while loading and draining; graceful drain on SIGTERM."""
import gzip
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import qwen_server, BIN, MODEL, Server, free_port
import rawhttp

MODELS_DIR = os.path.dirname(os.path.abspath(MODEL))


def chat(max_tokens=4, **kw):
    return {"model": "smollm2", "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": "Say hi."}], **kw}


def stream_chat(s, results, max_tokens):
    """Starts a streamed chat of `max_tokens` tokens (`ignore_eos`) in a thread; its body lands in results["stream"]."""
    def run():
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
        c.request("POST", "/v1/chat/completions", body=json.dumps(chat(max_tokens=max_tokens, ignore_eos=True, stream=True)),
                  headers={"Content-Type": "application/json"})
        results["stream"] = c.getresponse().read().decode()
    t = threading.Thread(target=run)
    t.start()
    return t


def simultaneous(s, n, body):
    statuses = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def worker():
        barrier.wait()
        st, _, _ = s.post("/v1/chat/completions", body, timeout=300)
        with lock:
            statuses.append(st)
    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return sorted(statuses)


def test_queue_bound_counts_only_requests_waiting_for_room():
    s = Server("--max-queued-requests", "0", "--max-num-seqs", "8")
    try:
        # 0 on an idle server refuses nothing that can start at once.
        for _ in range(3):
            assert s.post("/v1/chat/completions", chat())[0] == 200
    finally:
        s.stop()
    s = Server("--max-queued-requests", "4", "--max-num-seqs", "8")
    try:
        for _ in range(3):
            assert simultaneous(s, 8, chat(max_tokens=16)) == [200] * 8
    finally:
        s.stop()


def test_gzip_responses_and_request_bodies(server):
    # A whole response ≥ 1 KiB is compressed for a client that accepts gzip.
    long_text = "The quick brown fox jumps over the lazy dog. " * 200
    body = json.dumps({"content": long_text}).encode()
    req = urllib.request.Request(server.base + "/tokenize", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        raw = r.read()
    tokens = json.loads(gzip.decompress(raw))["tokens"]
    assert len(raw) < len(json.dumps({"tokens": tokens}))
    # The same request with a gzip body gives the same tokens.
    st, headers, out = server.post("/tokenize", gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert st == 200 and "Content-Encoding" not in headers
    assert json.loads(out)["tokens"] == tokens
    # SSE is never compressed.
    st, headers, out = server.post("/v1/chat/completions", chat(stream=True), headers={"Accept-Encoding": "gzip"})
    assert st == 200 and "Content-Encoding" not in headers
    assert out.decode().rstrip().endswith("data: [DONE]")
    # A body that inflates past the 8 MiB cap: 413 (inflation stops at the cap), fast.
    bomb = gzip.compress(b'{"content":"' + b" " * (64 << 20) + b'"}', compresslevel=9)
    t0 = time.time()
    st, _, out = server.post("/tokenize", bomb, headers={"Content-Encoding": "gzip"})
    assert st == 413, out
    assert json.loads(out)["error"]["code"] == "request_too_large"
    assert time.time() - t0 < 5
    assert server.get("/health")[0] == 200


def test_cors_allowed_origins_and_expect_with_wrong_key():
    s = Server("--allowed-origins", '["http://localhost:5173"]', "--api-key", "k")
    try:
        ok = {"Origin": "http://localhost:5173"}
        st, h, _ = s.get("/v1/models", headers={**ok, "Authorization": "Bearer k"})
        assert st == 200 and h["Access-Control-Allow-Origin"] == "http://localhost:5173" and "Origin" in h["Vary"]
        # The streamed answer carries it too.
        st, h, _ = s.post("/v1/chat/completions", chat(stream=True), headers={**ok, "Authorization": "Bearer k"})
        assert st == 200 and h["Access-Control-Allow-Origin"] == "http://localhost:5173"
        # Preflight without the key.
        req = urllib.request.Request(s.base + "/v1/chat/completions", method="OPTIONS", headers={
            **ok, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
            assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
        # Another origin: 403 with a JSON error that says why.
        st, h, body = s.get("/v1/models", headers={"Origin": "http://evil.test", "Authorization": "Bearer k"})
        assert st == 403 and "Access-Control-Allow-Origin" not in h
        assert "http://evil.test" in json.loads(body)["error"]["message"]
        assert "localhost:5173" not in json.loads(body)["error"]["message"], "the allowed list is not told to callers"
        # Expect: 100-continue with a wrong key: a final 401 from the head alone, no 100 Continue.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
                      b"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
            resp = rawhttp.read_response(c, timeout=5)
        assert resp.startswith(b"HTTP/1.1 401"), resp[:200]
        assert b"100 Continue" not in resp
        # A gzip bomb with a wrong key: 401 from the head, nothing inflated (the key is checked first, not a 413);
        # with the right key the same body is the 413 of the body cap.
        bomb = gzip.compress(b'{"messages":"' + b" " * (64 << 20) + b'"}', compresslevel=9)
        st, _, body = s.post("/v1/chat/completions", bomb, headers={"Content-Encoding": "gzip", "Authorization": "Bearer wrong"})
        assert st == 401, body
        st, _, body = s.post("/v1/chat/completions", bomb, headers={"Content-Encoding": "gzip", "Authorization": "Bearer k"})
        assert st == 413, body
        # A small gzip body with the right key is inflated and served.
        st, _, body = s.post("/v1/chat/completions", gzip.compress(json.dumps(chat()).encode()), headers={"Content-Encoding": "gzip", "Authorization": "Bearer k"})
        assert st == 200, body
    finally:
        s.stop()


def test_health_reports_loading_before_the_model_is_ready():
    # The largest model at hand (the 1.5B takes seconds to load here; `make test-models` fetches the 0.5B).
    names = ["qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"]
    model = next((p for p in (os.path.join(MODELS_DIR, n) for n in names) if os.path.exists(p)), MODEL)
    port = free_port()
    log = open(f"/tmp/sputnik-e2e-loading-{port}.log", "w+")
    p = subprocess.Popen([BIN, "serve", "--model", model, "--port", str(port), "--threads", "2", "--ctx-size", "512"],
                         stdout=log, stderr=subprocess.STDOUT)
    metrics_while_loading = False
    try:
        seen = []
        deadline = time.time() + 180
        while time.time() < deadline and (not seen or seen[-1][0] != 200):
            assert p.poll() is None
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/health")
                r = c.getresponse()
                seen.append((r.status, json.loads(r.read())))
                if r.status == 503:
                    # /metrics answers meanwhile (a 503 made Prometheus mark the target down; helper-59), at both of
                    # its paths (/v1/metrics was still a 503), and so does /version.
                    for path in ("/metrics", "/v1/metrics"):
                        c.request("GET", path)
                        m = c.getresponse()
                        text = m.read().decode()
                        assert m.status == 200 and "sputnik:num_requests_running" in text, (path, m.status, text[:300])
                    metrics_while_loading = True
                    c.request("GET", "/version")
                    v = c.getresponse()
                    assert v.status == 200 and "version" in json.loads(v.read()), v.status
                    # Other routes answer 503 meanwhile, with Retry-After.
                    c.request("POST", "/v1/chat/completions", body=json.dumps(chat()), headers={"Content-Type": "application/json"})
                    r2 = c.getresponse()
                    body = r2.read()
                    if r2.status != 200:
                        assert r2.status == 503 and r2.headers["Retry-After"], body
            except ConnectionRefusedError:
                pass
            time.sleep(0.05)
        assert (503, {"status": "loading"}) in seen, seen[:3]
        assert metrics_while_loading
        assert seen[-1] == (200, {"status": "ok"})
    finally:
        p.terminate()
        assert p.wait(timeout=30) == 0
        log.close()


def test_sigterm_drains_running_requests_then_exits_0():
    s = Server("--shutdown-timeout", "60")
    results = {}

    def stream():
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
        c.request("POST", "/v1/chat/completions", body=json.dumps(chat(max_tokens=1000, ignore_eos=True, stream=True)),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        results["stream"] = r.read().decode()
    idle = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
    idle.request("GET", "/health")
    assert idle.getresponse().read()
    scraper = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)   # a keep-alive connection for /metrics
    scraper.request("GET", "/health")
    assert scraper.getresponse().read()
    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    # Draining: /health on an open connection answers 503, new connections are refused.
    idle.request("GET", "/health")
    r = idle.getresponse()
    assert r.status == 503 and json.loads(r.read()) == {"status": "draining"}
    # /metrics is still served (it was a 503 while draining, so Prometheus lost the pod's last values; helper-59):
    # the stream still runs.
    scraper.request("GET", "/metrics")
    r = scraper.getresponse()
    body = r.read().decode()
    assert r.status == 200 and 'sputnik:num_requests_running{model_name=' in body, body[:300]
    assert any(l.startswith("sputnik:num_requests_running{") and l.split()[-1] in ("1", "1.0")
               for l in body.splitlines()), body[:600]
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused
    t.join(timeout=120)
    events = [l[6:] for l in results["stream"].split("\n") if l.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert sum(1 for e in events[:-1] if json.loads(e)["choices"] and json.loads(e)["choices"][0]["delta"].get("content")) >= 900
    assert s.proc.wait(timeout=30) == 0
    s.log.close()


def test_shutdown_timeout_aborts_with_a_final_error_event():
    s = Server("--shutdown-timeout", "1")
    results = {}
    t = stream_chat(s, results, 1500)
    time.sleep(0.5)
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=30) == 0
    assert time.time() - t0 < 10
    t.join(timeout=30)
    events = [l[6:] for l in results["stream"].split("\n") if l.startswith("data: ")]
    last = json.loads(events[-1])
    assert last["error"]["code"] == "server_shutting_down", events[-3:]
    # Its access-log line says 503, the status of that error event (it said 200: helper-59).
    lines = [l for l in s.logtext_all().splitlines() if "route=/v1/chat/completions" in l]
    assert len(lines) == 1 and "status=503" in lines[0], lines
    s.log.close()


@pytest.mark.parametrize("route,body,last_event", [
    ("/v1/responses", {"input": "Write a long essay about Paris.", "max_output_tokens": 1500, "stream": True}, "error"),
    ("/v1/messages", {"messages": [{"role": "user", "content": "Write a long essay about Paris."}], "max_tokens": 1500,
                      "stream": True, "model": "m"}, "error"),
])
def test_shutdown_timeout_ends_typed_event_streams_with_an_error_event(route, body, last_event):
    """helper-60: a Responses or Anthropic stream cut at --shutdown-timeout stopped on an ordinary delta and a clean
    chunked end, so the truncated answer passed for a whole one (chat and completions end with an error event). Now
    each ends with its API's `error` event, and the access log says 503."""
    s = qwen_server("--shutdown-timeout", "1")   # slow enough that the essay is still being written
    results = {}

    def stream():
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
        c.request("POST", route, body=json.dumps(dict(body, temperature=0)),
                  headers={"Content-Type": "application/json"})
        results["stream"] = c.getresponse().read().decode()
    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.8)
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=30) == 0
    t.join(timeout=30)
    events = [l[7:] for l in results["stream"].split("\n") if l.startswith("event: ")]
    datas = [l[6:] for l in results["stream"].split("\n") if l.startswith("data: ")]
    assert events[-1] == last_event, events[-3:]
    assert "shutting down" in json.loads(datas[-1]).get("message", json.loads(datas[-1]).get("error", {}).get("message", ""))
    lines = [l for l in s.logtext_all().splitlines() if "route=" + route in l]
    assert len(lines) == 1 and "status=503" in lines[0], lines
    s.log.close()


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT])
def test_sigint_after_a_signal_stops_at_once(first):
    """Ctrl-C after SIGTERM or Ctrl-C stops at once, as the README says. A second delivery of the same signal waited
    behind the first one's drain (each signal's handler runs one at a time): the server lived on until its stream
    ended."""
    sig = signal.SIGINT
    s = Server("--shutdown-timeout", "60")
    results = {}

    def stream():
        try:
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
            c.request("POST", "/v1/chat/completions", body=json.dumps(chat(max_tokens=1800, ignore_eos=True, stream=True)),
                      headers={"Content-Type": "application/json"})
            results["stream"] = c.getresponse().read()
        except Exception as e:   # the server stops mid-stream
            results["error"] = e
    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.5)
    s.proc.send_signal(sig)
    time.sleep(0.5)
    t0 = time.time()
    s.proc.send_signal(sig)
    assert s.proc.wait(timeout=60) == 0
    assert time.time() - t0 < 3, "the second signal did not stop the server"
    t.join(timeout=30)
    assert "second signal: stopping now" in s.logtext()
    s.log.close()


def test_sigterm_twice_keeps_draining():
    """A second SIGTERM does not cut the drain short (helper-70: `timeout -s TERM` sends one to the child and one
    to its process group, and every running stream was cut with a 503 error event): the stream ends normally."""
    s = Server("--shutdown-timeout", "60")
    results = {}
    t = stream_chat(s, results, 300)
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=90) == 0
    t.join(timeout=30)
    body = results["stream"]
    assert '"finish_reason":"length"' in body and body.rstrip().endswith("data: [DONE]"), body[-400:]
    assert "SIGTERM again: still draining" in s.logtext()
    s.log.close()


def post_in_thread(s, results, name, path, body):
    """Starts a thread that POSTs `body` and stores (status, Retry-After, body text, arrival time) in results[name]."""
    def post():
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        results[name] = (r.status, r.getheader("Retry-After"), r.read().decode(), time.time())
    t = threading.Thread(target=post)
    t.start()
    return t


def wait_until_waiting(s, n):
    """Polls /metrics (bounded: 10 s) until n requests wait to be scheduled."""
    deadline = time.time() + 10
    while time.time() < deadline:
        m = urllib.request.urlopen(f"http://127.0.0.1:{s.port}/metrics", timeout=10).read().decode()
        if re.search(rf"^sputnik:num_requests_waiting(\{{[^}}]*\}})? {n}(\.0)?$", m, re.M):
            return
        time.sleep(0.05)
    pytest.fail(f"{n} requests did not queue")


def test_sigterm_answers_requests_not_started_503_at_once():
    """Requests still queued when SIGTERM comes get a retryable 503 with Retry-After at once, streamed ones included
    (a stream's head waits until its request starts), on every route; the running stream goes on to [DONE]. They
    waited out the whole --shutdown-timeout and were then aborted (streams after a 200 head: not retryable)."""
    s = Server("--shutdown-timeout", "60", "--max-num-seqs", "1")
    results = {}
    hi = [{"role": "user", "content": "Say hi."}]
    queued = {
        "chat stream": ("/v1/chat/completions", chat(max_tokens=16, stream=True)),
        "chat": ("/v1/chat/completions", chat(max_tokens=16)),
        "completions stream": ("/v1/completions",
                               {"model": "smollm2", "prompt": "Hello", "max_tokens": 16, "stream": True}),
        "messages stream": ("/v1/messages", {"model": "smollm2", "max_tokens": 16, "messages": hi, "stream": True}),
        "responses stream": ("/v1/responses", {"model": "smollm2", "max_output_tokens": 16, "input": "Say hi.",
                                               "stream": True}),
    }

    try:
        running = post_in_thread(s, results, "running", "/v1/chat/completions",
                                 chat(max_tokens=1200, ignore_eos=True, stream=True))
        time.sleep(0.5)
        threads = [post_in_thread(s, results, name, *req) for name, req in queued.items()]
        wait_until_waiting(s, 5)   # all five wait behind the one slot
        t0 = time.time()
        s.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=60)
        for name in queued:
            status, retry, body, at = results[name]
            assert status == 503, (name, status, body[:200])
            assert retry is not None, name
            assert at - t0 < 5, (name, at - t0)
            err = json.loads(body)
            assert err["error"]["code"] == "server_shutting_down" if name != "messages stream" else err["type"] == "error"
        running.join(timeout=120)
        status, _, body, _ = results["running"]
        assert status == 200
        assert body.rstrip().endswith("data: [DONE]")
        assert s.proc.wait(timeout=30) == 0
    finally:
        if s.proc.poll() is None:
            s.stop()
        s.log.close()


def test_sigterm_lets_a_partly_started_multi_prompt_request_finish():
    """The prompts of one /v1/completions request go together at a drain: once one has started, the others wait
    their turn and the whole answer completes (helper-42: the waiting prompt was aborted, and with it the stream)."""
    s = Server("--shutdown-timeout", "60", "--max-num-seqs", "2")
    results = {}

    try:
        runs = [post_in_thread(s, results, "chat", "/v1/chat/completions",
                               chat(max_tokens=300, ignore_eos=True, stream=True))]
        time.sleep(0.5)
        runs.append(post_in_thread(s, results, "cmpl", "/v1/completions", {
            "model": "smollm2", "prompt": ["Hello", "World", "Foo"], "max_tokens": 60, "ignore_eos": True,
            "stream": True}))
        wait_until_waiting(s, 2)   # one prompt runs beside the chat, two wait
        s.proc.send_signal(signal.SIGTERM)
        for t in runs:
            t.join(timeout=120)
        status, _, body, _ = results["cmpl"]
        assert status == 200
        events = [l[6:] for l in body.split("\n") if l.startswith("data: ")]
        assert events[-1] == "[DONE]", events[-3:]
        finished = {c["index"] for e in events[:-1] for c in json.loads(e)["choices"] if c.get("finish_reason")}
        assert finished == {0, 1, 2}
        assert results["chat"][2].rstrip().endswith("data: [DONE]")
        assert s.proc.wait(timeout=30) == 0
    finally:
        if s.proc.poll() is None:
            s.stop()
        s.log.close()


def test_whole_answers_cut_at_the_shutdown_timeout_say_the_server_is_draining_on_every_route():
    """helper-64: cut at --shutdown-timeout, a running non-streamed request on /v1/responses and /v1/messages got 503
    "The generation was aborted" (no code), while chat and completions said `server_shutting_down`: a gateway could
    not tell a drain (retry on another replica) from an engine failure. Now every route answers the drain error."""
    # Qwen2.5-Coder-0.5B decodes four requests at a few dozen tokens/s each, so an essay outlasts the two seconds
    # (Responses and Messages take no `ignore_eos`).
    from conftest import QWEN
    s = Server("--shutdown-timeout", "1", "--max-num-seqs", "4", model=QWEN)
    results = {}
    essay = "Write a long, detailed essay on the history of printing, with many sections."
    ask = [{"role": "user", "content": essay}]
    running = {
        "chat": ("/v1/chat/completions", {"model": "m", "messages": ask, "max_tokens": 1500, "ignore_eos": True}),
        "completions": ("/v1/completions", {"model": "m", "prompt": essay, "max_tokens": 1500, "ignore_eos": True}),
        # Greedy: sampled, the essay sometimes ended within the two seconds (a 200 where the drain was to be seen);
        # greedy, both run to their 1,500 tokens.
        "responses": ("/v1/responses", {"model": "m", "max_output_tokens": 1500, "input": essay, "temperature": 0}),
        "messages": ("/v1/messages", {"model": "m", "max_tokens": 1500, "messages": ask, "temperature": 0}),
    }
    try:
        threads = [post_in_thread(s, results, name, *req) for name, req in running.items()]
        time.sleep(1.0)
        s.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=60)
        assert s.proc.wait(timeout=30) == 0
        for name in running:
            status, retry, body, _ = results[name]
            assert status == 503 and retry is not None, (name, status, body[:200])
            err = json.loads(body)
            if name == "messages":
                assert err["type"] == "error" and err["error"]["type"] == "overloaded_error", err
                assert "shutting down" in err["error"]["message"], err
            else:
                assert err["error"]["code"] == "server_shutting_down", (name, err)
    finally:
        if s.proc.poll() is None:
            s.stop()
        s.log.close()


def _gauge(s, name):
    m = urllib.request.urlopen(f"http://127.0.0.1:{s.port}/metrics", timeout=10).read().decode()
    line = next(l for l in m.splitlines() if l.startswith(f"sputnik:{name}{{"))
    return float(line.split()[-1])


def test_running_waiting_and_the_queue_limit_count_choices_alike():
    """helper-64: with n > 1, `num_requests_running` counted choices while `num_requests_waiting` and
    --max-queued-requests counted requests, so an endpoint picker reading the waiting gauge under-read queued work
    n-fold. Both gauges and the queue limit now count each of a request's choices, as vLLM counts child requests."""
    s = Server("--max-num-seqs", "2", "--max-queued-requests", "2", "--shutdown-timeout", "1")
    results = {}
    long = chat(max_tokens=1500, ignore_eos=True, n=2)
    try:
        a = post_in_thread(s, results, "a", "/v1/chat/completions", long)
        deadline = time.time() + 10
        while _gauge(s, "num_requests_running") != 2 and time.time() < deadline:
            time.sleep(0.05)
        assert _gauge(s, "num_requests_running") == 2
        b = post_in_thread(s, results, "b", "/v1/chat/completions", long)
        wait_until_waiting(s, 2)   # one request of two choices waits: 2, as the running gauge counts it
        st, _, body = s.post("/v1/chat/completions", chat(max_tokens=4))
        assert st == 429, body    # 2 + 1 choices would exceed --max-queued-requests 2 (it was let in)
        # The limit is named as the queue's size (it read "2 requests are already waiting" whatever the count).
        assert "its queue of 2 requests waiting for a free slot is full" in json.loads(body)["error"]["message"], body
    finally:
        s.stop()
        s.log.close()
    for t in (a, b):
        t.join(timeout=30)


def counter(s, name):
    text = urllib.request.urlopen(s.base + "/metrics", timeout=10).read().decode()
    return sum(float(m) for m in re.findall(rf"^sputnik:{name}\{{[^}}]*\}} (\S+)$", text, re.M))


def test_prompt_tokens_count_requests_that_ran_only():
    """helper-70: prompt_tokens_total grew by the prompt of a request that waited in the queue and left without
    running (and, counted at the finish, a long generation's prompt showed only at its end). Counted when a request
    starts: at once for the running one, never for the one that left."""
    s = Server("--max-num-seqs", "1")
    try:
        assert counter(s, "prompt_tokens_total") == 0
        results = {}

        def long():
            results["a"] = json.loads(s.post("/v1/chat/completions", chat(max_tokens=1000, ignore_eos=True))[2])
        t = threading.Thread(target=long)
        t.start()
        deadline = time.time() + 30
        while counter(s, "num_requests_running") < 1 and time.time() < deadline:
            time.sleep(0.05)
        running = counter(s, "prompt_tokens_total")
        assert running > 0, "the running request's prompt is not counted while it runs"
        # A second request waits (one sequence at a time), then its client leaves.
        c = socket.create_connection(("127.0.0.1", s.port))
        body = json.dumps(chat(messages=[{"role": "user", "content": "A different and longer question, queued."}])).encode()
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        while counter(s, "num_requests_waiting") < 1 and time.time() < deadline:
            time.sleep(0.05)
        c.close()
        t.join(timeout=120)
        assert counter(s, "prompt_tokens_total") == running == results["a"]["usage"]["prompt_tokens"]
    finally:
        s.stop()


def test_probes_and_scrapes_are_not_access_logged_at_info():
    """helper-70: a gateway's endpoint picker scrapes /metrics every 50 ms, so each replica logged 20 lines a second.
    Successful /health and /metrics requests are logged at debug only (vLLM's --disable-access-log-for-endpoints,
    here the default); other routes, and failed probes, still are; the option set to "" logs them all."""
    quiet = Server("--api-key", "k")
    loud = Server("--disable-access-log-for-endpoints", "")
    try:
        for s in (quiet, loud):
            urllib.request.urlopen(s.base + "/health", timeout=10).read()
            for path in ("/metrics", "/v1/metrics"):   # the alias too (helper-72)
                req = urllib.request.Request(s.base + path, headers={"Authorization": "Bearer k"})
                urllib.request.urlopen(req, timeout=10).read()
            urllib.request.urlopen(urllib.request.Request(s.base + "/version"), timeout=10).read()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(quiet.base + "/metrics", timeout=10)   # no key: 401, logged
        time.sleep(0.3)
        q, l = quiet.logtext_all(), loud.logtext_all()
        assert "route=/version status=200" in q and "route=/metrics status=401" in q, q[-2000:]
        assert "route=/health status=200" not in q and "route=/metrics status=200" not in q, q[-2000:]
        assert "route=/v1/metrics status=200" not in q, q[-2000:]
        assert "route=/health status=200" in l and "route=/metrics status=200" in l, l[-2000:]
    finally:
        quiet.stop()
        loud.stop()


def test_drain_closes_idle_keep_alive_connections():
    """helper-70: an idle keep-alive connection stayed open until the process exited, and a request sent on it got
    a 503 (code server_overloaded, where queued ones got server_shutting_down). One that carried API requests closes
    when the drain starts, so the client's next request goes to a new connection (another replica behind a gateway);
    probe and scrape connections (GET) stay, so /metrics can still be read during the drain (test above)."""
    s = Server("--shutdown-timeout", "60")
    idle = socket.create_connection(("127.0.0.1", s.port))
    body = b'{"content": "hi"}'
    idle.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    idle.settimeout(10)
    got = b""
    while b"\r\n\r\n" not in got:
        got += idle.recv(65536)
    head, _, rest = got.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(rest) < length:
        rest += idle.recv(65536)
    results = {}
    t = stream_chat(s, results, 1500)   # keeps the drain going while the idle connection is watched
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    t0 = time.time()
    idle.settimeout(5)
    assert idle.recv(65536) == b"", "the idle connection was not closed"
    assert time.time() - t0 < 3
    assert s.proc.poll() is None, "closed only because the process exited"
    idle.close()
    t.join(timeout=120)
    assert s.proc.wait(timeout=90) == 0
    assert "[DONE]" in results["stream"]
    s.log.close()
