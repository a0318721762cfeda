"""llama-server's `--no-mmap` and `--mlock` on `sputnik serve` (issue 18 item 1): the model read into memory instead of
mapped (no mapping of the file left, same greedy output with and without repacking), the weights as read locked in RAM
(the copies and what stays mapped, not the file pages a copy replaced), and a clear start-up error when the
locked-memory limit is too low."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import BIN, MODEL, Server, free_port

PROMPT = {"messages": [{"role": "user", "content": "Name three colours."}], "max_tokens": 12, "temperature": 0}


def greedy(s: Server) -> str:
    status, _, body = s.post("/v1/chat/completions", PROMPT)
    assert status == 200, body
    return json.loads(body)["choices"][0]["message"]["content"]


def proc_status(pid: int, key: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def maps_file(pid: int, path: str) -> bool:
    real = os.path.realpath(path)
    return any(line.rstrip().endswith(real) for line in open(f"/proc/{pid}/maps"))


def mapped_answer(*extra: str) -> str:
    s = Server(*extra)
    try:
        assert maps_file(s.proc.pid, MODEL)
        return greedy(s)
    finally:
        s.stop()


@pytest.fixture(scope="module")
def reference() -> str:
    return mapped_answer()


# Repacked and plain-layout kernels sum in different orders, so each --no-mmap run is compared with the mapped run
# of the same --repack setting.
@pytest.mark.parametrize("repack", [(), ("--no-repack",)])
def test_no_mmap_reads_the_model_and_answers_the_same(reference, repack):
    want = mapped_answer(*repack) if repack else reference
    s = Server("--no-mmap", *repack)
    try:
        assert not maps_file(s.proc.pid, MODEL), "--no-mmap left a mapping of the model file"
        assert greedy(s) == want
        assert "read into memory: --no-mmap" in s.logtext_all()
    finally:
        s.stop()


@pytest.mark.parametrize("repack", [(), ("--no-repack",)])
def test_mlock_locks_the_model_in_ram(reference, repack):
    # The weights as read are locked: with repacking (the default) the load-time copies plus what stays in the file
    # mapping, and the file pages the copies replaced stay out (locking the whole file read them back in: the
    # weights twice, ~122 MB of file pages resident for this 96 MB model, against ~28 MB without --mlock).
    size = os.path.getsize(MODEL)
    s = Server("--mlock", *repack)
    try:
        assert proc_status(s.proc.pid, "VmLck") >= 0.9 * size
        if repack:      # --no-repack: the weights are the file mapping, all of it locked
            assert proc_status(s.proc.pid, "VmLck") >= size
        else:
            assert proc_status(s.proc.pid, "RssFile") < 0.5 * size, proc_status(s.proc.pid, "RssFile")
        # Repacked and plain-layout kernels sum in different orders (see above): the same answer as the mapped run
        # of the same setting.
        assert greedy(s) == (mapped_answer(*repack) if repack else reference)
        assert "locked in RAM (--mlock)" in s.logtext_all()
    finally:
        s.stop()


def test_repacked_file_pages_stay_released_after_requests():
    # Repacking copies the matrices and releases their file pages; the norms read in place between them mapped their
    # 2 MiB page-cache pages (and the released weights with them) back in at the first request: RssFile 29 → 95 MB.
    size = os.path.getsize(MODEL)
    s = Server()
    try:
        greedy(s)
        greedy(s)
        assert proc_status(s.proc.pid, "RssFile") < 0.5 * size, proc_status(s.proc.pid, "RssFile")
    finally:
        s.stop()


@pytest.mark.skipif(shutil.which("setpriv") is None or shutil.which("prlimit") is None,
                    reason="needs setpriv and prlimit (util-linux) to drop CAP_IPC_LOCK and lower RLIMIT_MEMLOCK")
def test_mlock_over_the_limit_is_a_clear_startup_error():
    # Without CAP_IPC_LOCK and with a 1 MiB locked-memory limit, locking the ~100 MB model must fail at start-up.
    cmd = ["prlimit", "--memlock=1048576:1048576", "setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock",
           BIN, "serve", "--model", MODEL, "--host", "127.0.0.1", "--port", str(free_port()), "--threads", "1",
           "--ctx-size", "256", "--mlock"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "--mlock could not lock" in out and "ulimit -l" in out, out
    assert os.path.basename(MODEL) in out
    # Known from the limit and the file's size before the server listens (it failed after the load).
    assert "the locked-memory limit is 1024 KiB" in out and "listening" not in out, out
