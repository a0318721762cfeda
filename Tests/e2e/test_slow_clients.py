"""Issue 16 item 7 (short version for `make test`): connections that trickle their headers and idle keep-alive
connections do not delay a normal request; past --max-connections new connections get 503 and close (a health
probe on one of the first 16 of them is still answered, and those close after 2 s idle); a client
that never reads its SSE stream is dropped once its output stalls (--timeout) and its KV blocks are freed."""
import json
import re
import socket
import statistics
import threading
import time
import urllib.request

from conftest import Server


def read_to_close(sock) -> bytes:
    """Everything `sock` receives until the server closes it (its timeout bounds each wait)."""
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    return got


def chat_latency(s, n):
    body = {"model": "smollm2", "max_tokens": 4, "temperature": 0, "messages": [{"role": "user", "content": "Say hi."}]}
    out = []
    for _ in range(n):
        t0 = time.time()
        st, _, _ = s.post("/v1/chat/completions", body)
        assert st == 200
        out.append(time.time() - t0)
    return out


def test_tricklers_and_idle_connections_do_not_delay_a_request():
    s = Server("--max-connections", "2048")
    socks = []
    stop = threading.Event()
    try:
        chat_latency(s, 2)  # warm up
        alone = chat_latency(s, 8)
        # 500 connections trickling a request head at ~1 byte/s, 200 idle keep-alive connections (the numbers).
        for _ in range(500):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"P")
            socks.append(c)
        for _ in range(200):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(4096)
            socks.append(c)
        head = b"OST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"

        def trickle():
            i = 0
            while not stop.is_set() and i < len(head):
                for c in socks[:500]:
                    try:
                        c.sendall(head[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(1.0)
        t = threading.Thread(target=trickle)
        t.start()
        loaded = chat_latency(s, 8)
        stop.set()
        t.join()
        for c in socks:
            c.close()
        socks.clear()
        # The unloaded figure is measured before and after: this machine's other load moves it by 2-3x.
        alone += chat_latency(s, 8)
        # p99 of 8 samples is their max: within 1.5x of the unloaded one, plus 100 ms of scheduling noise on
        # 2 shared vCPUs (a connection that held up the request would cost seconds, not milliseconds).
        assert max(loaded) <= 1.5 * max(alone) + 0.1, (alone, loaded)
        assert statistics.median(loaded) <= 1.5 * statistics.median(alone) + 0.05, (alone, loaded)
    finally:
        stop.set()
        for c in socks:
            c.close()
        s.stop()


def test_connection_limit_answers_503_and_closes():
    s = Server("--max-connections", "20")
    held = []
    try:
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            c.recv(4096)
            held.append(c)
        # Past the limit a liveness probe is still answered (then the connection closes); a generation request is
        # refused with 503 + Retry-After.
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as probe:
            probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            got = read_to_close(probe)
        assert got.startswith(b"HTTP/1.1 200"), got[:100]
        assert b"connection: close" in got.lower()
        body = json.dumps({"max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}).encode()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as extra:
            t0 = time.time()
            extra.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            got = read_to_close(extra)
            assert time.time() - t0 < 5
        assert got.startswith(b"HTTP/1.1 503"), got[:100]
        assert b"Retry-After:" in got
        # Those probe slots are few (16): with idle clients holding them, more connections are refused unread; and an
        # idle client holds one for 2 s at most (an idle flood must not keep a liveness probe out).
        extra = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(24)]
        held.extend(extra)
        time.sleep(0.5)
        refused, waiting = 0, []
        for c in extra:
            c.settimeout(0.05)
            try:
                got = c.recv(4096)
                assert got.startswith(b"HTTP/1.1 503"), got[:100]
                refused += 1
            except socket.timeout:
                waiting.append(c)
        assert len(waiting) <= 16 and refused >= 8, (len(waiting), refused)
        t0 = time.time()
        for c in waiting:
            c.settimeout(6)
            assert c.recv(4096) == b""  # closed, unanswered
        assert time.time() - t0 < 5
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as probe:
            probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_to_close(probe).startswith(b"HTTP/1.1 200")
        for c in held:
            c.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if s.get("/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        assert s.get("/health")[0] == 200
    finally:
        s.stop()


def test_client_that_never_reads_its_stream_is_dropped_and_its_blocks_freed():
    s = Server("--timeout", "2")
    try:
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", s.port))
        body = json.dumps({"model": "smollm2", "max_tokens": 1900, "ignore_eos": True, "stream": True,
                           "messages": [{"role": "user", "content": "Write a very long story."}]}).encode()
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        # Never read. The send buffers fill, output stalls, and after the stall timeout the server drops us.

        def metric(name):
            text = s.get("/metrics")[2].decode()
            m = re.search(r"^" + re.escape(name) + r"(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M)  # any labels (model_name)
            return float(m.group(1))
        deadline = time.time() + 5
        while time.time() < deadline and metric("sputnik:num_requests_running") == 0:
            time.sleep(0.05)
        assert metric("sputnik:num_requests_running") == 1
        deadline = time.time() + 60
        while time.time() < deadline and (metric("sputnik:num_requests_running") != 0
                                          or metric("sputnik:kv_cache_usage_perc") != 0):
            time.sleep(0.2)
        assert metric("sputnik:num_requests_running") == 0
        assert metric("sputnik:kv_cache_usage_perc") == 0
        finished = metric("sputnik:generation_tokens_total")
        assert finished < 1900, "the request ran to the end instead of being dropped"
        c.close()
    finally:
        s.stop()


def test_an_idle_keep_alive_connection_closes_after_the_timeout_not_twice_it():
    """`--timeout S`: a keep-alive connection idle after its response is closed S seconds after the response's last
    byte. The client's taking of the bytes was dated at the next timer check, S later, so it lived up to 2·S."""
    s = Server("--timeout", "3")
    try:
        c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got or not got.endswith(b"}"):
            got += c.recv(4096)
        t0 = time.time()
        assert c.recv(4096) == b""   # the server closes the idle connection
        elapsed = time.time() - t0
        assert 2.5 < elapsed < 4.0, elapsed
        c.close()
    finally:
        s.stop()


def test_a_probe_that_half_closes_gets_its_answer(server):
    """`printf 'GET /health …' | nc -N` (and socat, some probes) send the request and then shut their sending side:
    the answer still comes (it was logged as 499 with nothing sent). A generation request that half-closes is still
    taken as a client that left (its KV blocks are freed at once)."""
    for path in ("/health", "/v1/models"):
        c = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        c.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        c.shutdown(socket.SHUT_WR)
        got = read_to_close(c)
        c.close()
        assert got.startswith(b"HTTP/1.1 200 "), (path, got[:200])


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def test_pipelining_clients_that_never_read_hold_one_backlog_each():
    """64 connections each send 2,000 pipelined GET /metrics at once and never read: each may hold about one
    backlog of answers (the next request waits for the output to flush) and about `maxPipelinedBytes` of requests
    (reading stays paused while more wait) — they held ~35 MB each, then ~8 MB of requests each (reading resumed after
    every quick answer), spent the server-wide buffer budget (so /health probes got 503) and grew RSS by ~1 GB.
    /health keeps answering."""
    s = Server()
    socks = []
    try:
        base = _rss_kb(s.proc.pid)
        burst = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
        for _ in range(64):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.setblocking(False)
            try:
                c.send(burst)
            except BlockingIOError:
                pass
            socks.append(c)
        statuses, peak = [], base
        deadline = time.time() + 6
        while time.time() < deadline:                       # bounded: ~30 probes over 6 s
            for c in socks:                                 # keep pipelining: sends until the socket is full
                try:
                    c.send(burst)
                except (BlockingIOError, OSError):
                    pass
            try:
                with urllib.request.urlopen(s.base + "/health", timeout=10) as r:
                    statuses.append(r.status)
            except urllib.error.HTTPError as e:
                statuses.append(e.code)
            peak = max(peak, _rss_kb(s.proc.pid))
            time.sleep(0.2)
        assert statuses and all(st == 200 for st in statuses), statuses
        # ~1 MiB of requests + ~1 MiB of answers per connection by design (about 200 MB for 64); it was ~9 MB each.
        assert peak - base < 350 * 1024, f"RSS grew by {(peak - base) // 1024} MB"
    finally:
        for c in socks:
            c.close()
        s.stop()


def test_a_stream_the_client_stops_reading_at_once_is_dropped_after_about_the_timeout():
    """`--timeout S`: a client that takes the first few KB of a stream and then never reads is dropped about S after
    it stopped (within the documented 1¼·S of checks), not ~2·S: the first check came a whole timeout after the
    request and dated the bytes taken before it at that check."""
    s = Server("--timeout", "4")
    try:
        c = socket.socket()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.connect(("127.0.0.1", s.port))
        body = json.dumps({"model": "smollm2", "prompt": "Once", "max_tokens": 1900, "ignore_eos": True, "stream": True,
                           "logprobs": 5}).encode()
        c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

        def running():
            text = s.get("/metrics")[2].decode()
            return float(re.search(r"^sputnik:num_requests_running(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M).group(1))
        deadline = time.time() + 5
        while time.time() < deadline and running() == 0:
            time.sleep(0.02)
        t0 = time.time()
        while time.time() - t0 < 20 and running() != 0:
            time.sleep(0.1)
        elapsed = time.time() - t0
        assert 3.0 < elapsed < 6.5, elapsed
        c.close()
    finally:
        s.stop()
