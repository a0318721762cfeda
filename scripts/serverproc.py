"""Helpers the benchmark and load scripts share for running a server process on 127.0.0.1."""
import socket
import time
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=180):
    """Polls http://127.0.0.1:PORT/health until it answers 200 (within `timeout` seconds).

    Raises RuntimeError when `proc` (a subprocess.Popen) exits first or the time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("server not ready")
