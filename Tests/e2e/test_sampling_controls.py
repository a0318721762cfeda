"""Issue 15 items 1 and 2 through the official openai client: penalties, logit_bias, min_tokens, stop_token_ids and
chat logprobs (streamed and not). vLLM extras go through `extra_body`, as clients send them."""
import json
import math

import openai
import pytest

from test_openai_client import PARIS, client

STORY = [{"role": "user", "content": "Write a long story about a cat and a dog who live in a small house."}]


def chat(server, messages=STORY, max_tokens=40, **kw):
    return client(server).chat.completions.create(model="smollm2", temperature=0, max_tokens=max_tokens,
                                                  messages=messages, **kw)


def token_ids(server, text):
    status, _, body = server.post("/tokenize", {"content": text})
    assert status == 200, body
    return json.loads(body)["tokens"]


def test_neutral_values_equal_absent(server):
    base = chat(server).choices[0].message.content
    neutral = chat(server, presence_penalty=0, frequency_penalty=0,
                   extra_body={"repetition_penalty": 1, "min_tokens": 0, "logit_bias": {}}).choices[0].message.content
    assert neutral == base


@pytest.mark.parametrize("kw", [dict(frequency_penalty=2.0), dict(presence_penalty=2.0),
                                dict(extra_body={"repetition_penalty": 1.8})])
def test_penalties_visibly_change_greedy_output(server, kw):
    base = chat(server, max_tokens=60).choices[0].message.content
    penalised = chat(server, max_tokens=60, **kw).choices[0].message.content
    assert penalised != base


def test_frequency_penalty_reduces_repetition(server):
    base = chat(server, max_tokens=80).choices[0].message.content.split()
    penalised = chat(server, max_tokens=80, frequency_penalty=1.5).choices[0].message.content.split()
    # A larger share of distinct words once repeats cost logit.
    assert len(set(penalised)) / len(penalised) > len(set(base)) / len(base)


def test_logit_bias_ban_and_force(server):
    first = chat(server, max_tokens=5, logprobs=True).choices[0].logprobs.content[0].token
    banned = token_ids(server, first)
    assert len(banned) == 1, first
    r = chat(server, max_tokens=5, logprobs=True, logit_bias={str(banned[0]): -100})
    assert r.choices[0].logprobs.content[0].token != first
    assert all(e.token != first for e in r.choices[0].logprobs.content)
    forced = token_ids(server, " the")
    assert len(forced) == 1
    r = chat(server, max_tokens=6, logit_bias={str(forced[0]): 100})
    assert r.choices[0].message.content == " the" * 6
    assert r.choices[0].finish_reason == "length"


def test_logit_bias_outside_the_vocabulary_is_a_400(server):
    for bias in ({"49152": 1}, {"-1": 1}, {"abc": 1}, {"5": 101}, {"5": "x"}):
        with pytest.raises(openai.BadRequestError) as e:
            chat(server, max_tokens=2, logit_bias=bias)
        assert e.value.body["param"] == "logit_bias", bias


def test_min_tokens_masks_the_end(server):
    short = [{"role": "user", "content": "Say only the word yes."}]
    base = chat(server, messages=short, max_tokens=30)
    assert base.choices[0].finish_reason == "stop" and base.usage.completion_tokens < 20
    forced = chat(server, messages=short, max_tokens=30, extra_body={"min_tokens": 20})
    assert forced.usage.completion_tokens >= 20
    assert forced.choices[0].message.content.startswith(base.choices[0].message.content)
    with pytest.raises(openai.BadRequestError) as e:
        chat(server, messages=short, max_tokens=5, extra_body={"min_tokens": 6})
    assert e.value.body["param"] == "min_tokens"


def test_min_tokens_holds_stop_strings(server):
    base = chat(server, messages=PARIS, max_tokens=30).choices[0].message.content
    word = base.split()[2]
    stopped = chat(server, messages=PARIS, max_tokens=30, stop=[word])
    assert word not in stopped.choices[0].message.content
    held = chat(server, messages=PARIS, max_tokens=30, stop=[word], extra_body={"min_tokens": 25})
    assert held.choices[0].message.content.startswith(base[:base.index(word) + len(word)])


def test_stop_token_ids(server):
    base = chat(server, messages=PARIS, max_tokens=30).choices[0].message.content
    ids = token_ids(server, base)
    stop = ids[4]
    r = chat(server, messages=PARIS, max_tokens=30, extra_body={"stop_token_ids": [stop]})
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == ids.index(stop) + 1
    assert base.startswith(r.choices[0].message.content) and len(r.choices[0].message.content) < len(base)
    with pytest.raises(openai.BadRequestError) as e:
        chat(server, max_tokens=2, extra_body={"stop_token_ids": [10 ** 6]})
    assert e.value.body["param"] == "stop_token_ids"


