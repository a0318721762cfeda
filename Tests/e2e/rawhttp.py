"""Minimal raw HTTP/1.1 client over a socket, to check framing byte by byte."""
import json
import socket
import time


def request(port: int, raw: bytes, timeout: float = 60.0) -> bytes:
    """Sends raw bytes and reads until the server closes or the response is complete."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        return read_response(s, timeout)


def read_response(s: socket.socket, timeout: float = 60.0) -> bytes:
    buf = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1").lower()
            body = buf[head_end + 4:]
            if "transfer-encoding: chunked" in head and body.endswith(b"0\r\n\r\n") and complete_chunked(body):
                return buf
            for line in head.split("\r\n"):
                if line.startswith("content-length:") and len(body) >= int(line.split(":")[1]):
                    return buf
        data = s.recv(65536)
        if not data:
            return buf
        buf += data
    raise TimeoutError("response not complete")


def complete_chunked(body: bytes) -> bool:
    try:
        dechunk(body)
        return True
    except ValueError:
        return False


def split(resp: bytes):
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return status, headers, body


def dechunk(body: bytes) -> bytes:
    out = b""
    i = 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            raise ValueError("incomplete chunk size")
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            if body[j + 2:j + 4] != b"\r\n":
                raise ValueError("incomplete end")
            return out
        if len(body) < j + 2 + size + 2:
            raise ValueError("incomplete chunk")
        out += body[j + 2:j + 2 + size]
        if body[j + 2 + size:j + 4 + size] != b"\r\n":
            raise ValueError("chunk not followed by CRLF")
        i = j + 4 + size


def post(path: str, body: dict | bytes, extra: str = "") -> bytes:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n{extra}\r\n").encode() + data
