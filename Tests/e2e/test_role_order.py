"""C13 (failure-cases.md): role order the API allows but a template refuses. Mistral's templates raise "conversation
roles must alternate"; the server renders the normalised history instead (same-role runs joined by a blank line,
late system messages as user text) and answers 200. Driven through the official openai client."""
import json
import os

import openai
import pytest

from conftest import TEMPLATES, Server

S = {"role": "system", "content": "Be brief."}
U = {"role": "user", "content": "Say hi."}
U2 = {"role": "user", "content": "And bye."}
A = {"role": "assistant", "content": "Hello."}


def merged(role, *texts):
    return {"role": role, "content": "\n\n".join(texts)}


# (request as sent, the normalised history the template accepts)
CASES = {
    "a: system, user, user": ([S, U, U2], [S, merged("user", U["content"], U2["content"])]),
    "b: user, user": ([U, U2], [merged("user", U["content"], U2["content"])]),
    "c: system, system, user": ([S, S, U], [merged("system", S["content"], S["content"]), U]),
    "d: user, assistant, assistant, user": ([U, A, A, U2], [U, merged("assistant", A["content"], A["content"]), U2]),
    "e: user, system, user": ([U, S, U2], [merged("user", U["content"], S["content"], U2["content"])]),
}


@pytest.fixture(scope="module")
def nemo():
    s = Server("--chat-template", os.path.join(TEMPLATES, "mistralai-Mistral-Nemo-Instruct-2407.jinja"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(nemo):
    return openai.OpenAI(base_url=nemo.base + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.mark.parametrize("case", list(CASES))
def test_role_order_is_normalised_not_refused(client, case):
    sent, normalised = CASES[case]
    r = client.chat.completions.create(model="m", messages=sent, max_tokens=4, temperature=0)
    assert r.choices[0].message.content, case
    # The prompt is exactly the normalised history's: the same request with that history, which the template
    # accepts as sent, has the same prompt tokens and the same greedy reply.
    ref = client.chat.completions.create(model="m", messages=normalised, max_tokens=4, temperature=0)
    assert r.usage.prompt_tokens == ref.usage.prompt_tokens, case
    assert r.choices[0].message.content == ref.choices[0].message.content, case


def test_system_only_is_answered(client):
    r = client.chat.completions.create(model="m", messages=[S], max_tokens=4, temperature=0)
    assert r.choices[0].finish_reason in ("stop", "length")


def test_anthropic_tool_loop_ids_fit_the_mistral_template(nemo):
    # Mistral's templates raise on tool-call ids that are not 9 letters and digits; Anthropic's are toolu_… (helper's
    # second report: sending a tool_use / tool_result pair back was a 400).
    tools = [{"name": "get_weather", "description": "Weather.", "input_schema": {"type": "object", "properties": {}}}]
    msgs = [{"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_56OTm5LXNtHeVkG9Q6VGD9sV",
                                               "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_56OTm5LXNtHeVkG9Q6VGD9sV",
                                          "content": "18 C"}]}]
    st, _, body = nemo.post("/v1/messages", {"model": "m", "max_tokens": 4, "tools": tools, "messages": msgs})
    assert st == 200, body


def test_anthropic_and_responses_routes_normalise_too(nemo):
    st, _, body = nemo.post("/v1/messages", {"model": "m", "max_tokens": 4, "messages": [U, U2]})
    assert st == 200, body
    st, _, body = nemo.post("/v1/responses", {"model": "m", "max_output_tokens": 4,
                                              "input": [U, {"role": "developer", "content": "Be brief."}, U2]})
    assert st == 200, body


def test_a_developer_message_reaches_a_template_that_does_not_name_the_role(qwen):
    """`developer` is OpenAI's newer name for the system role. Qwen2.5's template skips roles it does not know, so a
    developer message vanished from the prompt (helper-60: the default system prompt instead, the same token count
    as no message). On a template that never names `developer` it is rendered as `system`, on chat and Responses."""
    dev = {"role": "developer", "content": "Answer in French."}
    st, _, body = qwen.post("/apply-template", {"messages": [dev, U]})
    assert st == 200
    prompt = json.loads(body)["prompt"]
    st, _, sys_body = qwen.post("/apply-template", {"messages": [dict(dev, role="system"), U]})
    assert prompt == json.loads(sys_body)["prompt"] and "Answer in French." in prompt, prompt
    base = {"model": "m", "max_output_tokens": 1}
    st, _, with_dev = qwen.post("/v1/responses", dict(base, input=[dev, U]))
    st2, _, with_sys = qwen.post("/v1/responses", dict(base, input=[dict(dev, role="system"), U]))
    assert st == st2 == 200
    assert json.loads(with_dev)["usage"]["input_tokens"] == json.loads(with_sys)["usage"]["input_tokens"]