def test_chat_logprobs_shape_and_greedy_top(server):
    r = chat(server, messages=PARIS, max_tokens=20, logprobs=True, top_logprobs=5)
    c = r.choices[0]
    entries = c.logprobs.content
    assert len(entries) == r.usage.completion_tokens
    assert b"".join(bytes(e.bytes) for e in entries).decode() == c.message.content
    for e in entries:
        assert e.logprob <= 0
        assert len(e.top_logprobs) == 5
        lps = [t.logprob for t in e.top_logprobs]
        assert lps == sorted(lps, reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert e.top_logprobs[0].token == e.token and e.top_logprobs[0].logprob == e.logprob
        assert sum(math.exp(t.logprob) for t in e.top_logprobs) <= 1 + 1e-4


def test_chat_logprobs_without_top_and_absent(server):
    r = chat(server, max_tokens=5, logprobs=True)
    assert all(e.top_logprobs == [] for e in r.choices[0].logprobs.content)
    assert chat(server, max_tokens=5).choices[0].logprobs is None
    with pytest.raises(openai.BadRequestError) as e:
        chat(server, max_tokens=2, logprobs=True, top_logprobs=21)
    assert e.value.body["param"] == "top_logprobs"


def test_streamed_logprobs_match_non_streamed(server):
    whole = chat(server, messages=PARIS, max_tokens=20, logprobs=True, top_logprobs=3)
    chunks = list(chat(server, messages=PARIS, max_tokens=20, logprobs=True, top_logprobs=3, stream=True))
    streamed = [e for ch in chunks if ch.choices and ch.choices[0].logprobs for e in ch.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in whole.choices[0].logprobs.content]
    for ch in chunks:
        if ch.choices and ch.choices[0].delta.content:
            got = b"".join(bytes(e.bytes) for e in ch.choices[0].logprobs.content)
            assert got.decode() == ch.choices[0].delta.content


def test_sampled_logprobs_follow_the_temperature(server):
    # At temperature 2 the tempered distribution is flatter: the top token's logprob is lower than at T=1 (same seed
    # and prompt, same first position).
    kw = dict(messages=PARIS, max_tokens=1, logprobs=True, top_logprobs=2, seed=7)
    t1 = client(server).chat.completions.create(model="smollm2", temperature=1, **kw).choices[0].logprobs.content[0]
    t2 = client(server).chat.completions.create(model="smollm2", temperature=2, **kw).choices[0].logprobs.content[0]
    assert t1.top_logprobs[0].token == t2.top_logprobs[0].token
    assert t2.top_logprobs[0].logprob < t1.top_logprobs[0].logprob


JAPANESE = [{"role": "user", "content": "Translate to Japanese: I like my dog."}]


def test_tokens_inside_a_utf8_character_carry_their_bytes(server):
    # SmolLM2's byte-level BPE splits most kana into two tokens: [0xE3, 0x81] then [0x8A].
    r = chat(server, messages=JAPANESE, max_tokens=20, logprobs=True)
    c = r.choices[0]
    entries = c.logprobs.content
    assert len(entries) == r.usage.completion_tokens
    partial = [e for e in entries if e.token == "\ufffd"]
    assert partial, [e.bytes for e in entries]
    for e in partial:
        with pytest.raises(UnicodeDecodeError):
            bytes(e.bytes).decode()
    joined = b"".join(bytes(e.bytes) for e in entries)
    # The text is every whole character; a character cut off by max_tokens leaves only bytes in the logprobs.
    assert joined.decode(errors="ignore") == c.message.content
    assert joined.startswith(c.message.content.encode())
    streamed = list(chat(server, messages=JAPANESE, max_tokens=20, logprobs=True, stream=True))
    got = [e for ch in streamed if ch.choices and ch.choices[0].logprobs for e in ch.choices[0].logprobs.content]
    assert [e.bytes for e in got] == [e.bytes for e in entries]
    for ch in streamed:
        if ch.choices and ch.choices[0].delta.content:
            assert b"".join(bytes(e.bytes) for e in ch.choices[0].logprobs.content).decode() == ch.choices[0].delta.content


@pytest.mark.parametrize("stop", ["", ["\n", ""]])
def test_empty_stop_string_is_a_400_naming_stop(server, stop):
    """An empty stop sequence would match before the first token: refused, not dropped (helper's report of
    2026-12-05: `"stop":[""]` was accepted and ignored), on chat and on completions."""
    with pytest.raises(openai.BadRequestError) as e:
        chat(server, max_tokens=2, stop=stop)
    assert e.value.body["param"] == "stop"
    with pytest.raises(openai.BadRequestError) as e:
        client(server).completions.create(model="smollm2", prompt="Hello", max_tokens=2, stop=stop)
    assert e.value.body["param"] == "stop"


def test_logprobs_end_where_a_stop_string_cuts_the_text(server):
    """The tokens of a matched stop string go with its text: the logprobs' bytes concatenate to the returned text
    (helper's report of 2026-12-06: chat `stop="la Nation"` returned content "…la Cité, " with logprobs ending in
    "la Nation"), streamed and not, on chat and completions; usage still counts every generated token (vLLM's count)."""
    free = chat(server, messages=PARIS, max_tokens=20, logprobs=True)
    toks = [bytes(e.bytes) for e in free.choices[0].logprobs.content]
    # A stop string of two whole tokens in the middle of the greedy text, starting at a token boundary.
    k = next(i for i in range(2, len(toks) - 3) if toks[i].strip() and toks[i + 1].strip())
    stop = (toks[k] + toks[k + 1]).decode()
    before = b"".join(toks[:k]).decode()
    r = chat(server, messages=PARIS, max_tokens=20, logprobs=True, stop=stop)
    c = r.choices[0]
    assert c.finish_reason == "stop" and c.message.content == before
    assert b"".join(bytes(e.bytes) for e in c.logprobs.content).decode() == before
    assert len(c.logprobs.content) == k and r.usage.completion_tokens == k + 2
    streamed = list(chat(server, messages=PARIS, max_tokens=20, logprobs=True, stop=stop, stream=True))
    got = [e for ch in streamed if ch.choices and ch.choices[0].logprobs for e in ch.choices[0].logprobs.content]
    assert b"".join(bytes(e.bytes) for e in got).decode() == before
    # Legacy completions: tokens and text_offset cover exactly the text.
    prompt = "The capital of France is"
    free = client(server).completions.create(model="smollm2", prompt=prompt, max_tokens=16, temperature=0, logprobs=1)
    ctoks = free.choices[0].logprobs.tokens
    k = next(i for i in range(1, len(ctoks) - 2) if ctoks[i].strip() and "\ufffd" not in ctoks[i] + ctoks[i + 1])
    stop = ctoks[k] + ctoks[k + 1]
    r = client(server).completions.create(model="smollm2", prompt=prompt, max_tokens=16, temperature=0, logprobs=1,
                                          stop=stop)
    lp = r.choices[0].logprobs
    assert r.choices[0].text == "".join(ctoks[:k]) == "".join(lp.tokens)
    assert len(lp.token_logprobs) == len(lp.text_offset) == k
    assert r.usage.completion_tokens == k + 2


def test_logprobs_leave_out_a_held_back_stop_token(server):
    """A token the stop matcher holds back (it may start the stop string) is not reported with the text released in
    the same step (helper's report: text " Paris.\\n", tokens [" Paris", ".", "\\n", "\\n"], the last the stop's)."""
    prompt = "The capital of France is"
    free = client(server).completions.create(model="smollm2", prompt=prompt, max_tokens=20, temperature=0, logprobs=1)
    toks = free.choices[0].logprobs.tokens
    # The first two newline tokens in a row, then the stop string: the second newline and what follows.
    k = next(i for i in range(len(toks) - 2) if toks[i] == "\n" and toks[i + 1] == "\n" and toks[i + 2].strip())
    stop = "\n" + toks[k + 2][:3]
    for stream in (False, True):
        kw = dict(model="smollm2", prompt=prompt, max_tokens=20, temperature=0, logprobs=1, stop=[stop])
        if not stream:
            c = client(server).completions.create(**kw).choices[0]
            text, tokens, offsets = c.text, c.logprobs.tokens, c.logprobs.text_offset
        else:
            text, tokens, offsets = "", [], []
            for ch in client(server).completions.create(stream=True, **kw):
                if ch.choices:
                    text += ch.choices[0].text
                    if ch.choices[0].logprobs:
                        tokens += ch.choices[0].logprobs.tokens
                        offsets += ch.choices[0].logprobs.text_offset
        assert text == "".join(toks[:k + 1]), (stream, text)
        assert tokens == toks[:k + 1], (stream, tokens)
        assert all(o - len(prompt) <= len(text) for o in offsets), (stream, offsets)


def test_seed_minus_one_is_random(server):
    """`seed: -1` asks for a random seed (llama-server's default, vLLM's reading); it was used as a fixed seed, so
    every regenerate in a UI that sends it gave the same text."""
    def sample(seed):
        return client(server).chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Tell me a joke"}], max_tokens=16, temperature=1.2,
            seed=seed).choices[0].message.content
    texts = {sample(-1) for _ in range(4)}
    assert len(texts) >= 2, texts
    assert len({sample(7) for _ in range(2)}) == 1


def test_top_p_zero_keeps_the_top_token(server):
    """OpenAI's range for top_p is [0, 1]; 0 keeps only the most likely token (it was a 400)."""
    greedy = chat(server, messages=PARIS, max_tokens=12).choices[0].message.content
    r = client(server).chat.completions.create(model="smollm2", messages=PARIS, max_tokens=12, temperature=1.0,
                                               top_p=0, seed=3)
    assert r.choices[0].message.content == greedy
