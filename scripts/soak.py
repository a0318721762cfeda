#!/usr/bin/env python3
"""Soak test (issue 16, `make soak`): N requests at concurrency C against a fresh `sputnik serve`: half streamed,
10% of the streamed ones disconnecting mid-stream, mixed prompt and completion lengths, 5% invalid. Every request
must end 200, 400 for the invalid ones, or 429/503 with Retry-After (a disconnect is the client's own end); none may
be lost or hang. RSS after N must be within 5% of RSS after N/5; open fds and threads back to their idle count;
sputnik:num_requests_running 0 and every KV block free at the end. Prints a Markdown report (RELIABILITY.md).
Exit 0 when every check holds."""
import argparse
import http.client
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import threading
import time
from serverproc import free_port


def start_server(binary, model, extra, log_prefix):
    """Starts `sputnik serve` on a free loopback port with `extra` flags, logging to /tmp/<log_prefix>-<port>.log,
    and waits (up to 180 s) for /health 200. Returns (process, port); exits the script if it never gets ready."""
    port = free_port()
    log = open(f"/tmp/{log_prefix}-{port}.log", "w+")
    p = subprocess.Popen([binary, "serve", "--model", model, "--port", str(port), "--threads", "2", "--alias", "m",
                          *extra], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return p, port
        except OSError:
            pass
        if time.time() > deadline or p.poll() is not None:
            p.kill()
            sys.exit("server did not start")
        time.sleep(0.2)


def proc_status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    m = re.search(r"^" + re.escape(name) + r"(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M)  # any labels (model_name)
    if not m:
        raise SystemExit(f"/metrics has no {name}")
    return float(m.group(1))


WORDS = "the quick brown fox jumps over a lazy dog while seven tired owls count silver stars".split()


def make_request(rng):
    """(kind, body bytes, streamed, disconnect)."""
    if rng.random() < 0.05:
        bad = rng.choice([b'{"messages": [', b'{"model": "m"}', b'[]',
                          json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -3}).encode(),
                          json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode()])
        return "invalid", bad, False, False
    streamed = rng.random() < 0.5
    disconnect = streamed and rng.random() < 0.2  # a fifth of the streamed half: 10% of the valid requests
    prompt = " ".join(rng.choice(WORDS) for _ in range(rng.choice([3, 12, 40, 150])))
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": rng.choice([1, 4, 8, 24]), "temperature": 0.8, "stream": streamed}
    if disconnect:
        body["max_tokens"] = 64
        body["ignore_eos"] = True
    return "valid", json.dumps(body).encode(), streamed, disconnect


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.codes = {}
        self.problems = []
        self.done = 0
        self.latencies = []

    def add(self, code, problem=None, latency=None):
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1
            self.done += 1
            if problem:
                self.problems.append(problem)
            if latency is not None:
                self.latencies.append(latency)


