"""Issue 15 item 3: /v1/completions (the legacy text API) and /v1/models/{id} through the official openai client."""
import json
import os
import time

import openai
import pytest

from conftest import MODEL, Server
from test_openai_client import client

PROMPT = "The capital of France is Paris. The capital of Italy is"


def complete(server, **kw):
    kw.setdefault("model", "smollm2")
    kw.setdefault("temperature", 0)
    return client(server).completions.create(**kw)


def test_string_prompt_defaults_to_16_tokens(server):
    r = complete(server, prompt=PROMPT)
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert len(r.choices) == 1 and r.choices[0].index == 0
    assert r.choices[0].text
    assert r.usage.completion_tokens <= 16
    if r.choices[0].finish_reason == "length":
        assert r.usage.completion_tokens == 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_prompt_shapes_are_choices(server):
    one = complete(server, prompt=PROMPT, max_tokens=8).choices[0].text
    ids = client(server).post("/tokenize", body={"content": PROMPT}, cast_to=object)["tokens"]
    r = complete(server, prompt=[PROMPT, "1, 2, 3, 4,"], max_tokens=8)
    assert [c.index for c in r.choices] == [0, 1]
    assert r.choices[0].text == one
    by_ids = complete(server, prompt=ids, max_tokens=8)
    assert by_ids.choices[0].text == one
    lists = complete(server, prompt=[ids, ids[:5]], max_tokens=8)
    assert [c.index for c in lists.choices] == [0, 1] and lists.choices[0].text == one
    assert lists.usage.prompt_tokens == len(ids) + 5


def test_echo_and_stop(server):
    r = complete(server, prompt=PROMPT, max_tokens=8, echo=True)
    plain = complete(server, prompt=PROMPT, max_tokens=8).choices[0].text
    assert r.choices[0].text == PROMPT + plain
    word = plain.split()[0]
    s = complete(server, prompt=PROMPT, max_tokens=8, stop=[word])
    assert word not in s.choices[0].text and s.choices[0].finish_reason == "stop"


def test_streamed_matches_whole(server):
    whole = complete(server, prompt=[PROMPT, "Once upon a time"], max_tokens=12)
    chunks = list(complete(server, prompt=[PROMPT, "Once upon a time"], max_tokens=12, stream=True,
                           stream_options={"include_usage": True}))
    for i in range(2):
        text = "".join(c.choices[0].text for c in chunks if c.choices and c.choices[0].index == i)
        assert text == whole.choices[i].text
        finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].index == i
                  and c.choices[0].finish_reason]
        assert finals == [whole.choices[i].finish_reason]
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_legacy_logprobs(server):
    r = complete(server, prompt=PROMPT, max_tokens=10, logprobs=3)
    c = r.choices[0]
    lp = c.logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == r.usage.completion_tokens
    assert "".join(lp.tokens) == c.text
    assert lp.text_offset[0] == 0
    for i in range(1, len(lp.tokens)):
        assert lp.text_offset[i] == lp.text_offset[i - 1] + len(lp.tokens[i - 1])
    for tok, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert l <= 0 and 1 <= len(top) <= 3
        assert max(top.values()) == l and top.get(tok) == l   # greedy: the chosen token is the most likely
    streamed = list(complete(server, prompt=PROMPT, max_tokens=10, logprobs=3, stream=True))
    tokens = [t for ch in streamed if ch.choices and ch.choices[0].logprobs for t in ch.choices[0].logprobs.tokens]
    assert tokens == lp.tokens
    # The sampled token is always in its top_logprobs ("up to logprobs+1 elements", OpenAI; vLLM): logprobs 0 gives it
    # alone, and a sampled token outside the top 1 joins it.
    zero = complete(server, prompt=PROMPT, max_tokens=4, logprobs=0).choices[0].logprobs
    assert len(zero.token_logprobs) == 4
    assert all(t == {tok: l} for tok, l, t in zip(zero.tokens, zero.token_logprobs, zero.top_logprobs))
    hot = complete(server, prompt=PROMPT, max_tokens=12, logprobs=1, temperature=1.5, seed=7).choices[0].logprobs
    assert all(t.get(tok) == l and len(t) <= 2 for tok, l, t in zip(hot.tokens, hot.token_logprobs, hot.top_logprobs))
    assert any(len(t) == 2 for t in hot.top_logprobs)   # some sampled token was not the most likely


