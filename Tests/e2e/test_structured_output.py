"""response_format end to end: json_object and json_schema (strict or not), streamed and not, with the official
openai client (create and the `parse` helper with a pydantic model) and LangChain's with_structured_output. Every
answer must parse and validate against its schema (the `jsonschema` package, formats checked)."""
import json

import jsonschema
import openai
import pydantic
import pytest



def client(server):
    return openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=300)


def ask(server, schema, prompt, max_tokens=200, strict=True, stream=False):
    rf = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": strict}}
    msgs = [{"role": "user", "content": prompt}]
    c = client(server)
    if not stream:
        r = c.chat.completions.create(model="smollm2", temperature=0, max_tokens=max_tokens, messages=msgs,
                                      response_format=rf)
        return r.choices[0].message.content, r.choices[0].finish_reason
    parts, finish = [], None
    for ch in c.chat.completions.create(model="smollm2", temperature=0, max_tokens=max_tokens, messages=msgs,
                                        response_format=rf, stream=True):
        if ch.choices:
            parts.append(ch.choices[0].delta.content or "")
            finish = ch.choices[0].finish_reason or finish
    return "".join(parts), finish


def validate(text, schema):
    value = json.loads(text)
    v = jsonschema.Draft202012Validator
    jsonschema.validate(value, schema, cls=v, format_checker=v.FORMAT_CHECKER)
    return value


def obj(props, required=None, **extra):
    return {"type": "object", "properties": props, "required": list(props) if required is None else required,
            "additionalProperties": False, **extra}


