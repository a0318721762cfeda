"""Issue 15 item 4: `n > 1` through the official openai client: choices 0…n−1, streamed chunks carry their index,
usage counts the prompt once and every choice's tokens. (That one prefill serves every choice is checked by
Tests/SchedulingTests/ForkTests: the forked choices are scheduled one token each.)"""
import openai

from test_openai_client import PARIS, client


def test_greedy_choices_are_the_single_answer(server):
    one = client(server).chat.completions.create(model="smollm2", temperature=0, max_tokens=20, messages=PARIS)
    r = client(server).chat.completions.create(model="smollm2", temperature=0, max_tokens=20, messages=PARIS, n=4)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert all(c.message.content == one.choices[0].message.content for c in r.choices)
    assert r.usage.prompt_tokens == one.usage.prompt_tokens
    assert r.usage.completion_tokens == 4 * one.usage.completion_tokens


def test_sampled_choices_differ_and_reproduce_with_seed(server):
    kw = dict(model="smollm2", temperature=1.2, max_tokens=24, seed=11, n=3,
              messages=[{"role": "user", "content": "Tell me a story."}])
    a = client(server).chat.completions.create(**kw)
    b = client(server).chat.completions.create(**kw)
    texts = [c.message.content for c in a.choices]
    assert texts == [c.message.content for c in b.choices]
    assert len(set(texts)) == 3


def test_streamed_choices_carry_their_index(server):
    kw = dict(model="smollm2", temperature=1.2, max_tokens=16, seed=5, n=3,
              messages=[{"role": "user", "content": "Tell me a story."}])
    whole = client(server).chat.completions.create(**kw)
    chunks = list(client(server).chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    for k in range(3):
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices and ch.choices[0].index == k)
        assert text == whole.choices[k].message.content
        roles = [ch for ch in chunks if ch.choices and ch.choices[0].index == k and ch.choices[0].delta.role]
        assert len(roles) == 1
        ends = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].index == k
                and ch.choices[0].finish_reason]
        assert ends == [whole.choices[k].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completions_prompts_times_n(server):
    r = client(server).completions.create(model="smollm2", prompt=["The sky is", "Once upon a time"], n=2,
                                          max_tokens=6, temperature=0)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text == r.choices[1].text and r.choices[2].text == r.choices[3].text
    single = client(server).completions.create(model="smollm2", prompt=["The sky is", "Once upon a time"],
                                               max_tokens=6, temperature=0)
    assert r.usage.prompt_tokens == single.usage.prompt_tokens


def test_stream_helper_assembles_every_choice(server):
    """The openai SDK's stream helper builds its snapshot from the first chunk, by position: the role chunks come
    first, one per choice in index order (helper-43: sent per choice before its first output, choice 1 or 2 often
    came first and the helper raised IndexError or mixed the choices up)."""
    for seed in range(6):
        with client(server).chat.completions.stream(model="smollm2", n=3, max_tokens=24, temperature=1, seed=seed,
                                                    messages=PARIS) as s:
            for _ in s:
                pass
            try:
                final = s.get_final_completion()
            except openai.LengthFinishReasonError as e:   # the helper's parse step refuses a cut reply
                final = e.completion
        assert [c.index for c in final.choices] == [0, 1, 2]
        plain = client(server).chat.completions.create(model="smollm2", n=3, max_tokens=24, temperature=1, seed=seed,
                                                       messages=PARIS)
        assert [c.message.content for c in final.choices] == [c.message.content for c in plain.choices], seed
