#!/usr/bin/env python3
"""Bounded HTTP fuzz smoke pass against a running (or spawned) `sputnik serve` on 127.0.0.1.

Sends N generated inputs, each on its own connection: byte-level mutations of valid requests (framing,
chunk sizes, headers, paths), JSON requests whose fields take hostile values (huge and odd numbers, wrong
types, deep nesting, long strings), and requests to every route. Every input is bounded in time; a reply is
not required (a mutated request may legitimately wait for bytes that never come). The server must stay alive:
`/health` is checked every 250 inputs and at the end. Exit 0 when it is still healthy, 1 otherwise.

    scripts/fuzz_smoke.py --bin .build/release/sputnik --model models/SmolLM2-135M-Instruct.Q4_1.gguf -n 20000
    scripts/fuzz_smoke.py --port 8080 -n 2000 --seed 7
"""
import argparse
import collections
import json
import random
import socket
import subprocess
import sys
import time
import urllib.request

HOSTILE_NUMBERS = ["0", "-1", "1", "2", "2147483647", "2147483648", "-2147483649", "9007199254740993",
                   "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
                   "1e308", "-1e308", "1e-300", "5e-324", "1.5", "0.0", "-0.0", "1E400", "\"10\"", "null", "true",
                   "1234567890123456789012345678901234567890", "[]", "{}", "\"\"", "0.1", "151935", "100000"]
FIELDS = ["max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "n", "priority",
          "presence_penalty", "frequency_penalty", "repetition_penalty", "logprobs", "top_logprobs", "stop", "stream",
          "stream_options", "user", "tools", "tool_choice", "response_format", "ignore_eos", "messages", "model"]
ROUTES = ["/v1/chat/completions", "/tokenize", "/detokenize", "/v1/models", "/health", "/metrics", "/v1/%74okenize",
          "/v1/chat/completions?x=1", "//v1/models", "/v1/../health", "*", "/v1/chat/completions/", "/v1/completions"]


def chat_body(rng: random.Random) -> bytes:
    """A chat request: valid at the core, with 0–3 fields set to hostile values. Generation stays short."""
    fields = {"model": "m", "messages": [{"role": "user", "content": rng.choice(["hi", "Count to 3.", "é" * 50, ""])}],
              "max_tokens": rng.choice([1, 2, 4])}
    raw = {k: json.dumps(v) for k, v in fields.items()}
    for _ in range(rng.randint(0, 3)):
        f = rng.choice(FIELDS)
        r = rng.random()
        if r < 0.6:
            raw[f] = rng.choice(HOSTILE_NUMBERS)
        elif r < 0.7:
            raw[f] = json.dumps("x" * rng.choice([1, 100, 5000]))
        elif r < 0.8:
            depth = rng.choice([10, 100, 1000, 5000])
            raw[f] = "[" * depth + "]" * depth
        elif r < 0.9:
            raw[f] = json.dumps([{"role": rng.choice(["user", "system", "tool", "assistant", "x"]),
                                  "content": rng.choice(["a", None, 5, [{"type": "text", "text": "b"}]])}])
        else:
            raw.pop(f, None)
    if rng.random() < 0.1:
        raw["stream"] = "true"
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in raw.items()) + "}").encode()


def route_body(rng: random.Random, path: str) -> bytes:
    if "okenize" in path and "de" not in path:
        return json.dumps({"content": rng.choice(["hello", "x" * 10000, "<|im_start|>"]),
                           "with_pieces": rng.choice([True, False, 1, None])}).encode()
    if "detokenize" in path:
        ids = rng.choice([[1, 2, 3], [-1], [2**31], [2**63], [1e308], ["a"], list(range(1000)), [1.5]])
        return json.dumps({"tokens": ids}).encode()
    return chat_body(rng)


def valid_request(rng: random.Random) -> bytes:
    path = rng.choice(ROUTES)
    method = rng.choice(["POST"] * 6 + ["GET", "PUT", "OPTIONS", "HEAD", "DELETE"])
    body = route_body(rng, path) if method in ("POST", "PUT") else b""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if body and rng.random() < 0.3:
        head.append("Transfer-Encoding: chunked")
        chunks, i = [], 0
        while i < len(body):
            n = rng.randint(1, 64)
            chunks.append(b"%x\r\n" % n + body[i:i + n] + b"\r\n")
            i += n
        payload = b"".join(chunks) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