def test_empty_suffix_is_no_suffix(server):
    """`suffix: ""` on a model without fill-in-the-middle tokens means no suffix (it was a 400); any other suffix
    there is still refused (test_errors)."""
    plain = complete(server, prompt=PROMPT, max_tokens=6, temperature=0)
    r = complete(server, prompt=PROMPT, max_tokens=6, temperature=0, suffix="")
    assert r.choices[0].text == plain.choices[0].text
    # With echo too (echo and a real suffix cannot be combined).
    r = complete(server, prompt=PROMPT, max_tokens=6, temperature=0, suffix="", echo=True)
    assert r.choices[0].text == PROMPT + plain.choices[0].text


def test_errors(server):
    for kw, param in [(dict(prompt=[10 ** 6]), "prompt"), (dict(prompt=PROMPT, suffix="x"), "suffix"),
                      (dict(prompt=PROMPT, n=9), "n"), (dict(prompt=PROMPT, best_of=3), "best_of"),
                      (dict(prompt=[]), "prompt"),
                      (dict(prompt=PROMPT, logit_bias={"99999999": 1}), "logit_bias"),
                      # Longer than the context (2048 here): the error names this route's field, not chat's messages.
                      (dict(prompt=PROMPT, max_tokens=4096), "prompt")]:
        with pytest.raises(openai.BadRequestError) as e:
            complete(server, **{"max_tokens": 2, **kw})
        assert e.value.body["param"] == param, kw
        if "max_tokens" in kw:
            assert e.value.body["code"] == "context_length_exceeded" and "in the prompt" in e.value.body["message"]


def test_echo_with_prompt_logprobs(server):
    ids = client(server).post("/tokenize", body={"content": PROMPT}, cast_to=object)["tokens"]
    plain = complete(server, prompt=PROMPT, max_tokens=5, logprobs=2)
    r = complete(server, prompt=PROMPT, max_tokens=5, logprobs=2, echo=True)
    c = r.choices[0]
    lp = c.logprobs
    n = len(ids)
    assert c.text == PROMPT + plain.choices[0].text
    assert "".join(lp.tokens) == c.text
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    assert all(x <= 0 for x in lp.token_logprobs[1:])
    assert all(2 <= len(t) <= 3 and t[tok] == l for tok, l, t in zip(lp.tokens[1:], lp.token_logprobs[1:], lp.top_logprobs[1:]))
    assert lp.tokens[n:] == plain.choices[0].logprobs.tokens
    assert lp.token_logprobs[n:] == plain.choices[0].logprobs.token_logprobs
    assert lp.text_offset[n] == len(PROMPT)
    streamed = list(complete(server, prompt=PROMPT, max_tokens=5, logprobs=2, echo=True, stream=True))
    tokens = [t for ch in streamed if ch.choices and ch.choices[0].logprobs for t in ch.choices[0].logprobs.tokens]
    assert tokens == lp.tokens


def check_text_offsets(text, lp):
    """`text_offset`: non-decreasing, within the text, and each whole token (no U+FFFD in its piece) found where its
    offset points."""
    assert lp.text_offset == sorted(lp.text_offset) and all(0 <= o <= len(text) for o in lp.text_offset), \
        (text, list(zip(lp.tokens, lp.text_offset)))
    for tok, off in zip(lp.tokens, lp.text_offset):
        if "\ufffd" not in tok:
            assert text[off:].startswith(tok), (tok, off, text)


def test_text_offset_counts_characters_spread_over_byte_tokens(server):
    # CJK and an emoji span several byte tokens in SmolLM2's vocabulary; each token's piece reads U+FFFD, which
    # once counted one scalar per token and ran the offsets past the text (13 characters, offsets up to 19).
    prompt = "日本語のテキスト 🎉 ok"
    c = complete(server, prompt=prompt, max_tokens=0, logprobs=1, echo=True).choices[0]
    assert c.text == prompt and len(c.logprobs.tokens) > len(prompt)
    check_text_offsets(c.text, c.logprobs)
    assert c.logprobs.text_offset[-1] == prompt.index(" ok")
    # Generated text too (greedy, this prompt's answer is Japanese).
    c = complete(server, prompt="Write the word for Japan in Japanese characters:", max_tokens=16, logprobs=1,
                 echo=True).choices[0]
    assert any(ord(ch) > 0x3000 for ch in c.text), c.text
    check_text_offsets(c.text, c.logprobs)


