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


def _serve_error(args, env_extra=None):
    """Runs `sputnik serve` with `args` (and extra environment) expecting a startup error; returns its output."""
    import subprocess
    from conftest import BIN, MODEL
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPUTNIK_")}
    env.update(env_extra or {})
    p = subprocess.run([BIN, "serve", "--model", MODEL, "--host", "127.0.0.1", "--port", "0", *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def test_bad_option_values_name_where_they_were_written():
    # From the environment: the message names the variable, not the flag the user never typed.
    out = _serve_error([], {"SPUTNIK_KV_CACHE_TYPE": "q4"})
    assert "SPUTNIK_KV_CACHE_TYPE must be f16, bf16, f32 or q8_0" in out, out
    assert "--kv-cache-type" not in out, out
    out = _serve_error([], {"SPUTNIK_LOG_FORMAT": "xml"})
    assert "SPUTNIK_LOG_FORMAT must be text or json, got 'xml'" in out, out
    out = _serve_error([], {"SPUTNIK_SSL_KEYFILE": "/nonexistent/key.pem"})
    assert ("SPUTNIK_SSL_KEYFILE is set without ssl-certfile (--ssl-certfile, SPUTNIK_SSL_CERTFILE or config key "
            "'ssl-certfile'): TLS needs both") in out, out
    out = _serve_error([], {"SPUTNIK_SSL_KEYFILE": "/nonexistent/key.pem", "SPUTNIK_SSL_CERTFILE": "/nonexistent/c.pem"})
    assert "SPUTNIK_SSL_KEYFILE / SPUTNIK_SSL_CERTFILE: " in out, out
    out = _serve_error([], {"SPUTNIK_ALLOWED_ORIGINS": "[bad"})
    assert "SPUTNIK_ALLOWED_ORIGINS: expected a JSON list of strings, got [bad" in out, out
    out = _serve_error([], {"SPUTNIK_KV_CACHE_MEMORY": "10"})
    assert "SPUTNIK_KV_CACHE_MEMORY 10 bytes holds" in out and "--kv-cache-memory" not in out, out
    # The least it suggests holds the context in whole blocks (helper-74: 200 tokens in blocks of 64 need 4 blocks,
    # 256 × 23,040 bytes, not 200 × 23,040), and that value is accepted.
    out = _serve_error(["--ctx-size", "200", "--block-size", "64", "--kv-cache-memory", "5000000"])
    assert ("holds 192 tokens of KV cache (23040 bytes per token), fewer than the context of 200 tokens: raise it to "
            "at least 5898240 bytes (whole blocks of 64 tokens)") in out, out
    s = Server("--ctx-size", "200", "--block-size", "64", "--kv-cache-memory", "5898240")
    s.stop()
    out = _serve_error(["--alias", ""])
    assert "--alias must not be empty" in out, out
    # From the config file: the key.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("max-num-seqs: 0\n")
        path = f.name
    try:
        out = _serve_error(["--config", path])
        assert "config key 'max-num-seqs' must be 1...1024" in out, out
        # A flag wins over both, and then the message names the flag.
        out = _serve_error(["--config", path, "--max-num-seqs", "2000"], {"SPUTNIK_MAX_NUM_SEQS": "4"})
        assert "--max-num-seqs must be 1...1024" in out, out
        with open(path, "a") as f:
            f.write("log-level: verbose\n")
        out = _serve_error(["--config", path, "--max-num-seqs", "4"])
        assert "config key 'log-level' must be one of trace, debug, info" in out and "got 'verbose'" in out, out
    finally:
        os.unlink(path)


def _serve_output(argv, env_extra=None):
    """Runs `sputnik serve` with exactly `argv` (no --model added), expecting a startup error; returns its output."""
    import subprocess
    from conftest import BIN
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPUTNIK_")}
    env.update(env_extra or {})
    p = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", "0", *argv], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def test_missing_files_are_named_with_their_source_before_listening():
    from conftest import MODEL
    # A model file that is not there: refused before the server listens, under the flag or variable that named it.
    out = _serve_output(["--model", "/nonexistent/m.gguf"])
    assert "--model /nonexistent/m.gguf: No such file or directory" in out, out
    assert "listening" not in out, out
    out = _serve_output([], {"SPUTNIK_MODEL": "/nonexistent/m.gguf"})
    assert "SPUTNIK_MODEL /nonexistent/m.gguf: No such file or directory" in out, out
    out = _serve_output(["--model", os.path.dirname(MODEL)])
    assert f"--model {os.path.dirname(MODEL)}: is a directory" in out, out
    out = _serve_output(["--model", MODEL, "--chat-template", "/nonexistent/t.jinja"])
    assert "--chat-template /nonexistent/t.jinja: No such file or directory" in out and "listening" not in out, out
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("chat-template: /nonexistent/t.jinja\n")
        path = f.name
    try:
        out = _serve_output(["--model", MODEL, "--config", path])
        assert "config key 'chat-template' /nonexistent/t.jinja: No such file or directory" in out, out
    finally:
        os.unlink(path)
    # The config file itself, from the flag or the variable.
    out = _serve_output(["--model", MODEL], {"SPUTNIK_CONFIG": "/nonexistent/c.yaml"})
    assert "config file (SPUTNIK_CONFIG) /nonexistent/c.yaml: No such file or directory" in out, out
    assert "Usage:" not in out, out
    out = _serve_output(["--model", MODEL, "--config", "/nonexistent/c.yaml"])
    assert "config file (--config) /nonexistent/c.yaml: No such file or directory" in out, out


def test_allowed_origins_must_be_origins():
    for bad, why in [("not a url,,", "no scheme://"), ("null", "no scheme://"), ("https://app.example/path", "no user, path"),
                     ("http://localhost:99999", "port must be 1...65535"), ("https://*.wild.example", "wildcard"),
                     ("https://a.example http://b.example", "separate origins with commas"), ("https://", "no host"),
                     ("https://münchen.example", "xn-- (punycode) form")]:
        out = _serve_error(["--allowed-origins", bad])
        assert "--allowed-origins: '" in out and "is not an origin" in out and why in out, (bad, out)
        assert "OriginError" not in out, out
    out = _serve_error([], {"SPUTNIK_ALLOWED_ORIGINS": '["https://ok.example", "*.example"]'})
    assert "SPUTNIK_ALLOWED_ORIGINS: '*.example' is not an origin" in out, out
    # A JSON list is parsed strictly (JSONSerialization took a trailing comma) and must hold strings only.
    for bad in ['["https://ok.example",]', '["https://ok.example", 5]', '[']:
        out = _serve_error(["--allowed-origins", bad])
        assert f"--allowed-origins: expected a JSON list of strings, got {bad}" in out, (bad, out)


def test_model_and_template_values_are_checked_before_listening(tmp_path):
    from conftest import MODEL
    fifo = tmp_path / "fifo.gguf"
    os.mkfifo(fifo)
    # A pipe or device is not a model file (a pipe hung in "loading" forever; /dev/zero was "truncated").
    for path in [str(fifo), "/dev/zero"]:
        out = _serve_output(["--model", path])
        assert f"--model {path}: is not a regular file" in out and "listening" not in out, out
    out = _serve_output(["--model", ""])
    assert "--model must not be empty" in out, out
    # Files that are not GGUF: refused before listening too (the header is parsed; the weights load after).
    empty_model, text_model = tmp_path / "empty.gguf", tmp_path / "text.gguf"
    empty_model.write_bytes(b"")
    text_model.write_text("not a model at all, just text\n" * 4)
    for path, why in [(empty_model, "file is truncated (while reading header)"), (text_model, "not a GGUF file (bad magic)")]:
        out = _serve_output(["--model", str(path)])
        assert f"{path}: {why}" in out and "listening" not in out, out
    out = _serve_output(["--model", "no/such/model.gguf"])
    assert f"(relative to the current directory {os.getcwd()})" in out, out
    # The model as an argument, as `vllm serve MODEL`; not both ways at once.
    out = _serve_output(["/nonexistent/m.gguf"])
    assert "model file /nonexistent/m.gguf: No such file or directory" in out, out
    out = _serve_output([MODEL, "--model", MODEL])
    assert "give the model file once" in out, out
    # Config values that are not strings.
    for text, why in [("model:\n", "config key 'model' must be a string, got no value"),
                      ("model: [a, b]\n", "config key 'model' must be a string")]:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(text)
        out = _serve_output(["--config", str(cfg)])
        assert why in out, out
    out = _serve_output(["--model", MODEL, "--config", ""])
    assert "--config must not be empty" in out, out
    # A config "file" that is a pipe blocked forever; /dev/zero was read until memory ran out.
    for path, env in [(str(fifo), {}), ("/dev/zero", {}), ("/dev/zero", {"SPUTNIK_CONFIG": "/dev/zero"})]:
        args = ["--model", MODEL] + ([] if env else ["--config", path])
        out = _serve_output(args, env)
        assert f"config file ({'SPUTNIK_CONFIG' if env else '--config'}) {path}: is not a regular file" in out, out
    # Chat templates: parsed before listening, named by where they were given.
    bad = tmp_path / "bad.jinja"
    bad.write_text("{% for m in messages %}{{ m.content }")
    out = _serve_output(["--model", MODEL, "--chat-template", str(bad)])
    assert f"--chat-template {bad}: chat template syntax error (line 1)" in out and "listening" not in out, out
    empty = tmp_path / "empty.jinja"
    empty.write_text("\n")
    out = _serve_output(["--model", MODEL], {"SPUTNIK_CHAT_TEMPLATE": str(empty)})
    assert f"SPUTNIK_CHAT_TEMPLATE {empty}: the file is empty" in out, out
    out = _serve_output(["--model", MODEL, "--chat-template", ""])
    assert "--chat-template must not be empty" in out, out


def test_model_as_the_argument_serves():
    from conftest import MODEL
    s = Server(MODEL, model=None)
    try:
        status, _, body = s.get("/v1/models")
        assert status == 200 and json.loads(body)["data"], body
    finally:
        s.stop()


def test_negative_numbers_reach_the_range_checks():
    """`--port -1` is a value out of range, not a missing value ("Missing value for '--port <port>'" hid the
    range the option takes); the same for the other numeric options."""
    for flag in ["--port", "--timeout", "--shutdown-timeout", "--sse-keepalive", "--threads", "--ctx-size"]:
        out = _serve_error([flag, "-1"])
        assert "Missing value" not in out and flag in out, (flag, out)
    out = _serve_error(["--kv-cache-memory", "-1"])
    assert "--kv-cache-memory must be a positive number of bytes" in out and "listening" not in out, out
    import subprocess
    from conftest import BIN, MODEL
    for args, flag in [(["info", MODEL, "--ctx-size", "-1"], "--ctx-size"), (["info", MODEL, "--max-num-seqs", "-1"], "--max-num-seqs"),
                       (["chat", MODEL, "--max-tokens", "-1"], "--max-tokens"), (["chat", MODEL, "--temperature", "-0.5"], "--temperature"),
                       (["detokenize", "-m", MODEL, "--ids", "-1"], "")]:
        p = subprocess.run([BIN, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        out = p.stdout + p.stderr
        assert "Missing value" not in out and flag in out, (args, out)


def test_a_step_budget_below_max_num_seqs_is_refused_and_the_default_grows():
    """Every running sequence takes a token of a step's budget, so an explicit --max-num-batched-tokens below
    --max-num-seqs cannot be honoured: refused naming both (vLLM refuses it too; it was raised silently). Left unset,
    the budget grows to --max-num-seqs and the server starts."""
    out = _serve_error(["--max-num-seqs", "8", "--max-num-batched-tokens", "4"])
    assert "--max-num-batched-tokens (4) must be at least --max-num-seqs (8)" in out and "listening" not in out, out
    out = _serve_error(["--max-num-batched-tokens", "4"], {"SPUTNIK_MAX_NUM_SEQS": "6"})
    assert "--max-num-batched-tokens (4) must be at least SPUTNIK_MAX_NUM_SEQS (6)" in out, out
    from conftest import Server
    s = Server("--max-num-seqs", "600", "--ctx-size", "64")
    try:
        status, _, body = s.post("/v1/completions", {"model": "smollm2", "prompt": "Hi", "max_tokens": 2})
        assert status == 200, body
    finally:
        s.stop()