SPLICES = [b"\r\n", b"\n", b"\r", b"\x00", b"7fffffffffffffff\r\n", b"ffffffffffffffffff\r\n", b";ext=\"x\"",
           b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: ,\r\n", b"Content-Length: 99999999999999999999\r\n",
           b"Content-Length: -1\r\n", b"Host: a\r\n", b"Expect: 100-continue\r\n", b"%00", b"%2e%2e/", b" ", b":",
           b"\xff\xfe", b"9223372036854775808", b"HTTP/1.0", b"HTTP/2.0", b"\r\n\r\n", b"0\r\n\r\n"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randint(0, max(0, len(b) - 1))
        if op < 0.25 and b:
            b[pos] = rng.randint(0, 255)
        elif op < 0.45 and b:
            del b[pos:pos + rng.randint(1, 8)]
        elif op < 0.75:
            b[pos:pos] = rng.choice(SPLICES)
        elif op < 0.85 and b:
            end = min(len(b), pos + rng.randint(1, 32))
            b[pos:pos] = b[pos:end] * rng.randint(2, 20)
        else:
            b = b[:pos]
    return bytes(b)


def generate(rng: random.Random) -> tuple:
    """An input and whether to half-close after it: mutated inputs often wait for bytes that never come, so the
    client's EOF ends them at once (the server must then drop the request, or answer and close)."""
    if rng.random() < 0.45:
        return valid_request(rng), rng.random() < 0.1
    return mutate(rng, valid_request(rng)), rng.random() < 0.9


def send(port: int, data: bytes, half_close: bool, timeout: float) -> str:
    """Sends one input on a fresh connection; returns the status code seen, or a word for what happened."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(data)
            if half_close:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            buf = b""
            deadline = time.time() + timeout
            while time.time() < deadline and b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            if buf.startswith(b"HTTP/1.1 100"):
                return "100"
            return buf[9:12].decode("latin-1") if buf.startswith(b"HTTP/1.") else ("closed" if not buf else "garbage")
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return type(e).__name__


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
            return r.status == 200
    except Exception:
        return False


def spawn(binary: str, model: str) -> tuple:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(f"/tmp/sputnik-fuzz-{port}.log", "w+")
    proc = subprocess.Popen([binary, "serve", "--model", model, "--host", "127.0.0.1", "--port", str(port),
                             "--threads", "2", "--ctx-size", "2048"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and not healthy(port):
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    return proc, port, log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20000, help="inputs to send")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port", type=int, help="a server already listening on 127.0.0.1")
    ap.add_argument("--bin", help="spawn this sputnik binary")
    ap.add_argument("--model", help="model for --bin")
    ap.add_argument("--timeout", type=float, default=0.3, help="seconds to wait for a reply to one input")
    ap.add_argument("--time-limit", type=float, default=1800, help="stop after this many seconds")
    a = ap.parse_args()
    proc = log = None
    if a.bin:
        proc, port, log = spawn(a.bin, a.model)
    else:
        port = a.port
    rng = random.Random(a.seed)
    seen = collections.Counter()
    start = time.time()
    sent = 0
    alive = healthy(port)
    try:
        while alive and sent < a.n and time.time() - start < a.time_limit:
            data, half_close = generate(rng)
            seen[send(port, data, half_close, a.timeout)] += 1
            sent += 1
            if sent % 250 == 0:
                alive = healthy(port) and (proc is None or proc.poll() is None)
                if not alive:
                    print(f"server died after input {sent}; last input: {data[:400]!r}", file=sys.stderr)
        alive = alive and healthy(port) and (proc is None or proc.poll() is None)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            if not alive:
                log.seek(0)
                print(log.read()[-4000:], file=sys.stderr)
    took = time.time() - start
    print(f"fuzz smoke: {sent} inputs in {took:.0f} s (seed {a.seed}); answers: "
          + ", ".join(f"{k}={v}" for k, v in sorted(seen.items())))
    print(f"fuzz smoke: server {'alive' if alive else 'DEAD'}")
    if sent < a.n:
        print(f"fuzz smoke: stopped at the time limit ({a.time_limit:.0f} s) after {sent} of {a.n} inputs")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
