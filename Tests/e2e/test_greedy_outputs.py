"""Greedy (temperature 0) outputs of the three real test models, byte for byte, against a recording.

The recording (Tests/Fixtures/greedy/outputs.json) was made from the build before the restructure of issue 13,
so any change of numerics in a refactor shows here. Re-record only on purpose, with a reason in the commit:
    SPUTNIK_RECORD_GREEDY=1 make test-e2e   (or pytest Tests/e2e/test_greedy_outputs.py with the same variable)

One kind of difference is allowed: where the recorded continuation and the chosen token were within NEAR_TIE_NATS of
each other at the first token that differs (a near-tie that float rounding decides; the text after it is not
compared). Kernels that sum in another order, or another CPU's libm, can flip such a tie: qwen2.5-coder-0.5b's
third prompt has ' Python' and ' simple' 0.01 nats apart in llama.cpp (-0.701 / -0.712) and 0.05-0.12 apart, either
way round, in Sputnik builds and machines. Anything else that differs fails.
"""
import json
import os

import pytest

from conftest import MODEL, Server

HERE = os.path.dirname(__file__)
RECORDING = os.path.join(HERE, "..", "Fixtures", "greedy", "outputs.json")
MODELS_DIR = os.path.dirname(MODEL)
NEAR_TIE_NATS = 0.25
MODELS = {
    "smollm2": os.path.basename(MODEL),
    "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "gemma-3-270m": "gemma-3-270m-q4_k_m.gguf",
}
PROMPTS = [
    [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
    [{"role": "system", "content": "You are a poet."}, {"role": "user", "content": "Write four lines about the sea."}],
    [{"role": "user", "content": "Write a Python function that reverses a string."}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Count from one to ten in words."}],
]


def generate(model_file: str) -> list:
    s = Server(model=os.path.join(MODELS_DIR, model_file))
    try:
        out = []
        for messages in PROMPTS:
            status, _, body = s.post("/v1/chat/completions",
                                     {"messages": messages, "temperature": 0, "max_tokens": 48, "logprobs": True,
                                      "top_logprobs": 5})
            assert status == 200, body
            r = json.loads(body)
            out.append(({"content": r["choices"][0]["message"]["content"],
                         "finish_reason": r["choices"][0]["finish_reason"],
                         "completion_tokens": r["usage"]["completion_tokens"]},
                        r["choices"][0]["logprobs"]["content"]))
        return out
    finally:
        s.stop()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_greedy_outputs_match_the_recording(name):
    generated = generate(MODELS[name])
    got = [g for g, _ in generated]
    if os.environ.get("SPUTNIK_RECORD_GREEDY"):
        data = json.load(open(RECORDING)) if os.path.exists(RECORDING) else {}
        data[name] = got
        with open(RECORDING, "w") as f:
            json.dump(data, f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")
        return
    expected = json.load(open(RECORDING))[name]
    assert len(got) == len(expected)
    for i, ((g, logprobs), e) in enumerate(zip(generated, expected)):
        if g != e:
            problem = near_tie_problem(e["content"], logprobs)
            assert problem is None, f"prompt {i}: {problem}\n got:      {g}\n recorded: {e}"


def near_tie_problem(recorded: str, logprobs: list):
    """None when the generation follows `recorded` up to a token where the recorded continuation was one of the top
    alternatives within NEAR_TIE_NATS of the chosen token; otherwise what is wrong."""
    text = ""
    for t in logprobs:
        if recorded.startswith(text + t["token"]):
            text += t["token"]
            continue
        rest = recorded[len(text):]
        alts = [a["logprob"] for a in t["top_logprobs"] if a["token"] and rest.startswith(a["token"])]
        if not alts:
            return f"diverges after {text!r}: chose {t['token']!r}, the recording's {rest[:24]!r} is not in the top 5"
        gap = t["logprob"] - max(alts)
        if gap > NEAR_TIE_NATS:
            return f"diverges after {text!r}: chose {t['token']!r} {gap:.3f} nats above the recording's continuation"
        return None
    return "same tokens as far as they go, but the text, finish reason or token count differs"
