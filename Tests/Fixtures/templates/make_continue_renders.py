"""Generates continue_renders.jsonl: the prompt of a `continue_final_message` request (vLLM's extension; Anthropic's
prefill) for each of the 14 fixture templates × the conversations below, as transformers 5 builds it: the chat
rendered with add_generation_prompt=False by jinja2 3.1.6 set up as in make_extra_renders.py, then cut after the
final message's content (`apply_chat_template(..., continue_final_message=True)` in tokenization_utils_base.py: the
last occurrence of the stripped content; the content's trailing whitespace kept only when the template kept it and
the content has no leading whitespace). `prompt` is null where transformers raises (the render fails, or it does not
contain the content). bos/eos are SmolLM2-135M-Instruct's (the model the e2e test serves every template with).
Run: python3 make_continue_renders.py > continue_renders.jsonl"""
import json, datetime
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2.exceptions import TemplateError

NOW = datetime.datetime(2025, 1, 15, 10, 30, 0)
BOS, EOS = "<|im_start|>", "<|im_end|>"

CONVERSATIONS = [
    {"id": "answer_start", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "The colour is"}]},
    {"id": "trailing_space", "messages": [
        {"role": "user", "content": "Count to three."},
        {"role": "assistant", "content": "One, two, "}]},
    {"id": "second_turn", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the"}]},
    {"id": "leading_newline", "messages": [
        {"role": "user", "content": "Write a haiku."},
        {"role": "assistant", "content": "\nAutumn moon"}]},
]


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def continuation(rendered, final):
    """transformers' cut of a chat rendered without the generation prompt (None where it raises)."""
    stripped = final.strip()
    if stripped not in rendered:
        return None
    at = rendered.rindex(stripped)
    if rendered[at:at + len(final.lstrip())] == final:
        return rendered[:at + len(final.lstrip())]
    return rendered[:at + len(stripped)]


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)

manifest = json.load(open("manifest.json"))
for name, meta in manifest["templates"].items():
    tmpl = env.from_string(open(meta["file"], encoding="utf-8").read())
    for conv in CONVERSATIONS:
        rec = {"template": name, "file": meta["file"], "conversation": conv["id"], "messages": conv["messages"]}
        try:
            rendered = tmpl.render(messages=conv["messages"], tools=None, documents=None, add_generation_prompt=False,
                                   bos_token=BOS, eos_token=EOS)
            rec["prompt"] = continuation(rendered, conv["messages"][-1]["content"])
        except Exception as e:
            rec["prompt"] = None
            rec["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(rec, ensure_ascii=False))