def test_echo_without_generation_scores_the_prompt(server):
    """`echo` with `max_tokens: 0` (vLLM's echo without generation; lm-evaluation-harness's loglikelihood request):
    the prompt alone, its log-probabilities, `length`, no completion tokens; streamed too, and with token-id
    prompts. Without `echo`, `max_tokens: 0` stays a 400 (helper's report of 2026-12-06: it was refused with echo)."""
    ids = client(server).post("/tokenize", body={"content": PROMPT}, cast_to=object)["tokens"]
    scored = complete(server, prompt=PROMPT, max_tokens=1, logprobs=1, echo=True).choices[0].logprobs
    r = complete(server, prompt=PROMPT, max_tokens=0, logprobs=1, echo=True)
    c = r.choices[0]
    assert c.text == PROMPT and c.finish_reason == "length"
    assert r.usage.completion_tokens == 0 and r.usage.prompt_tokens == len(ids)
    assert c.logprobs.tokens == scored.tokens[:len(ids)] and "".join(c.logprobs.tokens) == PROMPT
    assert c.logprobs.token_logprobs == scored.token_logprobs[:len(ids)]
    assert c.logprobs.token_logprobs[0] is None and all(x <= 0 for x in c.logprobs.token_logprobs[1:])
    # Token-id prompts, two of them (lm-eval batches its requests), and no logprobs: just the echoes.
    r = complete(server, prompt=[ids, ids[:4]], max_tokens=0, echo=True)
    assert [ch.text for ch in sorted(r.choices, key=lambda ch: ch.index)] == [PROMPT, "".join(scored.tokens[:4])]
    assert all(ch.finish_reason == "length" and ch.logprobs is None for ch in r.choices)
    assert r.usage.completion_tokens == 0
    chunks = list(complete(server, prompt=PROMPT, max_tokens=0, logprobs=1, echo=True, stream=True,
                           stream_options={"include_usage": True}))
    assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == PROMPT
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == 0
    with pytest.raises(openai.BadRequestError) as e:
        complete(server, prompt=PROMPT, max_tokens=0)
    assert e.value.body["param"] == "max_tokens"


def test_prompt_logprobs_agree_with_next_token_logprobs(server):
    # A prompt over several 32-token steps: position k's log-probability equals what a request whose prompt is the
    # first k tokens reports for that token as the next one (so rows and positions line up across chunks).
    long_prompt = " ".join(["one two three four five six seven eight nine ten"] * 8)
    ids = client(server).post("/tokenize", body={"content": long_prompt}, cast_to=object)["tokens"]
    echo = complete(server, prompt=long_prompt, max_tokens=1, logprobs=0, echo=True).choices[0].logprobs
    assert len(echo.tokens) == len(ids) + 1 and len(ids) > 64
    for k in (12, 31, 32, 33, 47, 70):  # within the repeats, where the next token is among the top 20
        r = complete(server, prompt=ids[:k], max_tokens=1, logprobs=20).choices[0].logprobs.top_logprobs[0]
        assert echo.tokens[k] in r, k
        assert abs(r[echo.tokens[k]] - echo.token_logprobs[k]) < 2e-3, k
    # The repeated phrase is predictable by its later occurrences.
    assert sum(echo.token_logprobs[40:60]) / 20 > sum(echo.token_logprobs[1:11]) / 10


def test_model_by_id(server):
    m = client(server).models.retrieve("smollm2")
    assert m.id == "smollm2" and m.object == "model"
    with pytest.raises(openai.NotFoundError) as e:
        client(server).models.retrieve("gpt-4o")
    assert e.value.body["code"] == "model_not_found"


CODER = os.path.join(os.path.dirname(MODEL), "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")