S = {"type": "string", "maxLength": 24}
SCHEMAS = [
    ("person", obj({"name": S, "age": {"type": "integer", "minimum": 0, "maximum": 120}}), "Describe a person."),
    ("nested", obj({"name": S, "address": obj({"street": S, "city": S, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}})}),
     "Give a person with an address."),
    ("array_of_objects", obj({"items": {"type": "array", "minItems": 1, "maxItems": 3,
                                        "items": obj({"sku": S, "qty": {"type": "integer", "minimum": 1, "maximum": 9}})}}),
     "List items in a shopping cart."),
    ("enum_heavy", obj({"color": {"enum": ["red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"]},
                        "size": {"enum": ["XS", "S", "M", "L", "XL"]},
                        "day": {"enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
                        "level": {"enum": [1, 2, 3, 5, 8]}}), "Pick a t-shirt."),
    ("tree", {"$defs": {"node": obj({"label": {"type": "string", "maxLength": 8},
                                     "children": {"type": "array", "maxItems": 2, "items": {"$ref": "#/$defs/node"}}})},
              "$ref": "#/$defs/node"},
     'Copy this JSON: {"label": "root", "children": [{"label": "a", "children": []}, {"label": "b", "children": []}]}'),
    ("linked_list", obj({"value": {"type": "integer", "minimum": 0, "maximum": 99},
                         "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}),
     'Copy this JSON: {"value": 1, "next": {"value": 2, "next": {"value": 3, "next": null}}}'),
    ("date", obj({"event": S, "date": {"type": "string", "format": "date"}}), "When was the moon landing?"),
    ("date_time", obj({"meeting": S, "at": {"type": "string", "format": "date-time"}}), "Schedule a meeting."),
    ("uuid", obj({"id": {"type": "string", "format": "uuid"}}), "Make up an identifier."),
    ("email", obj({"name": S, "email": {"type": "string", "format": "email"}}), "Give a contact."),
    ("time", obj({"alarm": {"type": "string", "format": "time"}}), "Set an alarm."),
    ("phone_pattern", obj({"phone": {"type": "string", "pattern": "^[0-9]{3}-[0-9]{4}$"}}), "A phone number."),
    ("code_pattern", obj({"code": {"type": "string", "pattern": "^[A-Z]{3}[0-9]{2}$"}}), "An airport code and gate."),
    ("int_bounds", obj({"rating": {"type": "integer", "minimum": 1, "maximum": 10}}), "Rate Paris from 1 to 10."),
    ("number_bounds", obj({"probability": {"type": "number", "minimum": 0, "maximum": 1}}), "How likely is rain?"),
    ("negative_range", obj({"temperature": {"type": "integer", "minimum": -40, "maximum": -5}}), "A cold temperature."),
    # pydantic's Field(gt=0) and confloat(ge=0.5, le=2.5): fractional and exclusive number bounds (they were 400s).
    ("number_exclusive", obj({"price": {"type": "number", "exclusiveMinimum": 0},
                              "discount": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}),
     "A product's price and discount."),
    ("number_fractional", obj({"temperature": {"type": "number", "minimum": 0.5, "maximum": 2.5},
                               "offset": {"type": "number", "minimum": -1.25, "maximum": -0.75}}), "Two settings."),
    ("exclusive", obj({"n": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 20}}), "A number."),
    ("array_bounds", obj({"tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 2, "maxItems": 4}}),
     "Tags for a blog post."),
    ("tuple", obj({"point": {"type": "array", "prefixItems": [{"type": "number", "minimum": -90, "maximum": 90},
                                                              {"type": "number", "minimum": -180, "maximum": 180}],
                             "items": False, "minItems": 2}}), "Coordinates of Paris."),
    ("const", obj({"kind": {"const": "city"}, "name": S}), "Name a city."),
    ("any_of", obj({"value": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 12}]}}), "Any value."),
    ("one_of_tagged", obj({"shape": {"oneOf": [obj({"type": {"const": "circle"}, "r": {"type": "integer", "minimum": 1, "maximum": 50}}),
                                              obj({"type": {"const": "square"}, "side": {"type": "integer", "minimum": 1, "maximum": 50}})]}}),
     "Describe a shape."),
    ("bool_null", obj({"ok": {"type": "boolean"}, "error": {"type": "null"}}), "Report success."),
    ("optional_fields", obj({"title": S, "subtitle": S, "pages": {"type": "integer", "minimum": 1, "maximum": 999}}, required=["title"]),
     "Describe a book."),
    ("map", {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 100}},
     'Copy this JSON: {"alice": 3, "bob": 5, "carol": 7}'),
    ("nullable_type_list", obj({"nickname": {"type": ["string", "null"], "maxLength": 12}}), "A nickname, if any."),
    ("deep", obj({"a": obj({"b": obj({"c": obj({"d": {"type": "integer", "minimum": 0, "maximum": 9}})})})}), "Nest."),
    ("int_enum", obj({"http_status": {"enum": [200, 201, 301, 404, 500]}}), "An HTTP status."),
    ("string_lengths", obj({"word": {"type": "string", "minLength": 3, "maxLength": 6}}), "A short word."),
    ("enum_array", obj({"days": {"type": "array", "items": {"enum": ["mon", "tue", "wed"]}, "maxItems": 3, "minItems": 1}}),
     "Working days."),
    ("root_array", {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "minItems": 3, "maxItems": 5},
     "Some digits."),
    ("definitions_draft7", {"definitions": {"pet": obj({"species": {"enum": ["cat", "dog"]}, "name": S})},
                            "type": "object", "properties": {"pet": {"$ref": "#/definitions/pet"}}, "required": ["pet"]},
     "Describe a pet."),
    ("annotated", {"title": "Movie", "description": "A film", "type": "object",
                   "properties": {"title": {"title": "Title", "type": "string", "maxLength": 30, "description": "the name"},
                                  "year": {"title": "Year", "type": "integer", "minimum": 1900, "maximum": 2030, "default": 2000}},
                   "required": ["title", "year"]}, "A movie."),
    ("all_of_single", obj({"who": {"allOf": [obj({"name": S})]}}), "Who?"),
]


@pytest.mark.parametrize("name,schema,prompt", SCHEMAS, ids=[s[0] for s in SCHEMAS])
def test_json_schema_answers_validate(server, name, schema, prompt):
    text, finish = ask(server, schema, prompt)
    assert finish == "stop", f"{name}: cut at max_tokens: {text!r}"
    validate(text, schema)


