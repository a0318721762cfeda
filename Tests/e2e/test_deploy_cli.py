"""Issue 17's CLI and operations pieces over the real binary: SPUTNIK_* variables (flags win over the environment,
the environment over the config file), X-Request-Id on every response and in the access log (one line per request
with id, route, status, tokens, TTFT and duration; `--log-format json`), load progress, `sputnik info`, and
`sputnik chat` driven over a pipe (against a running server) and over a pseudo-terminal (local model)."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import tempfile
import time
import urllib.request

from conftest import BIN, MODEL, TOOLS_BIN, Server, free_port


def access_lines(s: Server) -> list:
    """The server's JSON access-log lines (message `request`)."""
    out = []
    for line in s.logtext_all().splitlines():
        line = line.strip()
        if line.startswith("{"):
            v = json.loads(line)
            if v.get("msg") == "request":
                out.append(v)
    return out


def wait_for(pred, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def spawn_serve(env_extra: dict, *args: str):
    """`sputnik serve` with only the given SPUTNIK_* variables (and the given flags); returns (proc, port, log)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPUTNIK_")}
    env.update({"SPUTNIK_MODEL": MODEL, "SPUTNIK_THREADS": "2", "SPUTNIK_CTX_SIZE": "1024", **env_extra})
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([BIN, "serve", "--port", str(port), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError("server exited: " + log.read()[-3000:])
        try:
            with urllib.request.urlopen(base + "/health", timeout=2):
                return proc, base, log
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def serve_log(env_extra: dict, *args: str) -> str:
    """What `sputnik serve` (as spawn_serve starts it) logged by the time it was healthy; the server is stopped."""
    proc, base, log = spawn_serve(env_extra, *args)
    try:
        log.flush()
        log.seek(0)
        return log.read()
    finally:
        stop(proc)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def model_ids(base: str) -> list:
    with urllib.request.urlopen(base + "/v1/models", timeout=10) as r:
        return [m["id"] for m in json.loads(r.read())["data"]]


def test_flags_win_over_environment_over_config_file():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("alias: from-file\nmax-num-seqs: 2\n")
        path = f.name
    try:
        # The file alone.
        proc, base, log = spawn_serve({"SPUTNIK_CONFIG": path})
        try:
            assert model_ids(base) == ["from-file"]
        finally:
            stop(proc)
        # The environment over the file.
        proc, base, log = spawn_serve({"SPUTNIK_CONFIG": path, "SPUTNIK_ALIAS": "from-env"})
        try:
            assert model_ids(base) == ["from-env"]
        finally:
            stop(proc)
        # The flag over both.
        proc, base, log = spawn_serve({"SPUTNIK_CONFIG": path, "SPUTNIK_ALIAS": "from-env"}, "--alias", "from-flag")
        try:
            assert model_ids(base) == ["from-flag"]
        finally:
            stop(proc)
    finally:
        os.unlink(path)


def test_bad_environment_value_is_a_clear_startup_error():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPUTNIK_")}
    env.update({"SPUTNIK_MODEL": MODEL, "SPUTNIK_PORT": "eighty"})
    r = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "SPUTNIK_PORT" in r.stderr and "eighty" in r.stderr


def test_api_key_from_environment():
    proc, base, log = spawn_serve({"SPUTNIK_API_KEY": "sekret"})
    try:
        try:
            urllib.request.urlopen(base + "/v1/models", timeout=10)
            raise AssertionError("no 401 without the key")
        except urllib.error.HTTPError as e:
            assert e.code == 401
        req = urllib.request.Request(base + "/v1/models", headers={"Authorization": "Bearer sekret"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    finally:
        stop(proc)


def test_request_id_echoed_generated_and_logged():
    s = Server("--log-format", "json")
    try:
        # Echoed, on success, on errors and on a stream.
        status, headers, _ = s.get("/v1/models", headers={"X-Request-Id": "client-abc.123"})
        assert status == 200 and headers["X-Request-Id"] == "client-abc.123"
        status, headers, _ = s.post("/v1/chat/completions", {"messages": "nope"}, headers={"X-Request-Id": "bad-req-1"})
        assert status == 400 and headers["X-Request-Id"] == "bad-req-1"
        status, headers, _ = s.get("/no/such/route")
        assert status == 404 and re.fullmatch(r"req-[A-Za-z0-9]{24}", headers["X-Request-Id"])
        generated = headers["X-Request-Id"]
        # An unusable id (spaces) is replaced by a generated one.
        status, headers, _ = s.get("/health", headers={"X-Request-Id": "has space"})
        assert status == 200 and headers["X-Request-Id"].startswith("req-")
        status, headers, _ = s.get("/metrics")
        assert status == 200 and headers["X-Request-Id"].startswith("req-")
        req = urllib.request.Request(s.base + "/v1/chat/completions", method="POST", data=json.dumps({
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": True}).encode(),
            headers={"Content-Type": "application/json", "X-Request-Id": "stream-7"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.headers["X-Request-Id"] == "stream-7"
            body = r.read().decode()
        assert body.rstrip().endswith("data: [DONE]")
        status, headers, body = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                                 "max_tokens": 4, "user": "alice\nbob"},
                                       headers={"X-Request-Id": "whole-8"})
        assert status == 200 and headers["X-Request-Id"] == "whole-8"
        usage = json.loads(body)["usage"]

        lines = wait_for(lambda: (lambda ls: ls if {"stream-7", "whole-8"} <= {l["request_id"] for l in ls} else None)(access_lines(s)))
        by_id = {l["request_id"]: l for l in lines}
        assert by_id["client-abc.123"]["status"] == 200 and by_id["client-abc.123"]["route"] == "/v1/models"
        assert by_id["bad-req-1"]["status"] == 400
        assert by_id[generated]["status"] == 404 and by_id[generated]["route"] == "/no/such/route"
        w = by_id["whole-8"]
        assert (w["status"], w["method"], w["route"]) == (200, "POST", "/v1/chat/completions")
        assert w["prompt_tokens"] == usage["prompt_tokens"] and w["completion_tokens"] == usage["completion_tokens"]
        assert 0 < w["ttft_ms"] <= w["duration_ms"]
        assert w["user"] == "alice\ufffdbob"   # the request's `user`, one line even with a newline in it
        st = by_id["stream-7"]
        assert "user" not in st
        assert st["status"] == 200 and st["completion_tokens"] == 5 and 0 < st["ttft_ms"] <= st["duration_ms"]
        for l in lines:  # one line per request, every line a JSON object with a timestamp and level
            assert l["level"] == "info" and l["ts"].endswith("Z")
        assert len([l for l in lines if l["request_id"] == "whole-8"]) == 1
    finally:
        s.stop()


def test_client_values_cannot_add_fields_to_a_text_access_line():
    """A `user` with spaces and `=` is one quoted value on a text log line, not extra fields (a second `status`);
    JSON lines keep it as it is."""
    s = Server()
    try:
        evil = 'bob status=500 route=/x "q" \\'
        status, _, _ = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                         "max_tokens": 2, "user": evil}, headers={"X-Request-Id": "evil-1"})
        assert status == 200
        line = wait_for(lambda: next((l for l in s.logtext_all().splitlines() if "request_id=evil-1" in l), None))
        unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)   # the line with its quoted values emptied
        assert len(re.findall(r"(?:^|\s)status=", unquoted)) == 1, line
        assert len(re.findall(r"(?:^|\s)route=", unquoted)) == 1, line
        assert 'user="bob status=500 route=/x \\"q\\" \\\\"' in line, line
        assert "status=200" in line and "route=/v1/chat/completions" in line
    finally:
        s.stop()
    s = Server("--log-format", "json")
    try:
        status, _, _ = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                         "max_tokens": 2, "user": evil}, headers={"X-Request-Id": "evil-2"})
        assert status == 200
        line = wait_for(lambda: next((l for l in access_lines(s) if l["request_id"] == "evil-2"), None))
        assert line["user"] == evil and line["status"] == 200
    finally:
        s.stop()


def test_request_id_on_errors_answered_before_routing():
    """Malformed requests, an oversized header section and an `Expect: 100-continue` refused for its key are answered
    by the transport (or before the body is read), yet still carry an `X-Request-Id` and get an access-log line."""
    import socket
    s = Server("--log-format", "json", "--api-key", "k1")
    try:
        def raw(data: bytes) -> bytes:
            c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
            c.sendall(data)
            out = b""
            while b"\r\n\r\n" not in out:
                chunk = c.recv(65536)
                if not chunk:
                    break
                out += chunk
            c.close()
            return out

        def head_id(resp: bytes, status: int) -> str:
            head = resp.split(b"\r\n\r\n")[0].decode()
            assert head.startswith(f"HTTP/1.1 {status} "), head
            m = re.search(r"^X-Request-Id: (\S+)", head, re.M | re.I)
            assert m, head
            return m.group(1)

        ids = {}
        ids[400] = head_id(raw(b"NOT A REQUEST\r\n\r\n"), 400)
        ids[431] = head_id(raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"), 431)
        ids[505] = head_id(raw(b"GET /health HTTP/3.0\r\nHost: x\r\n\r\n"), 505)
        for status, rid in ids.items():
            assert re.fullmatch(r"req-[A-Za-z0-9]{24}", rid), (status, rid)
        # With the default --allowed-origins *, a browser can read these errors too.
        assert b"Access-Control-Allow-Origin: *" in raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        answered = [
            # An Expect: 100-continue refused for its key, before the body is read.
            ("expect-401", 401, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Authorization: Bearer wrong\r\nX-Request-Id: expect-401\r\nExpect: 100-continue\r\n"
                                b"Content-Length: 10\r\n\r\n"),
            # A CORS preflight (answered without the key) is a response like any other: id and access-log line.
            ("preflight-1", 204, b"OPTIONS /v1/models HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n"
                                 b"Access-Control-Request-Method: GET\r\nX-Request-Id: preflight-1\r\n\r\n"),
            # An error in the body of a parsed head (a corrupt gzip stream): the client's id, method and route.
            ("badgzip-1", 400, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\n"
                               b"X-Request-Id: badgzip-1\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                               b"Content-Length: 7\r\n\r\nnotgzip"),
            # Refused from a head that was read (a Content-Length over the limit, a bad chunk size): the client's id
            # too (helper's second report: a generated id with method and route "-").
            ("big-413", 413, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-413\r\n"
                             b"Content-Length: 999999999999\r\n\r\n"),
            ("chunk-400", 400, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: chunk-400\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ]
        for rid, status, request in answered:
            assert head_id(raw(request), status) == rid
        want = set(ids.values()) | {"expect-401", "preflight-1", "badgzip-1", "big-413", "chunk-400"}
        lines = wait_for(lambda: (lambda ls: ls if want <= {l["request_id"] for l in ls} else None)(access_lines(s)))
        by_id = {l["request_id"]: l for l in lines}
        for status, rid in ids.items():
            assert by_id[rid]["status"] == status
        assert (by_id["expect-401"]["status"], by_id["expect-401"]["route"]) == (401, "/v1/chat/completions")
        assert (by_id["preflight-1"]["status"], by_id["preflight-1"]["method"]) == (204, "OPTIONS")
        assert (by_id["badgzip-1"]["status"], by_id["badgzip-1"]["method"], by_id["badgzip-1"]["route"]) == \
            (400, "POST", "/v1/chat/completions")
        assert by_id[ids[400]]["route"] == "-"    # the unreadable request line
        assert (by_id["big-413"]["status"], by_id["big-413"]["route"]) == (413, "/v1/chat/completions")
        assert (by_id["chunk-400"]["status"], by_id["chunk-400"]["method"]) == (400, "POST")
    finally:
        s.stop()


def test_client_that_leaves_is_logged_499():
    s = Server("--log-format", "json")
    try:
        import socket
        body = json.dumps({"messages": [{"role": "user", "content": "Count to a thousand."}], "max_tokens": 2000,
                           "ignore_eos": True, "stream": True}).encode()
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"X-Request-Id: leaver-1\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        got = c.recv(4096)
        assert b"X-Request-Id: leaver-1" in got
        while got.count(b"data: ") < 4:   # a few tokens streamed before the client leaves
            got += c.recv(4096)
        c.close()
        line = wait_for(lambda: next((l for l in access_lines(s) if l["request_id"] == "leaver-1"), None))
        assert line["status"] == 499
        # The counts so far (the line is written when the socket closes, before the engine's final usage).
        assert line["prompt_tokens"] > 5 and 2 <= line["completion_tokens"] < 2000, line
    finally:
        s.stop()


def test_client_that_leaves_while_sending_is_logged_499():
    # A body cut short (the client closes after 10 of 100 bytes), and a head cut short: no response can go out, but
    # each gets its access-log line (nginx's 499, client closed request).
    s = Server("--log-format", "json")
    try:
        import socket
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: halfbody-1\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"messages\"")
        time.sleep(0.2)
        c.close()
        line = wait_for(lambda: next((l for l in access_lines(s) if l["request_id"] == "halfbody-1"), None))
        assert (line["status"], line["method"], line["route"], line["code"], line["body_bytes"]) == \
            (499, "POST", "/v1/chat/completions", "client_closed_request", 11), line
        before = len(access_lines(s))
        c = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost")
        time.sleep(0.2)
        c.close()
        line = wait_for(lambda: access_lines(s)[before] if len(access_lines(s)) > before else None)
        assert (line["status"], line["route"], line["code"]) == (499, "-", "client_closed_request"), line
    finally:
        s.stop()


def test_load_progress_is_plain_lines_without_a_terminal():
    s = Server("--log-format", "json")
    try:
        loads = [json.loads(l) for l in s.logtext_all().splitlines() if '"loading weights"' in l]
        percents = [l["percent"] for l in loads]
        assert percents[-1] == 100 and percents == sorted(percents) and len(percents) >= 2
        assert "\r" not in s.logtext_all()
    finally:
        s.stop()


def test_info_prints_what_serving_takes():
    out = subprocess.run([BIN, "info", MODEL], check=True, capture_output=True, text=True, timeout=60).stdout
    assert re.search(r"^model: .*\(llama, 30 layers\)", out, re.M), out
    params = int(re.search(r"^parameters: +\S+ \((\d+)\)", out, re.M).group(1))
    assert 130e6 < params < 140e6  # SmolLM2-135M
    weights = re.search(r"^weights: +([\d.]+) MiB, ([\d.]+) bits per weight", out, re.M)
    size = os.path.getsize(MODEL)
    assert abs(float(weights.group(1)) * 2**20 - size) < 0.02 * size  # tensor bytes ≈ the file
    assert 4.0 < float(weights.group(2)) < 6.5
    assert re.search(r"^  Q4_1 .*% of weights", out, re.M), out
    assert re.search(r"^context: +8192 tokens", out, re.M), out
    assert re.search(r"^template: .*ChatML", out, re.M), out
    # KV: 30 layers × 3 KV heads × 64 dims × (K+V) × 2 bytes = 23,040 B per token; × 4096 ctx × 8 seqs = 720 MiB.
    assert "22.5 KiB per token" in out and "4096 ctx × 8 seqs = 720.0 MiB" in out, out
    out2 = subprocess.run([BIN, "info", MODEL, "--ctx-size", "1024", "--max-num-seqs", "2", "--kv-cache-type", "f32"],
                          check=True, capture_output=True, text=True, timeout=60).stdout
    assert "1024 ctx × 2 seqs = 90.0 MiB" in out2, out2
    r = subprocess.run([BIN, "info", "/nonexistent.gguf"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    # A q8_0 cache is priced only where serve takes it (helper-74: info estimated one for this llama model).
    r = subprocess.run([BIN, "info", MODEL, "--kv-cache-type", "q8_0"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "q8_0 holds MLA latent rows" in r.stderr and "this llama model" in r.stderr, r.stderr
    # On an MLA model it is priced at its real bytes per token: the tiny DeepSeek-V3 (3 layers, latent rows of 128 +
    # 16 values) takes 296 bytes per layer per token in q8_0 (two int8 copies and their scales), 888 in all, as
    # serve's pool uses (f16 would be 864).
    tiny = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "moe", "deepseek-v3-tiny", "deepseek-v3-tiny.f16.gguf")
    out3 = subprocess.run([BIN, "info", tiny, "--kv-cache-type", "q8_0"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    assert "KV cache:     q8_0, 888 B per token" in out3, out3


def test_bf16_kv_cache_serves_and_bad_types_are_refused():
    """`--kv-cache-type bf16` (as llama-server's `-ctk bf16`): with the official openai client, a greedy request's
    first-token distribution stays near the f32 cache's (the same prompt through an f32 server: SmolLM2's top five
    move by ≤ 0.15 in log-probability with bf16, as much as with an f16 cache, 0.14; a wrong kernel moves them by
    whole units); `info` prices a bf16 cache like an f16 one, and an unknown type is refused naming the flag."""
    import openai

    runs = {}
    for kv in ("f32", "bf16"):
        proc, base, log = spawn_serve({}, "--kv-cache-type", kv)
        try:
            client = openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0)
            r = client.chat.completions.create(model=model_ids(base)[0], temperature=0, max_tokens=4, logprobs=True,
                                               top_logprobs=5,
                                               messages=[{"role": "user", "content": "Write a haiku about the sea."}])
            assert r.choices[0].finish_reason in ("stop", "length") and r.choices[0].message.content
            runs[kv] = {t.token: t.logprob for t in r.choices[0].logprobs.content[0].top_logprobs}
            log.seek(0)
            assert f"blocks × 16 ({kv})" in log.read()   # the startup line names the element type
        finally:
            stop(proc)
    exact, bf16 = runs["f32"], runs["bf16"]
    common = set(exact) & set(bf16)
    assert len(common) >= 4, runs
    assert all(abs(exact[t] - bf16[t]) < 0.3 for t in common), runs
    out = subprocess.run([BIN, "info", MODEL, "--ctx-size", "1024", "--max-num-seqs", "2", "--kv-cache-type", "bf16"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    assert "KV cache:     bf16, 22.5 KiB per token" in out and "1024 ctx × 2 seqs = 45.0 MiB" in out, out
    # `sputnik-tools bench` reports the type as llama-bench does (type_k / type_v), and takes serve's flag name.
    bench = subprocess.run([TOOLS_BIN, "bench", "-m", MODEL, "-p", "8", "-n", "2", "-r", "1", "-t", "2",
                            "--kv-cache-type", "bf16", "-o", "json"], check=True, capture_output=True, text=True,
                           timeout=120).stdout
    records = json.loads(bench)
    assert records and all(r["type_k"] == "bf16" and r["type_v"] == "bf16" for r in records), records
    bad = subprocess.run([BIN, "serve", "--model", MODEL, "--kv-cache-type", "q8"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode != 0 and "kv-cache-type" in bad.stderr and "bf16" in bad.stderr, bad.stderr


class Chat:
    """`sputnik chat` over pipes; stdout and stderr are collected by background reads."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([BIN, "chat", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = b""
        self.err = b""

    def pump(self, timeout=0.1):
        fds = [f for f in (self.proc.stdout, self.proc.stderr) if f]
        r, _, _ = select.select(fds, [], [], timeout)
        for f in r:
            data = os.read(f.fileno(), 65536)
            if f is self.proc.stdout:
                self.out += data
            else:
                self.err += data

    def until(self, pred, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            self.pump()
        raise AssertionError(f"timed out; stdout={self.out[-500:]!r} stderr={self.err[-500:]!r}")

    def send(self, line: str):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()


def test_chat_against_a_server_history_reset_system_and_ctrl_c():
    s = Server("--log-format", "json")
    c = Chat("--url", s.base, "--max-tokens", "8")
    try:
        def prompts():
            return [l["prompt_tokens"] for l in access_lines(s) if l["route"] == "/v1/chat/completions"]
        c.send("Hello there")
        wait_for(lambda: len(prompts()) == 1)
        c.send("And again")
        wait_for(lambda: len(prompts()) == 2)
        p = prompts()
        assert p[1] > p[0] + 4  # the first question and answer went along
        c.send("/reset")
        c.until(lambda: b"[conversation cleared]" in c.err)
        c.send("Hello there")
        wait_for(lambda: len(prompts()) == 3)
        assert prompts()[2] == p[0]  # the same single question as the first turn
        # (SmolLM2's template writes its own default system prompt when there is none: ours must be longer.)
        pirate = "You are a pirate. " * 30
        c.send("/system " + pirate)
        c.until(lambda: b"[system prompt set]" in c.err)
        c.send("/reset")
        c.send("Hello there")
        wait_for(lambda: len(prompts()) == 4)
        assert prompts()[3] > p[0] + 60  # the system prompt is sent
        c.send("/system")
        c.until(lambda: b"[system prompt: " + pirate.strip().encode() + b"]" in c.err)
        c.send("/nonsense")
        c.until(lambda: b"unknown command /nonsense" in c.err)
        c.until(lambda: c.out.count(b"\n") >= 4)
        c.proc.stdin.close()  # end of input quits
        c.proc.stdin = None
        c.until(lambda: c.proc.poll() is not None)
        assert c.proc.returncode == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
        s.stop()

    # Ctrl-C stops the answer (the server aborts the request) and the next question is answered.
    s = Server("--log-format", "json")
    c = Chat("--url", s.base, "--max-tokens", "1900", "--ignore-eos")
    try:
        c.send("Count from one to one thousand.")
        c.until(lambda: len(c.out) > 20)
        c.proc.send_signal(signal.SIGINT)
        c.until(lambda: b"[interrupted]" in c.err)
        line = wait_for(lambda: next((l for l in access_lines(s) if l["route"] == "/v1/chat/completions"), None))
        assert line["status"] == 499 and line.get("completion_tokens", 0) < 1900
        def idle():  # the engine drops the aborted request at its next step
            with urllib.request.urlopen(s.base + "/metrics", timeout=10) as r:
                return re.search(rb"^sputnik:num_requests_running(?:\{[^}]*\})? 0", r.read(), re.M)
        wait_for(idle, timeout=10)
        assert c.proc.poll() is None  # still running
        before = len(c.out)
        c.send("/exit")
        c.until(lambda: c.proc.poll() is not None)
        assert c.proc.returncode == 0 and before > 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
        s.stop()


def test_chat_with_a_local_model_in_a_terminal():
    """A real pseudo-terminal: the progress bar is drawn in place, the prompt shows, Ctrl-C (the terminal's ^C)
    stops an answer and the REPL goes on."""
    master, slave = pty.openpty()

    def controlling_tty():
        os.setsid()
        import fcntl
        import termios
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([BIN, "chat", MODEL, "--threads", "2", "--ctx-size", "1024", "--max-tokens", "900",
                             "--ignore-eos"], stdin=slave, stdout=slave, stderr=slave, preexec_fn=controlling_tty)
    os.close(slave)
    screen = b""

    def until(pred, timeout=120):
        nonlocal screen
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred():
                return
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    screen += os.read(master, 65536)
                except OSError:  # EIO once the child has closed the terminal (it exited)
                    time.sleep(0.1)
        raise AssertionError(f"timed out: {screen[-800:]!r}")

    try:
        until(lambda: b">>> " in screen)
        assert re.search(rb"\rloading SmolLM2-135M-Instruct\.Q4_1\.gguf \[#+ *\] +\d+%", screen), screen[:500]
        assert b"100%" in screen
        os.write(master, b"Count from one to one thousand.\r")
        mark = len(screen)
        until(lambda: len(screen) > mark + 60)
        os.write(master, b"\x03")  # ^C from the terminal: SIGINT to the foreground process group
        until(lambda: b"[interrupted]" in screen[mark:])
        until(lambda: screen.rstrip().endswith(b">>>"))
        assert proc.poll() is None
        os.write(master, b"/exit\r")
        until(lambda: proc.poll() is not None, timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_every_serve_flag_has_its_variable():
    """Each `sputnik serve --flag` is read from SPUTNIK_<FLAG>: the server names the variables it ignores, and none
    of the flags' is among them (a flag added without its variable fails here)."""
    help_text = subprocess.run([BIN, "serve", "--help"], check=True, capture_output=True, text=True, timeout=60).stdout
    flags = {m for m in re.findall(r"--([a-z][a-z0-9-]+)", help_text) if m not in ("help", "version") and not m.startswith("no-")}
    assert {"model", "ctx-size", "api-key", "log-format", "repack", "config"} <= flags
    names = {"SPUTNIK_" + f.upper().replace("-", "_") for f in flags}
    # Empty values count as unset, so the server starts with its defaults and reports what it ignored.
    text = serve_log({**{n: "" for n in names if n not in ("SPUTNIK_MODEL", "SPUTNIK_THREADS", "SPUTNIK_CTX_SIZE")},
                      "SPUTNIK_NOT_AN_OPTION": "1", "SPUTNIK_LOG_LEVEL": "debug"})
    ignored = set(re.findall(r"ignoring (SPUTNIK_[A-Z_]+)", text))
    assert "SPUTNIK_NOT_AN_OPTION" in ignored, text[-2000:]
    assert not ignored & names, ignored & names


def test_chat_refuses_out_of_range_sampling_options_before_starting():
    # Checked locally (exit 64 with the reason), not sent turn after turn for the server to answer 400.
    for args, why in [(["--temperature", "9"], "--temperature must be between 0 and 2"),
                      (["--max-tokens", "0"], "--max-tokens must be at least 1")]:
        r = subprocess.run([BIN, "chat", "--url", "http://127.0.0.1:9", *args], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 64, (args, r.returncode, r.stderr)
        assert why in r.stderr, r.stderr


def test_chat_names_the_model_argument_in_errors(tmp_path):
    """`sputnik chat FILE` with a missing file names the argument ("model file"), as `serve FILE` does, not a
    --model flag the user never typed; with -m the flag is named."""
    missing = str(tmp_path / "nope.gguf")
    r = subprocess.run([BIN, "chat", missing], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert f"model file {missing}: No such file" in r.stderr, r.stderr
    assert "--model" not in r.stderr, r.stderr
    r = subprocess.run([BIN, "chat", "-m", missing], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and f"--model {missing}: No such file" in r.stderr, r.stderr


def test_a_refusal_to_start_is_a_json_log_line_with_log_format_json():
    """helper-59: with `--log-format json` (one JSON object per line, for log pipelines) a server that could not start
    wrote a plain-text "Error: …" line. Now it is a `critical` JSON line naming the problem, and the exit code is 1."""
    for args, env, needle in [
        (["serve", "/nonexistent/model.gguf", "--log-format", "json"], {}, "/nonexistent/model.gguf"),
        (["serve", MODEL, "--port", "70000"], {"SPUTNIK_LOG_FORMAT": "json"}, "--port"),
        # Before the log format is set up: an environment variable that does not parse (helper-60: plain text).
        (["serve", MODEL], {"SPUTNIK_LOG_FORMAT": "json", "SPUTNIK_CTX_SIZE": "abc"}, "SPUTNIK_CTX_SIZE"),
    ]:
        p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=60, env=dict(os.environ, **env))
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
        assert lines, args
        for l in lines:
            json.loads(l)   # every line is JSON
        last = json.loads(lines[-1])
        assert last["level"] == "critical" and needle in last["msg"], last


def test_a_command_line_that_does_not_parse_is_a_json_log_line_with_log_format_json():
    """helper-59: an unknown flag under `--log-format json` was argument-parser's plain-text usage error. Now it is one
    `critical` JSON line naming the flag, with argument-parser's exit status (64, EX_USAGE); without JSON it stays
    the usual plain text, and `--help` stays help."""
    for args, env in [(["serve", MODEL, "--log-format", "json", "--no-such-flag"], {}),
                      (["serve", MODEL, "--no-such-flag"], {"SPUTNIK_LOG_FORMAT": "json"}),
                      (["serve", MODEL, "--log-format=json", "--port"], {})]:
        p = subprocess.run([BIN] + args, capture_output=True, text=True, timeout=60, env=dict(os.environ, **env))
        assert p.returncode == 64, (args, p.stdout, p.stderr)
        lines = [l for l in (p.stdout + p.stderr).splitlines() if l.strip()]
        assert len(lines) == 1, lines
        line = json.loads(lines[0])
        assert line["level"] == "critical" and ("--no-such-flag" in line["msg"] or "--port" in line["msg"]), line
    p = subprocess.run([BIN, "serve", MODEL, "--no-such-flag"], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith("SPUTNIK_")})
    assert p.returncode == 64 and "Unknown option '--no-such-flag'" in p.stderr and not p.stderr.startswith("{"), p.stderr
    p = subprocess.run([BIN, "serve", "--help", "--log-format", "json"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "--max-num-seqs" in p.stdout, p.stdout + p.stderr

def test_version_on_the_command_line_and_over_http():
    """`sputnik --version` prints the release and exits 0 (llama-server's and vLLM's flag); `GET /version` answers
    `{"version": …}` as vLLM's route does, without the API key."""
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    version = p.stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    proc, base, log = spawn_serve({"SPUTNIK_API_KEY": "sekret"})
    try:
        for path in ("/version", "/v1/version"):
            with urllib.request.urlopen(base + path, timeout=10) as r:
                assert r.status == 200 and json.loads(r.read()) == {"version": version}
    finally:
        stop(proc)


def test_a_misspelt_variable_is_a_warning_naming_the_option():
    """helper-70: SPUTNIK_MAX_NUM_SEQ (no S) was ignored with a debug line only; the server ran with 8 sequences and
    nothing at the default level said why. Now a warning names the option meant; the project's own non-option
    variables (SPUTNIK_KERNELS and the like) are not reported."""
    text = serve_log({"SPUTNIK_MAX_NUM_SEQ": "2", "SPUTNIK_KERNELS": "avx2", "SPUTNIK_FROBNICATE": "1"})
    line = next(l for l in text.splitlines() if "SPUTNIK_MAX_NUM_SEQ:" in l)
    assert "warning" in line and "did you mean SPUTNIK_MAX_NUM_SEQS?" in line, line
    assert re.search(r"warning.*ignoring SPUTNIK_FROBNICATE: it names no option", text), text[-2000:]
    assert "SPUTNIK_KERNELS" not in text


def test_a_misspelt_model_variable_is_named_in_the_refusal_to_start():
    # helper-72: the warning was logged after the options were read, so a refusal to start never showed it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPUTNIK_")}
    r = subprocess.run([BIN, "serve"], env=dict(env, SPUTNIK_MODLE=MODEL, SPUTNIK_port="1"), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert "no model" in r.stderr and "ignoring SPUTNIK_MODLE: it names no option (did you mean SPUTNIK_MODEL?)" in r.stderr, r.stderr
    assert "did you mean SPUTNIK_PORT? the names are upper case" in r.stderr, r.stderr


def test_json_log_lines_name_their_source():
    # helper-70: every JSON line said "label":"sputnik" only; the text format's [Server] / [Engine] was lost.
    proc, base, log = spawn_serve({"SPUTNIK_LOG_FORMAT": "json"})
    try:
        urllib.request.urlopen(base + "/v1/models", timeout=10).read()
        time.sleep(0.3)
        log.flush()
        log.seek(0)
        lines = [json.loads(l) for l in log.read().splitlines() if l.startswith("{")]
    finally:
        stop(proc)
    request = next(l for l in lines if l["msg"] == "request" and l.get("route") == "/v1/models")
    assert request["source"] == "Server", request
    assert {l["source"] for l in lines} >= {"Server", "HTTPServer"}, {l["source"] for l in lines}
