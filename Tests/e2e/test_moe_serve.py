"""`sputnik serve` serves a deepseek2 (DeepSeek-V3 architecture) model end to end: the tiny reference model from
Tests/Fixtures/moe, with the DeepSeek-R1 chat template given by --chat-template."""
import json
import os

from conftest import Server

FIX = os.path.join(os.path.dirname(__file__), "..", "Fixtures")


def test_deepseek2_serves_chat_with_r1_template():
    model = os.path.join(FIX, "moe", "deepseek-v3-tiny", "deepseek-v3-tiny.q8_0.gguf")
    template = os.path.join(FIX, "templates", "deepseek-r1-distill-qwen-7b.jinja")
    s = Server("--model", model, "--chat-template", template, "--ctx-size", "128")
    try:
        status, _, body = s.get("/v1/models")
        assert status == 200
        status, _, body = s.post("/v1/chat/completions", {
            "model": "smollm2", "temperature": 0, "max_tokens": 12,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}]})
        assert status == 200, body
        r = json.loads(body)
        assert r["usage"]["completion_tokens"] >= 1
        assert r["choices"][0]["finish_reason"] in ("stop", "length")
        # The R1 template put the user turn after its role tags: the prompt is longer than the text alone.
        assert r["usage"]["prompt_tokens"] > 6
        # Streaming works on the MoE model too.
        status, _, body = s.post("/v1/chat/completions", {
            "temperature": 0, "max_tokens": 6, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        assert status == 200 and body.decode().endswith("data: [DONE]\n\n")
    finally:
        s.stop()
