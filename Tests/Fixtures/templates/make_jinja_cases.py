"""Generates jinja_cases.jsonl: small templates rendered by jinja2 (3.1.6) configured as transformers'
render_jinja_template configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now pinned to 2025-01-15T10:30:00).
Each case is rendered with messages=[], tools=None, documents=None, add_generation_prompt=False plus `vars`.
Run: python3 make_jinja_cases.py > jinja_cases.jsonl"""
import json, sys, datetime
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.ext import loopcontrols
from jinja2.exceptions import TemplateError
from jinja2.ext import Extension
from jinja2 import nodes


class AssistantTracker(Extension):
    """Like transformers' AssistantTracker when not tracking: {% generation %} renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()

NOW = datetime.datetime(2025, 1, 15, 10, 30, 0)

def raise_exception(message):
    raise TemplateError(message)

def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)

CASES = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n=====\n") if l.strip()]
for i, block in enumerate(CASES):
    head, _, tmpl = block.partition("\n")
    vars = json.loads(head) if head.strip() else {}
    rec = {"i": i, "template": tmpl, "vars": vars}
    try:
        rec["rendered"] = env.from_string(tmpl).render(messages=[], tools=None, documents=None,
                                                       add_generation_prompt=False, **vars)
    except Exception as e:
        rec["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(rec, ensure_ascii=False))
