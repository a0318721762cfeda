"""Issue 16: corrupt GGUF files (made here from the tiny llama fixture: truncated at many offsets, flipped header
bytes, tensor offsets past the end, dimensions whose product overflows, unknown type ids, a 0-byte file) make
`sputnik serve` and `sputnik info` exit non-zero with one error line naming the file and the problem, never a
crash by signal (SIGSEGV, SIGBUS, SIGILL, SIGABRT, SIGTRAP)."""
import os
import random
import struct
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BIN

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "Fixtures", "dense", "llama-tiny", "llama-tiny.q8_0.gguf")


def walk(data: bytes):
    """Byte positions in a GGUF v3 file: the end of the header counts, and per tensor info where its dims,
    type and offset fields sit."""
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)

    def string(p):
        (n,) = struct.unpack_from("<Q", data, p)
        return p + 8 + n

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def value(p, t):
        if t in sizes:
            return p + sizes[t]
        if t == 8:
            return string(p)
        assert t == 9
        et, count = struct.unpack_from("<IQ", data, p)
        p += 12
        for _ in range(count):
            p = value(p, et)
        return p
    for _ in range(n_kv):
        pos = string(pos)
        (t,) = struct.unpack_from("<I", data, pos)
        pos = value(pos + 4, t)
    infos = []
    for _ in range(n_tensors):
        pos = string(pos)
        (nd,) = struct.unpack_from("<I", data, pos)
        dims = pos + 4
        typ = dims + 8 * nd
        infos.append({"ndims": nd, "dims": dims, "type": typ, "offset": typ + 4})
        pos = typ + 12
    return pos, infos


def variants(data: bytes):
    end, infos = walk(data)
    out = [("empty", b""), ("three bytes", data[:3]), ("not gguf", b"PK\x03\x04" + data[4:])]
    # Truncations: inside the header, the metadata, the tensor infos and the data, including at 1-byte steps
    # around the end of the header section.
    offsets = sorted(set([4, 8, 16, 23, 24, 25, 40, 100, 333, 1000, 4096, end - 9, end - 1, end, end + 1,
                          len(data) // 2, len(data) - 4096, len(data) - 1]))
    out += [(f"truncated at {o}", data[:o]) for o in offsets if 0 < o < len(data)]
    # Flipped bytes in the header and metadata (deterministic).
    rng = random.Random(16)
    for i in range(12):
        b = bytearray(data)
        p = rng.randrange(4, min(end, 4096))
        b[p] ^= 1 << rng.randrange(8)
        out.append((f"bit flip at {p}", bytes(b)))
    for p in (4, 8, 12, 16, 20):  # version, tensor count, metadata count: all bits of one byte
        b = bytearray(data)
        b[p] ^= 0xFF
        out.append((f"byte flip at {p}", bytes(b)))
    t = infos[len(infos) // 2]
    b = bytearray(data)
    struct.pack_into("<Q", b, t["offset"], (len(data) // 32 + 10) * 32)
    out.append(("tensor offset past the end", bytes(b)))
    b = bytearray(data)
    struct.pack_into("<Q", b, t["offset"], 0xFFFFFFFFFFFFFFE0)
    out.append(("tensor offset near 2^64", bytes(b)))
    b = bytearray(data)
    struct.pack_into("<Q", b, t["dims"], 1 << 39)
    if t["ndims"] > 1:
        struct.pack_into("<Q", b, t["dims"] + 8, 1 << 39)
    out.append(("dimension product overflows", bytes(b)))
    b = bytearray(data)
    struct.pack_into("<Q", b, t["dims"], 0)
    out.append(("zero dimension", bytes(b)))
    for typ in (99, 0xFFFFFFFF, 4):  # unknown, huge, a removed ggml type id
        b = bytearray(data)
        struct.pack_into("<I", b, t["type"], typ)
        out.append((f"tensor type id {typ}", bytes(b)))
    b = bytearray(data)
    struct.pack_into("<I", b, t["type"], 0)  # F32 instead of Q8_0: the data no longer fits its size
    out.append(("tensor type changed", bytes(b)))
    return out


def run(cmd):
    """Runs `cmd` to its exit; a server that comes up (the damage left the file valid) is stopped with SIGTERM
    and reported as exit 0. The child writes its output in append mode to a file that the test reads through its
    own descriptor (a shared file offset would let the test's reads move where the child writes)."""
    with tempfile.NamedTemporaryFile("w+", delete=False) as t:
        path = t.name
    try:
        with open(path, "ab") as sink:
            p = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while p.poll() is None and time.time() < deadline:
            with open(path, errors="replace") as f:
                if "ready on" in f.read():
                    p.terminate()
                    p.wait(timeout=30)
                    return 0, "loaded"
            time.sleep(0.05)
        if p.poll() is None:
            p.kill()
            p.wait()
            return None, "timeout"
        with open(path, errors="replace") as f:
            return p.returncode, f.read()
    finally:
        os.unlink(path)


@pytest.mark.parametrize("command", ["info", "serve"])
def test_corrupt_files_give_a_clear_error(command):
    data = open(FIXTURE, "rb").read()
    d = tempfile.mkdtemp()
    cases = []
    for i, (what, blob) in enumerate(variants(data)):
        path = os.path.join(d, f"case{i}.gguf")
        with open(path, "wb") as f:
            f.write(blob)
        cases.append((what, path))

    def one(case):
        what, path = case
        if command == "info":
            cmd = [BIN, "info", "--model", path, "--tensors"]
        else:
            cmd = [BIN, "serve", "--model", path, "--port", "0", "--threads", "1", "--ctx-size", "64"]
        code, out = run(cmd)
        return what, path, code, out

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, cases))
    failures = []
    refused = 0
    for what, path, code, out in results:
        if code is None:
            failures.append(f"{what}: did not exit")
        elif code < 0:
            failures.append(f"{what}: killed by signal {-code}: {out[-500:]}")
        elif code != 0:
            refused += 1
            errors = [l for l in out.splitlines() if l.startswith("Error:")]
            if len(errors) != 1 or os.path.basename(path) not in errors[0]:
                failures.append(f"{what}: no one-line error naming the file: {out[-400:]!r}")
        elif not what.startswith("bit flip"):
            # Only a random bit flip may leave a valid file (e.g. one letter of a token); every deliberate
            # corruption must be refused.
            failures.append(f"{what}: accepted")
    assert not failures, "\n".join(failures)
    assert len(results) >= 40 and refused >= 35, (len(results), refused)
