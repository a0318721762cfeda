"""Starts the release `sputnik serve` binary on a free loopback port with the real default model.

SPUTNIK_BIN, SPUTNIK_TOOLS_BIN (the developer tools binary) and SPUTNIK_MODEL are set by `make test-e2e`.
"""
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

BIN = os.environ.get("SPUTNIK_BIN", ".build/release/sputnik")
TOOLS_BIN = os.environ.get("SPUTNIK_TOOLS_BIN", ".build/release/sputnik-tools")
MODEL = os.environ.get("SPUTNIK_MODEL", "models/SmolLM2-135M-Instruct.Q4_1.gguf")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *extra: str, model: str | None = MODEL):
        """`sputnik serve` on a free port with the test defaults; `model=None` leaves --model out (give the model
        file in `extra`, as the argument)."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(f"/tmp/sputnik-e2e-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [BIN, "serve", *(["--model", model] if model else []), "--host", "127.0.0.1", "--port", str(self.port),
             "--threads", "2", "--ctx-size", "2048", "--alias", "smollm2", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.logtext())
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not become healthy: " + self.logtext())

    def logtext(self) -> str:
        return self.logtext_all()[-4000:]

    def logtext_all(self) -> str:
        """Everything the server has written to stdout and stderr so far (read through a second descriptor: the
        server shares this one's file offset, so seeking it would make the server overwrite its own log)."""
        with open(self.log.name) as f:
            return f.read()

    def post(self, path: str, body, headers=None, timeout=120):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get(self, path: str, headers=None):
        req = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()
    assert s.proc.returncode == 0, "server did not shut down cleanly"


# Qwen2.5-Coder-0.5B (a tool-capable template) and the chat-template fixtures the tool, reasoning, Anthropic and
# Responses tests run it under. One server per test module and template.
TEMPLATES = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "templates")
QWEN = os.environ.get("SPUTNIK_QWEN_MODEL", os.path.join(os.path.dirname(__file__), "..", "..", "models",
                                                         "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))
R1_TEMPLATE = os.path.join(TEMPLATES, "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja")


def qwen_server(*args):
    """`sputnik serve` on the Qwen2.5-Coder-0.5B weights with `args`; skips when the model is absent."""
    if not os.path.exists(QWEN):
        pytest.skip(f"SKIPPED: {QWEN} is absent (make test-models)")
    return Server(*args, model=QWEN)


def _serving(*args):
    s = qwen_server(*args)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def qwen():
    yield from _serving()


@pytest.fixture(scope="module")
def r1():
    yield from _serving("--chat-template", R1_TEMPLATE)


@pytest.fixture(scope="module")
def v31():
    yield from _serving("--chat-template", os.path.join(TEMPLATES, "deepseek-ai-DeepSeek-V3.1.jinja"))


@pytest.fixture(scope="module")
def qwen3():
    yield from _serving("--chat-template", os.path.join(TEMPLATES, "Qwen-Qwen3-0.6B.jinja"))
