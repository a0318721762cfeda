"""`sputnik serve --config FILE`: keys of the YAML file apply, flags override them; --api-key guards /v1 routes."""
import json
import os
import tempfile

from conftest import Server


def test_config_file_and_flag_override():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        # repack: false keeps the weights in the file mapping (llama-server's --no-repack); the server must load.
        f.write("alias: from-file\nmax-num-seqs: 2\napi-key: sekret\nrepack: false\n")
        path = f.name
    # conftest passes --alias smollm2 on the command line: it must win over the file's alias.
    s = Server("--config", path)
    try:
        status, _, body = s.get("/v1/models", headers={"Authorization": "Bearer sekret"})
        assert status == 200
        assert [m["id"] for m in json.loads(body)["data"]] == ["smollm2"]
        # The file's api-key applies.
        status, headers, body = s.get("/v1/models")
        assert status == 401
        assert json.loads(body)["error"]["type"]
        # RFC 9110 §15.5.2: a 401 carries a challenge.
        assert headers.get("WWW-Authenticate") == "Bearer", headers
        status, _, body = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]},
                                 headers={"Authorization": "Bearer wrong"})
        assert status == 401
        # /health stays open for load balancers.
        assert s.get("/health")[0] == 200
    finally:
        s.stop()
        os.unlink(path)


def test_bad_config_is_a_clear_startup_error():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("no-such-option: 1\n")
        path = f.name
    try:
        Server("--config", path)
        raise AssertionError("server started with an unknown config key")
    except RuntimeError as e:
        assert "no-such-option" in str(e)
    finally:
        os.unlink(path)


def test_cors_preflight(server):
    import urllib.request
    req = urllib.request.Request(server.base + "/v1/chat/completions", method="OPTIONS",
                                 headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
