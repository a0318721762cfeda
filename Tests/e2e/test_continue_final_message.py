"""`continue_final_message` (vLLM's extension; the prefill of /v1/messages) builds the prompt as transformers does:
the whole chat rendered without the generation prompt, cut right after the final message's content. Checked byte for
byte against continue_renders.jsonl (jinja2 3.1.6 + transformers' cut, make_continue_renders.py) on every fixture
template. Appending the content after the generation prompt, as before, differed on Qwen3 (which renders
`<think>\\n\\n</think>\\n\\n` before a final answer), DeepSeek V3.1 / V3.2 (`<think></think>`, `</think>`) and Llama 3
(which trims the content)."""
import datetime
import json
import os

import pytest

from conftest import Server, TEMPLATES

RENDERS = [json.loads(l) for l in open(os.path.join(TEMPLATES, "continue_renders.jsonl"), encoding="utf-8")]
FILES = sorted({r["file"] for r in RENDERS})


def pinned(prompt: str) -> str:
    """The prompt with today's date as the fixtures' pinned `strftime_now` clock (2025-01-15) writes it (Llama 3.2 and
    Mistral Small put the date in their system prompt)."""
    today, then = datetime.date.today(), datetime.date(2025, 1, 15)
    for fmt in ("%d %b %Y", "%Y-%m-%d"):
        prompt = prompt.replace(today.strftime(fmt), then.strftime(fmt))
    return prompt


@pytest.mark.parametrize("file", FILES)
def test_the_prompt_is_transformers_continuation(file):
    s = Server("--chat-template", os.path.join(TEMPLATES, file))
    try:
        for r in (r for r in RENDERS if r["file"] == file):
            body = {"model": "m", "messages": r["messages"], "continue_final_message": True,
                    "add_generation_prompt": False}
            status, _, raw = s.post("/apply-template", body)
            if r["prompt"] is None:
                assert status == 400, (r["conversation"], raw)
                continue
            assert status == 200, (r["conversation"], raw)
            assert pinned(json.loads(raw)["prompt"]) == r["prompt"], r["conversation"]
    finally:
        s.stop()


def test_generation_continues_from_that_prompt():
    """The chat route generates from the same prompt (its prompt_tokens are those of /apply-template's text), and the
    reply holds only the continuation."""
    s = Server("--chat-template", os.path.join(TEMPLATES, "Qwen-Qwen3-0.6B.jinja"))
    try:
        r = next(r for r in RENDERS if r["file"] == "Qwen-Qwen3-0.6B.jinja" and r["conversation"] == "answer_start")
        body = {"model": "m", "messages": r["messages"], "continue_final_message": True,
                "add_generation_prompt": False, "max_tokens": 3, "temperature": 0}
        status, _, raw = s.post("/tokenize", {"content": r["prompt"], "parse_special": True})
        assert status == 200, raw
        tokens = json.loads(raw)["tokens"]
        status, _, raw = s.post("/v1/chat/completions", body)
        assert status == 200, raw
        out = json.loads(raw)
        assert out["usage"]["prompt_tokens"] == len(tokens)
        assert not out["choices"][0]["message"]["content"].startswith("The colour is")
    finally:
        s.stop()


def test_a_template_that_does_not_render_the_content_is_a_400():
    """The R1 distill template keeps only what follows `</think>` of an assistant message: a final message with its
    reasoning inline is not in the prompt, so it cannot be continued (transformers raises; vLLM answers 400)."""
    s = Server("--chat-template", os.path.join(TEMPLATES, "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"))
    try:
        body = {"model": "m", "max_tokens": 2, "continue_final_message": True, "add_generation_prompt": False,
                "reasoning_format": "none",
                "messages": [{"role": "user", "content": "Hi"},
                             {"role": "assistant", "content": "<think>greet</think>Hello"}]}
        status, _, raw = s.post("/v1/chat/completions", body)
        assert status == 400, raw
        assert json.loads(raw)["error"]["param"] == "continue_final_message", raw
    finally:
        s.stop()


@pytest.mark.parametrize("content", ["d", "e", "end", "im"])
def test_a_content_found_in_the_templates_closing_markup_is_cut_at_its_own_place(server, content):
    """helper-68: the last occurrence of a short content can be inside the template's own closing markup (`d` in
    `<|im_end|>`), where transformers' rindex cuts (`…assistant\\nd<|im_end`); the server cuts at the content's place,
    found from a render with a marker in its stead."""
    body = {"model": "m", "continue_final_message": True, "add_generation_prompt": False,
            "messages": [{"role": "user", "content": "Pick a letter."}, {"role": "assistant", "content": content}]}
    status, _, raw = server.post("/apply-template", body)
    assert status == 200, raw
    assert json.loads(raw)["prompt"].endswith("<|im_start|>assistant\n" + content)
