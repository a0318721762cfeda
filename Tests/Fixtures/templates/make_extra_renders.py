"""Generates extra_renders.jsonl: the 14 fixture templates × extra_conversations.json × add_generation_prompt,
rendered by jinja2 3.1.6 set up like transformers 5 `render_jinja_template` (see JINJA_CASES.md): messages
normalised (reasoning_content <-> thinking mirrored; None values kept: JSON null reaches the template as none), ImmutableSandboxedEnvironment with
trim_blocks/lstrip_blocks/loopcontrols, tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now
pinned to 2025-01-15T10:30:00, variables messages/tools/documents=None/add_generation_prompt/bos/eos (+ `extra`).
Run: python3 make_extra_renders.py > extra_renders.jsonl"""
import json, datetime
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2.exceptions import TemplateError

NOW = datetime.datetime(2025, 1, 15, 10, 30, 0)

def raise_exception(message):
    raise TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)

manifest = json.load(open("manifest.json"))
convs = json.load(open("extra_conversations.json"))
for name, meta in manifest["templates"].items():
    tmpl = env.from_string(open(meta["file"], encoding="utf-8").read())
    for conv in convs:
        msgs = []
        for m in conv["messages"]:
            m = dict(m)
            if "reasoning_content" in m and "thinking" not in m:
                m["thinking"] = m["reasoning_content"]
            elif "thinking" in m and "reasoning_content" not in m:
                m["reasoning_content"] = m["thinking"]
            msgs.append(m)
        for agp in (True, False):
            kw = dict(messages=msgs, tools=conv.get("tools"), documents=None, add_generation_prompt=agp)
            if meta["bos_token"] is not None:
                kw["bos_token"] = meta["bos_token"]
            if meta["eos_token"] is not None:
                kw["eos_token"] = meta["eos_token"]
            kw.update(conv.get("extra", {}))
            rec = {"template": name, "conversation": conv["id"], "add_generation_prompt": agp}
            try:
                rec["rendered"] = tmpl.render(**kw)
            except Exception as e:
                rec["error"] = f"{type(e).__name__}: {e}"
            print(json.dumps(rec, ensure_ascii=False))
