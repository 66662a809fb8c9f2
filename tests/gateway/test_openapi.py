"""gateway/openapi.py: the served document declares what the APIs really answer."""

from __future__ import annotations

from gateway.openapi import ERROR_STATUSES, complete_spec

COMPONENT = {
    "title": "VerifyResponseIODescriptor",
    "type": "object",
    "properties": {
        "checked": {"type": "integer"},
        "min_cosine": {"anyOf": [{"type": "number"}, {"type": "null"}], "title": "Min Cosine"},
    },
}


def bentoml_spec() -> dict:
    """What BentoML writes: the 200 answer's fields inline, each anyOf cut to its first choice,
    and some error statuses keyed by int."""
    inline = {
        "title": "VerifyResponseIODescriptor",
        "type": "object",
        "properties": {"checked": {"type": "integer"}, "min_cosine": {"type": "number", "title": "Min Cosine"}},
    }
    responses = {200: {"description": "ok", "content": {"application/json": {"schema": inline}}}, 400: {"description": "x"}}
    request = {"type": "object", "title": "Input", "properties": {"sample": {"type": "integer", "default": None}}}
    operation = {
        "x-bentoml-name": "verify_index",
        "requestBody": {"content": {"application/json": {"schema": request}}},
        "responses": responses,
    }
    sample = {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    return {
        "paths": {"/verify_index": {"post": operation}},
        "components": {"schemas": {"VerifyResponseIODescriptor": COMPONENT, "verify_index__Input": {"properties": {"sample": sample}}}},
    }


def test_an_optional_field_of_an_answer_stays_nullable():
    doc = complete_spec(bentoml_spec())
    fields = doc["paths"]["/verify_index"]["post"]["responses"][200]["content"]["application/json"]["schema"]["properties"]
    assert fields["min_cosine"] == {"type": "number", "title": "Min Cosine", "nullable": True}
    assert fields["checked"] == {"type": "integer"}
    request = doc["paths"]["/verify_index"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request["properties"]["sample"] == {"type": "integer", "default": None, "nullable": True}


def test_one_key_per_status():
    responses = complete_spec(bentoml_spec())["paths"]["/verify_index"]["post"]["responses"]
    assert 400 not in responses and "400" in responses  # json.dumps would write "400" twice
    assert set(ERROR_STATUSES) <= set(responses)
