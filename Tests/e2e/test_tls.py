"""Issue 16: HTTPS with --ssl-keyfile/--ssl-certfile. A CA and a server certificate (SAN 127.0.0.1) are made in
the test with the openssl tool; Python's ssl, the openai client (httpx with verify=CA), curl --cacert and raw
sockets check TLS 1.2+, keep-alive, chunked request bodies, SSE, and that plain HTTP on the TLS port is closed."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time

import httpx
import openai
import pytest

from conftest import BIN, MODEL, free_port


def make_ca_and_cert(d: str):
    def run(*args):
        subprocess.run(args, cwd=d, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=Sputnik Test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                "authorityKeyIdentifier=keyid,issuer\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "1", "-extfile", "ext.cnf")
    return os.path.join(d, "ca.pem"), os.path.join(d, "server.pem"), os.path.join(d, "server.key")


class TLSServer:
    def __init__(self, cert, key, *extra):
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.log = open(f"/tmp/sputnik-e2e-tls-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--model", MODEL, "--host", "127.0.0.1", "--port", str(self.port), "--threads", "2",
             "--ctx-size", "2048", "--alias", "smollm2", "--ssl-keyfile", key, "--ssl-certfile", cert, *extra],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, ctx):
        deadline = time.time() + 120
        while time.time() < deadline:
            assert self.proc.poll() is None, self.logtext()
            try:
                c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("TLS server not ready: " + self.logtext())

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def tls():
    d = tempfile.mkdtemp()
    ca, cert, key = make_ca_and_cert(d)
    s = TLSServer(cert, key)
    ctx = ssl.create_default_context(cafile=ca)
    s.wait_ready(ctx)
    yield s, ca, ctx
    s.stop()
    assert s.proc.returncode == 0


def test_keep_alive_chunked_body_and_sse_over_tls(tls):
    s, ca, ctx = tls
    c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=60)
    c.connect()
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    body = json.dumps({"model": "smollm2", "max_tokens": 8, "temperature": 0,
                       "messages": [{"role": "user", "content": "héllo 世界"}]}).encode()
    # A chunked request body, split inside a multi-byte character.
    c.putrequest("POST", "/v1/chat/completions")
    c.putheader("Content-Type", "application/json")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for part in (body[:40], body[40:97], body[97:]):
        c.send(b"%x\r\n%s\r\n" % (len(part), part))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    assert r.status == 200
    whole = json.loads(r.read())
    assert whole["choices"][0]["message"]["content"]
    # The same connection (keep-alive) serves a streamed answer.
    c.request("POST", "/v1/chat/completions", body=json.dumps({**json.loads(body), "stream": True}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events = [l for l in r.read().decode().split("\n") if l.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    c.request("GET", "/v1/models")
    assert c.getresponse().status == 200


def test_openai_client_streamed_and_not(tls):
    s, ca, ctx = tls
    client = openai.OpenAI(base_url=s.base + "/v1", api_key="none", http_client=httpx.Client(verify=ssl.create_default_context(cafile=ca)))
    msgs = [{"role": "user", "content": "Say hi."}]
    r = client.chat.completions.create(model="smollm2", messages=msgs, max_tokens=8, temperature=0)
    text = r.choices[0].message.content
    assert text
    streamed = "".join(ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
        model="smollm2", messages=msgs, max_tokens=8, temperature=0, stream=True) if ch.choices)
    assert streamed == text


def test_curl_with_cacert(tls):
    s, ca, ctx = tls
    out = subprocess.run(["curl", "-sS", "--cacert", ca, s.base + "/v1/models"], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"][0]["id"] == "smollm2"
    # Without the CA the certificate is refused (the server is not trusted by accident).
    bad = subprocess.run(["curl", "-sS", s.base + "/v1/models"], capture_output=True, timeout=30)
    assert bad.returncode != 0


def test_old_protocols_and_plain_http_are_refused(tls):
    s, ca, ctx = tls
    for version, accepted in ((ssl.TLSVersion.TLSv1_1, False), (ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(ca)
        c.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets this client offer TLS 1.1: the refusal must come from the server
        c.minimum_version = c.maximum_version = version
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
                with c.wrap_socket(raw, server_hostname="127.0.0.1") as w:
                    got = w.version()
        except ssl.SSLError as e:
            got = e.reason
        if accepted:
            assert got in ("TLSv1.2", "TLSv1.3"), (version, got)
        else:
            assert got == "TLSV1_ALERT_PROTOCOL_VERSION", (version, got)
    # Plain HTTP on the TLS port: the connection is closed quickly, no hang.
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
        t0 = time.time()
        raw.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while True:
            try:
                data = raw.recv(4096)
            except ConnectionResetError:
                break
            if not data:
                break
            got += data
        assert time.time() - t0 < 5
        assert b"HTTP/1.1 200" not in got
    # The server still serves TLS clients.
    c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=30)
    c.request("GET", "/health")
    assert c.getresponse().status == 200


def test_tls_client_on_the_plain_port_is_answered_at_once(server):
    """An https:// client on a plain-HTTP port: its ClientHello cannot start a request line, so it gets a 400 and
    the close at once (it waited out the 10 s header timeout, holding a connection slot); curl reports it at once."""
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        c = ssl.create_default_context()
        c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            c.wrap_socket(raw, server_hostname="127.0.0.1")
    assert time.time() - t0 < 3
    t0 = time.time()
    r = subprocess.run(["curl", "-sk", "-o", "/dev/null", f"https://127.0.0.1:{server.port}/health"], timeout=30)
    assert r.returncode != 0 and time.time() - t0 < 3
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05hello")
        got = raw.recv(4096)
    assert got.startswith(b"HTTP/1.1 400") and b"plain HTTP" in got, got