@pytest.mark.skipif(not os.path.exists(CODER), reason="needs models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
def test_fill_in_the_middle_on_qwen_coder():
    s = Server(model=CODER)
    try:
        c = openai.OpenAI(base_url=s.base + "/v1", api_key="unused", max_retries=0, timeout=120)
        prefix = "def add(a, b):\n    return "
        suffix = "\n\n\nprint(add(2, 3))\n"
        r = c.completions.create(model="smollm2", prompt=prefix, suffix=suffix, max_tokens=8, temperature=0)
        assert "a + b" in r.choices[0].text
        ids = lambda t: c.post("/tokenize", body={"content": t}, cast_to=object)["tokens"]
        assert r.usage.prompt_tokens == len(ids(prefix)) + len(ids(suffix)) + 3
        # Without the suffix the model just continues the prefix: the FIM layout is what changed the prompt.
        plain = c.completions.create(model="smollm2", prompt=prefix, max_tokens=8, temperature=0)
        assert plain.usage.prompt_tokens == len(ids(prefix))
    finally:
        s.stop()


def test_prompts_are_admitted_together_or_refused_as_a_whole():
    """More prompts than sequence slots plus queue can never be served at once: a 400 naming `prompt`, not a 429
    whose Retry-After can never succeed (it was 429 on an idle server, and each refusal first admitted and then
    aborted its leading prompts, counting them in request_finished_total). Fewer are served."""
    s = Server("--max-num-seqs", "2", "--max-queued-requests", "1")
    try:
        def finished():
            _, _, body = s.get("/metrics")
            return sum(float(l.split()[-1]) for l in body.decode().splitlines() if l.startswith("sputnik:request_finished_total"))
        before = finished()
        status, headers, body = s.post("/v1/completions", {"prompt": ["a", "b", "c", "d"], "max_tokens": 2})
        assert status == 400, body
        assert json.loads(body)["error"]["param"] == "prompt"
        assert "Retry-After" not in dict(headers)
        status, _, body = s.post("/v1/completions", {"prompt": ["a", "b", "c"], "max_tokens": 2})
        assert status == 200, body
        assert sorted(c["index"] for c in json.loads(body)["choices"]) == [0, 1, 2]
        time.sleep(0.3)
        assert finished() - before == 3
    finally:
        s.stop()
    # KV blocks too: two prompts that each fit the pool but not together, with no queue, can never start together.
    s = Server("--max-num-seqs", "2", "--max-queued-requests", "0", "--ctx-size", "256", "--kv-cache-memory", "5898240")
    try:
        long = "one two three four five six seven eight nine ten " * 15   # ~150 tokens
        status, headers, body = s.post("/v1/completions", {"prompt": [long, long], "max_tokens": 2})
        assert status == 400, body
        assert json.loads(body)["error"]["param"] == "prompt"
        status, _, body = s.post("/v1/completions", {"prompt": [long], "max_tokens": 2})
        assert status == 200, body
    finally:
        s.stop()


def test_prompt_far_over_the_context_is_refused_before_tokenizing(server):
    """A prompt whose text cannot fit the context whatever its tokens is a 400 `context_length_exceeded` at once,
    saying how many tokens it is at least: tokenizing megabytes only to refuse them held a server worker for
    seconds (six such requests delayed /tokenize by 18.7 s)."""
    text = "word " * 600_000   # 3 MB
    for path, body, field in [("/v1/completions", {"prompt": text, "max_tokens": 2}, "prompt"),
                              ("/v1/chat/completions", {"messages": [{"role": "user", "content": text}], "max_tokens": 2},
                               "messages")]:
        status, _, out = server.post(path, body)
        assert status == 400, out[:300]
        err = json.loads(out)["error"]
        assert err["code"] == "context_length_exceeded" and err["param"] == field, err
        assert "at least" in err["message"], err
    # The Responses route names its own field.
    status, _, out = server.post("/v1/responses", {"input": text, "max_output_tokens": 16})
    err = json.loads(out)["error"]
    assert status == 400 and err["param"] == "input" and "your input is at least" in err["message"], err
    # "At least" is more than the limit (rounded up).
    n = int(err["message"].split("at least ")[1].split()[0])
    assert n > 2048, err
    # A prompt just over the context is still counted exactly.
    status, _, out = server.post("/v1/completions", {"prompt": "word " * 3000, "max_tokens": 2})
    assert status == 400 and "at least" not in json.loads(out)["error"]["message"]


def test_echo_scores_a_prompt_of_the_whole_context(server):
    """`echo` with `max_tokens: 0` only scores the prompt, so a prompt exactly the context long fits (lm-eval's
    rolling log-likelihood windows are): it was a 400 counting one completion token that is thrown away."""
    ids = [28] * 2048
    r = complete(server, prompt=ids, max_tokens=0, echo=True, logprobs=1)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == 2048 and lp.token_logprobs[0] is None and all(x is not None for x in lp.token_logprobs[1:])
    assert r.usage.prompt_tokens == 2048 and r.usage.completion_tokens == 0
    with pytest.raises(openai.BadRequestError) as e:
        complete(server, prompt=ids + [28], max_tokens=0, echo=True, logprobs=1)
    assert e.value.body["param"] == "prompt"
    # Generating still needs room for the completion.
    with pytest.raises(openai.BadRequestError):
        complete(server, prompt=ids, max_tokens=1)


@pytest.mark.parametrize("prompt", [[1532], "Hello"])
def test_streamed_echo_logprobs_of_a_one_token_prompt(server, prompt):
    """A one-token prompt's (empty) prompt log-probabilities were reported while the request was admitted, before the
    stream's head, which now waits for the engine to start the request: the write before the head killed the
    process (helper-42)."""
    status, _, raw = server.post("/v1/completions", {"model": "smollm2", "prompt": prompt, "max_tokens": 3,
                                                     "stream": True, "echo": True, "logprobs": 1, "temperature": 0})
    assert status == 200, raw
    events = [l[6:] for l in raw.decode().split("\n") if l.startswith("data: ")]
    assert events[-1] == "[DONE]"
    first = json.loads(events[0])["choices"][0]
    assert first["logprobs"]["token_logprobs"] == [None]
    assert server.get("/health")[0] == 200


def test_text_offset_counts_control_tokens_typed_in_the_prompt(server):
    """A text prompt's control tokens (`<|im_start|>` typed by the client) are in the echoed text, so they take their
    width in `text_offset` (they counted as zero width: every later offset pointed at the wrong characters); a
    token-id prompt's echo is detokenized without them, and there they stay zero-width."""
    prompt = "<|im_start|>user\nHi<|im_end|>\n"
    c = complete(server, prompt=prompt, max_tokens=0, logprobs=0, echo=True).choices[0]
    assert c.text == prompt
    check_text_offsets(c.text, c.logprobs)
    assert c.logprobs.text_offset == [0, 12, 16, 17, 19, 29], list(zip(c.logprobs.tokens, c.logprobs.text_offset))
    c = complete(server, prompt=prompt, max_tokens=2, logprobs=0, echo=True, temperature=0).choices[0]
    assert c.logprobs.text_offset[:7] == [0, 12, 16, 17, 19, 29, len(prompt)]
    ids = json.loads(server.post("/tokenize", {"content": prompt, "parse_special": True})[2])["tokens"]
    c = complete(server, prompt=ids, max_tokens=0, logprobs=0, echo=True).choices[0]
    assert c.text == "user\nHi\n", c.text
    assert c.logprobs.text_offset == [0, 0, 4, 5, 7, 7], list(zip(c.logprobs.tokens, c.logprobs.text_offset))


def test_bytes_that_are_not_utf8_become_replacement_characters(server):
    """A model can write bytes that are not UTF-8 (a lone continuation byte). They were dropped from the text
    (helper-61: `text` "aa" for bytes FE FE a FE …), so the text lost what the model wrote and no longer matched its
    tokens' bytes; now each invalid subpart is U+FFFD, as `/detokenize`, echo, vLLM and llama-server give it, streamed
    and not."""
    lone = None
    for i in range(0, 400):   # the byte-level vocabulary's token for a lone continuation byte
        st, _, body = server.post("/detokenize", {"tokens": [i]})
        if st == 200 and json.loads(body)["content"] == "\ufffd":
            lone = i
            break
    assert lone is not None
    req = {"prompt": "hi", "max_tokens": 3, "temperature": 0, "logit_bias": {str(lone): 100}, "logprobs": 0}
    st, _, body = server.post("/v1/completions", req)
    assert st == 200, body
    c = json.loads(body)["choices"][0]
    assert c["text"] == "\ufffd" * 3, c
    st, _, streamed = server.post("/v1/completions", dict(req, stream=True))
    pieces = [json.loads(l[6:])["choices"][0]["text"] for l in streamed.decode().split("\n")
              if l.startswith("data: {") and json.loads(l[6:])["choices"]]
    assert "".join(pieces) == c["text"]