def one(port, rng, results, timeout):
    kind, body, streamed, disconnect = make_request(rng)
    t0 = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        code = r.status
        if code == 200 and disconnect:
            r.readline()
            r.readline()
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
            return results.add("disconnected")
        data = r.read()
        problem = None
        if kind == "invalid":
            if code != 400:
                problem = f"invalid request answered {code}: {data[:200]!r}"
        elif code == 200:
            if streamed and not data.rstrip().endswith(b"data: [DONE]"):
                problem = f"stream did not end with [DONE]: {data[-200:]!r}"
        elif code in (429, 503):
            if not r.headers.get("Retry-After"):
                problem = f"{code} without Retry-After"
        else:
            problem = f"valid request answered {code}: {data[:200]!r}"
        results.add(code, problem, time.time() - t0)
    except (socket.timeout, TimeoutError):
        results.add("hang", f"no answer within {timeout} s ({kind}, streamed={streamed})")
    except OSError as e:
        results.add("lost", f"connection error {e!r} ({kind})")
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-c", type=int, default=32)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--report", default="")
    args = ap.parse_args()
    p, port = start_server(args.bin, args.model, ["--ctx-size", "2048"], "sputnik-soak")
    try:
        time.sleep(1)
        for name in ("sputnik:num_requests_running", "sputnik:num_requests_waiting", "sputnik:kv_cache_usage_perc"):
            metric(port, name)  # fail at the start, not after the run, if a gauge cannot be read
        # libdispatch parks worker threads and retires them after tens of seconds idle, so the idle thread count is
        # the lowest seen over 45 s (the readiness probes above woke some), and the end check waits as long.
        idle_fds, idle_threads = fd_count(p.pid), proc_status(p.pid, "Threads")
        settle_idle = time.time() + 45
        while time.time() < settle_idle:
            time.sleep(1)
            idle_fds = min(idle_fds, fd_count(p.pid))
            idle_threads = min(idle_threads, proc_status(p.pid, "Threads"))
        results = Results()
        rss_marks = {}
        counter = [0]
        counter_lock = threading.Lock()
        mark_at = args.n // 5

        def worker(wid):
            rng = random.Random(args.seed * 1000 + wid)
            while True:
                with counter_lock:
                    if counter[0] >= args.n:
                        return
                    counter[0] += 1
                one(port, rng, results, args.timeout)
                with results.lock:
                    done = results.done
                if done >= mark_at and "first" not in rss_marks:
                    rss_marks.setdefault("first", (done, proc_status(p.pid, "VmRSS")))
        t0 = time.time()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.c)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        rss_end = proc_status(p.pid, "VmRSS")
        # Let aborted requests and closing connections settle: first the scheduler (polled over HTTP), then fds and
        # threads, read from /proc only. Polling /metrics meanwhile would itself keep libdispatch worker threads
        # awake (each request wakes some; they retire only after seconds without work), so the thread count would
        # never get back to idle while it is being measured.
        settle = time.time() + 120
        while time.time() < settle:
            if metric(port, "sputnik:num_requests_running") == 0 and metric(port, "sputnik:kv_cache_usage_perc") == 0:
                break
            time.sleep(2)
        while time.time() < settle:
            if fd_count(p.pid) <= idle_fds + 1 and proc_status(p.pid, "Threads") <= idle_threads:  # as the check below
                break
            time.sleep(0.5)
        end_fds, end_threads = fd_count(p.pid), proc_status(p.pid, "Threads")
        running = metric(port, "sputnik:num_requests_running")
        waiting = metric(port, "sputnik:num_requests_waiting")
        kv = metric(port, "sputnik:kv_cache_usage_perc")
        first_done, rss_first = rss_marks["first"]
        growth = (rss_end - rss_first) / rss_first
        lat = sorted(results.latencies)
        checks = [
            (f"every request answered: {results.done} of {args.n}", results.done == args.n),
            ("no request lost, hung or answered wrongly", not results.problems),
            (f"RSS after {args.n} within 5% of RSS after {first_done}: {rss_first} kB -> {rss_end} kB ({growth:+.1%})",
             abs(growth) <= 0.05),
            (f"open fds back to idle: {idle_fds} idle, {end_fds} at the end (the /metrics probe's socket may count 1)",
             end_fds <= idle_fds + 1),
            (f"threads back to idle: {idle_threads} idle, {end_threads} at the end", end_threads <= idle_threads),
            (f"sputnik:num_requests_running {running:g}, num_requests_waiting {waiting:g}", running == 0 and waiting == 0),
            (f"sputnik:kv_cache_usage_perc {kv:g} (every KV block free)", kv == 0),
        ]
        lines = [f"- command: `{' '.join(sys.argv)}`",
                 f"- machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} vCPUs "
                 f"({open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}), "
                 f"shared with other jobs; date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
                 f"- {args.n} requests at concurrency {args.c} in {elapsed:.0f} s ({args.n / elapsed:.1f} req/s); "
                 f"outcomes: " + ", ".join(f"{k}: {v}" for k, v in sorted(results.codes.items(), key=str)),
                 f"- latency of answered requests: p50 {lat[len(lat) // 2]:.2f} s, p99 {lat[int(len(lat) * 0.99)]:.2f} s, "
                 f"max {lat[-1]:.2f} s"]
        lines += [f"- [{'x' if ok else ' '}] {what}" for what, ok in checks]
        if results.problems:
            lines.append("- problems (first 10): " + "; ".join(results.problems[:10]))
        report = "\n".join(lines)
        print(report)
        if args.report:
            with open(args.report, "a") as f:
                f.write(report + "\n")
        sys.exit(0 if all(ok for _, ok in checks) else 1)
    finally:
        p.terminate()
        try:
            code = p.wait(timeout=60)
            print(f"- server exit code after SIGTERM: {code}")
        except subprocess.TimeoutExpired:
            p.kill()
            print("- server did not exit within 60 s of SIGTERM")


if __name__ == "__main__":
    main()