def test_at_least_thirty_schemas():
    assert len(SCHEMAS) >= 30


def test_json_object(server):
    r = client(server).chat.completions.create(
        model="smollm2", temperature=0, max_tokens=200, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": 'Copy this JSON: {"name": "Tom", "age": 3, "toys": ["ball", "mouse"]}'}])
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_streamed_json_schema_matches_non_streamed(server):
    schema = SCHEMAS[0][1]
    whole, finish = ask(server, schema, "Describe a person.")
    streamed, sfinish = ask(server, schema, "Describe a person.", stream=True)
    assert (streamed, sfinish) == (whole, finish)
    validate(streamed, schema)


def test_length_cut_reports_length(server):
    schema = obj({"story": {"type": "string"}})
    text, finish = ask(server, schema, "Tell a long story.", max_tokens=5)
    assert finish == "length"
    assert text.startswith('{"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_sampled_answers_validate(server):
    schema = SCHEMAS[3][1]
    rf = {"type": "json_schema", "json_schema": {"name": "shirt", "schema": schema, "strict": True}}
    for seed in range(3):
        r = client(server).chat.completions.create(
            model="smollm2", temperature=1.0, top_p=0.95, seed=seed, max_tokens=120, response_format=rf,
            messages=[{"role": "user", "content": "Pick a t-shirt."}])
        assert r.choices[0].finish_reason == "stop"
        validate(r.choices[0].message.content, schema)


class Weather(pydantic.BaseModel):
    city: str = pydantic.Field(max_length=20)
    temperature_c: int = pydantic.Field(ge=-50, le=60)
    sunny: bool


def test_openai_parse_helper_with_pydantic(server):
    r = client(server).chat.completions.parse(
        model="smollm2", temperature=0, max_tokens=120, response_format=Weather,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    assert -50 <= parsed.temperature_c <= 60


def test_langchain_with_structured_output(server):
    from langchain_openai import ChatOpenAI
    llm = ChatOpenAI(model="smollm2", base_url=server.base + "/v1", api_key="unused", temperature=0, max_tokens=120,
                     max_retries=0)
    out = llm.with_structured_output(Weather, method="json_schema").invoke("What is the weather in Rome?")
    assert isinstance(out, Weather)


@pytest.mark.parametrize("schema,param", [
    ({"type": "string", "format": "uri"}, "response_format.json_schema.schema.format"),
    ({"type": "object", "properties": {"x": {"type": "array", "uniqueItems": True}}},
     "response_format.json_schema.schema.properties.x.uniqueItems"),
    ({"type": "object", "properties": {"n": {"type": "number", "multipleOf": 3}}},
     "response_format.json_schema.schema.properties.n.multipleOf"),
    ({"type": "strng"}, "response_format.json_schema.schema.type"),
    ({"$ref": "#/$defs/nowhere"}, "response_format.json_schema.schema.$ref"),
    ({"$ref": "#"}, "response_format.json_schema.schema"),
    # oneOf whose branches overlap (-15 matches both): was enforced as anyOf, giving values the schema rejects.
    ({"type": "object", "properties": {"v": {"oneOf": [{"type": "integer"}, {"type": "number"}]}}},
     "response_format.json_schema.schema.properties.v.oneOf"),
])
def test_bad_schema_is_400(server, schema, param):
    with pytest.raises(openai.BadRequestError) as e:
        client(server).chat.completions.create(
            model="smollm2", max_tokens=5, messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert e.value.status_code == 400
    assert e.value.body["param"] == param, e.value.body
    assert e.value.body["type"] == "invalid_request_error"


def test_bad_strict_and_schema_type_are_400(server):
    for js, param in [({"name": "x", "schema": {}, "strict": "yes"}, "response_format.json_schema.strict"),
                      ({"name": "x", "schema": [1]}, "response_format.json_schema.schema"),
                      ({"name": 3, "schema": {}}, "response_format.json_schema.name")]:
        status, _, body = server.post("/v1/chat/completions", {
            "model": "smollm2", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": js}})
        assert status == 400, body
        assert json.loads(body)["error"]["param"] == param


def test_json_object_with_schema_is_enforced(server):
    """llama-server's `{"type": "json_object", "schema": …}`: the schema holds (it was accepted and ignored: any
    object came back, `{"name": "John", …}` for this prompt)."""
    schema = {"type": "object", "properties": {"color": {"type": "string", "enum": ["red", "blue"]}},
              "required": ["color"], "additionalProperties": False}
    r = client(server).chat.completions.create(
        model="smollm2", temperature=0, max_tokens=40, response_format={"type": "json_object", "schema": schema},
        messages=[{"role": "user", "content": "Give me a JSON object describing a person."}])
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    validate(r.choices[0].message.content, schema)
    # Its errors name where it sits.
    status, _, body = server.post("/v1/chat/completions", {
        "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_object", "schema": {"type": "string", "format": "uri"}}})
    assert status == 400 and json.loads(body)["error"]["param"] == "response_format.schema.format", body


@pytest.mark.parametrize("rf,param", [
    ({"type": "text", "foo": 1}, "response_format.foo"),
    ({"type": "json_object", "schemma": {}}, "response_format.schemma"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strcit": True}}, "response_format.json_schema.strcit"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}, "schema": {}}, "response_format.schema"),
    ({"type": "json_object", "schema": "yes"}, "response_format.schema"),
])
def test_unknown_response_format_fields_are_400(server, rf, param):
    status, _, body = server.post("/v1/chat/completions", {
        "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "response_format": rf})
    assert status == 400, body
    assert json.loads(body)["error"]["param"] == param, body


def test_schema_size_limits(server):
    """5,000 optional properties are served (the matcher's states hold one stack per property; 100,000 crashed the
    server through recursion); 5,001 are a 400 naming the keyword, as are 10,001 enum values."""
    def post(schema):
        return server.post("/v1/chat/completions", {
            "max_tokens": 8, "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}, timeout=300)
    wide = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(5000)}}
    status, _, body = post(wide)
    assert status == 200, body[:300]
    status, _, body = post({"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(5001)}})
    assert status == 400, body[:300]
    assert json.loads(body)["error"]["param"] == "response_format.json_schema.schema.properties", body[:300]
    status, _, body = post({"type": "object", "properties": {"x": {"enum": [f"v{i}" for i in range(10_001)]}}})
    assert status == 400, body[:300]
    assert json.loads(body)["error"]["param"] == "response_format.json_schema.schema.properties.x.enum", body[:300]
    # Still serving.
    assert server.get("/health")[0] == 200


def test_a_logit_bias_that_bans_what_the_grammar_needs_does_not_break_the_answer(qwen):
    """helper-62: banning `"` (Qwen's token 1) with logit_bias left a strict `{"enum": ["a"]}` answer no token it
    could take; the sampler fell back to token 0 and the reply was `"a!` with finish_reason "stop". The grammar wins
    where the bias bans every token it allows: the answer stays valid, streamed and not, greedy and sampled."""
    rf = {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {"type": "string", "enum": ["a"]}}}
    c = openai.OpenAI(base_url=qwen.base + "/v1", api_key="x", max_retries=0, timeout=120)
    for fmt, bias, schema in ((rf, {"1": -100}, rf["json_schema"]["schema"]),):
        for extra in ({"temperature": 0}, {"temperature": 1, "seed": 3}):
            r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Give JSON"}], max_tokens=20,
                                          response_format=fmt, logit_bias=bias, **extra)
            ch = r.choices[0]
            assert ch.finish_reason == "stop", ch
            jsonschema.validate(json.loads(ch.message.content), schema)
            s = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "Give JSON"}], max_tokens=20,
                                          response_format=fmt, logit_bias=bias, stream=True, **extra)
            assert "".join(k.choices[0].delta.content or "" for k in s if k.choices) == ch.message.content
