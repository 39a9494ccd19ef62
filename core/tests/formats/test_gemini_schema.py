"""``clean_schema_for_gemini``: every output must pass a validator mirroring Gemini's schema rules."""

from __future__ import annotations

import copy
from typing import Any

from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from cliproxy.formats.gemini import clean_schema_for_gemini

ALLOWED_KEYS = {
    "type",
    "description",
    "enum",
    "properties",
    "required",
    "items",
    "minimum",
    "maximum",
    "minProperties",
    "maxProperties",
    "propertyOrdering",
}
ALLOWED_TYPES = {"string", "number", "integer", "boolean", "object", "array"}


def assert_gemini_schema(node: Any, path: str = "$") -> None:
    """Strict validator mirroring the function-declaration schema subset Gemini accepts."""
    assert isinstance(node, dict), path
    extra = set(node) - ALLOWED_KEYS
    assert not extra, f"{path}: unsupported keywords {extra}"
    if "type" in node:
        assert node["type"] in ALLOWED_TYPES, f"{path}: type {node['type']!r}"
    if "enum" in node:
        assert node.get("type") == "string", f"{path}: enum on non-string type"
        assert all(isinstance(v, str) for v in node["enum"]), f"{path}: non-string enum values"
    if "description" in node:
        assert isinstance(node["description"], str)
    props = node.get("properties")
    if props is not None:
        assert isinstance(props, dict)
        for name, sub in props.items():
            assert_gemini_schema(sub, f"{path}.properties.{name}")
    if "required" in node:
        assert isinstance(node["required"], list)
        assert set(node["required"]) <= set(props or {}), f"{path}: required names unknown properties"
    if node.get("type") == "array":
        assert "items" in node, f"{path}: array without items"
    if "items" in node:
        assert_gemini_schema(node["items"], f"{path}.items")
    # The official SDK model must accept it too (it rejects unknown keys).
    types.Schema.model_validate(node)


CLAUDE_CODE_TOOLS: list[dict[str, Any]] = [
    {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "command": {"type": "string", "description": "The command to execute"},
            "timeout": {"type": "number", "description": "Optional timeout", "exclusiveMinimum": 0},
            "run_in_background": {"type": ["boolean", "null"]},
        },
        "required": ["command"],
    },
    {
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri", "description": "The URL to fetch"},
            "prompt": {"type": "string", "minLength": 1},
            "headers": {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z-]+$"},
                "additionalProperties": {},
            },
        },
        "required": ["url", "prompt", "missing_prop"],
    },
    {
        "type": "object",
        "$defs": {
            "Todo": {
                "type": "object",
                "properties": {
                    "content": {"type": "string"},
                    "status": {"enum": ["pending", "in_progress", "completed"]},
                    "priority": {"type": "integer", "enum": [1, 2, 3]},
                },
                "required": ["content", "status"],
            }
        },
        "properties": {"todos": {"type": "array", "items": {"$ref": "#/$defs/Todo"}, "minItems": 1}},
    },
    {
        "type": "object",
        "properties": {
            "options": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"const": "fixed"}}},
                ]
            },
            "mode": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "choice": {"oneOf": [{"type": "integer"}, {"type": "object", "properties": {"x": {"type": "number"}}}]},
        },
    },
]


def test_claude_code_like_tool_set_is_accepted_by_strict_validator() -> None:
    for schema in CLAUDE_CODE_TOOLS:
        assert_gemini_schema(clean_schema_for_gemini(schema))


def test_dollar_schema_and_additional_properties_removed() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[0])
    assert "$schema" not in out and "additionalProperties" not in out
    assert out["required"] == ["command"]


def test_type_array_with_null_becomes_single_type() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[0])
    assert out["properties"]["run_in_background"]["type"] == "boolean"


def test_format_uri_and_constraints_become_description_hints() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[1])
    url = out["properties"]["url"]
    assert "format" not in url
    assert "The URL to fetch" in url["description"] and "uri" in url["description"]
    assert "minLength" in out["properties"]["prompt"]["description"]


def test_property_names_and_pattern_properties_dropped() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[1])
    headers = out["properties"]["headers"]
    assert "propertyNames" not in headers and "additionalProperties" not in headers


def test_required_entries_not_in_properties_are_dropped() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[1])
    assert out["required"] == ["url", "prompt"]


def test_local_ref_is_inlined_and_defs_removed() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[2])
    assert "$defs" not in out
    item = out["properties"]["todos"]["items"]
    assert item["type"] == "object"
    assert set(item["properties"]) == {"content", "status", "priority"}
    assert item["required"] == ["content", "status"]


def test_enum_without_type_gets_string_type() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[2])
    status = out["properties"]["todos"]["items"]["properties"]["status"]
    assert status == {"type": "string", "enum": ["pending", "in_progress", "completed"]}


def test_numeric_enum_becomes_string_enum() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[2])
    priority = out["properties"]["todos"]["items"]["properties"]["priority"]
    assert priority["type"] == "string" and priority["enum"] == ["1", "2", "3"]


def test_all_of_is_merged_and_const_becomes_enum() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[3])
    options = out["properties"]["options"]
    assert set(options["properties"]) == {"a", "b"}
    assert options["required"] == ["a"]
    assert options["properties"]["b"] == {"enum": ["fixed"], "type": "string"}


def test_any_of_nullable_flattened_and_one_of_prefers_object() -> None:
    out = clean_schema_for_gemini(CLAUDE_CODE_TOOLS[3])
    assert out["properties"]["mode"]["type"] == "string"
    choice = out["properties"]["choice"]
    assert choice["type"] == "object" and "x" in choice["properties"]
    assert "integer" in choice["description"]


def test_property_names_that_look_like_keywords_survive() -> None:
    schema = {
        "type": "object",
        "properties": {
            "format": {"type": "string"},
            "title": {"type": "string"},
            "$ref": {"type": "string"},
            "additionalProperties": {"type": "boolean"},
        },
        "required": ["format", "title"],
    }
    out = clean_schema_for_gemini(schema)
    assert set(out["properties"]) == {"format", "title", "$ref", "additionalProperties"}
    assert out["required"] == ["format", "title"]
    assert_gemini_schema(out)


def test_recursive_ref_does_not_loop() -> None:
    schema = {
        "type": "object",
        "definitions": {
            "Node": {
                "type": "object",
                "properties": {"child": {"$ref": "#/definitions/Node"}, "v": {"type": "string"}},
            }
        },
        "properties": {"root": {"$ref": "#/definitions/Node"}},
    }
    out = clean_schema_for_gemini(schema)
    assert_gemini_schema(out)
    assert "Node" in out["properties"]["root"]["properties"]["child"]["description"]


def test_unresolvable_ref_becomes_hint() -> None:
    out = clean_schema_for_gemini({"type": "object", "properties": {"x": {"$ref": "https://example.com/x.json"}}})
    assert out["properties"]["x"]["type"] == "object"
    assert "x.json" in out["properties"]["x"]["description"]


def test_missing_or_empty_schema_becomes_empty_object() -> None:
    assert clean_schema_for_gemini({}) == {"type": "object", "properties": {}}


def test_array_without_items_gets_string_items() -> None:
    out = clean_schema_for_gemini({"type": "object", "properties": {"tags": {"type": "array"}}})
    assert out["properties"]["tags"]["items"] == {"type": "string"}


def test_boolean_enum_dropped_and_title_removed() -> None:
    out = clean_schema_for_gemini(
        {"type": "object", "title": "T", "properties": {"flag": {"type": "boolean", "enum": [True, False]}}}
    )
    assert "title" not in out
    assert out["properties"]["flag"] == {"type": "boolean"}


def test_input_is_not_mutated() -> None:
    for schema in CLAUDE_CODE_TOOLS:
        before = copy.deepcopy(schema)
        clean_schema_for_gemini(schema)
        assert schema == before


# --------------------------------------------------------------------------------------------- property-based

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6)
_leaf = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", "integer", "number", "boolean", "null", ["string", "null"]])},
    optional={
        "format": st.sampled_from(["uri", "date-time", "email"]),
        "minLength": st.integers(0, 5),
        "const": st.one_of(st.integers(), st.text(max_size=3)),
        "enum": st.lists(st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.none()), max_size=3),
        "default": st.integers(),
        "description": st.text(max_size=10),
        "title": st.text(max_size=5),
        "$comment": st.text(max_size=5),
        "deprecated": st.booleans(),
        "nullable": st.booleans(),
    },
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    obj = st.fixed_dictionaries(
        {"type": st.just("object"), "properties": st.dictionaries(_names, children, max_size=3)},
        optional={
            "required": st.lists(_names, max_size=3),
            "additionalProperties": st.booleans(),
            "patternProperties": st.just({"^x": {"type": "string"}}),
            "if": st.just({"properties": {}}),
            "then": st.just({}),
        },
    )
    arr = st.fixed_dictionaries({"type": st.just("array")}, optional={"items": children, "uniqueItems": st.booleans()})
    unions = st.fixed_dictionaries({"anyOf": st.lists(children, min_size=1, max_size=3)})
    one_of = st.fixed_dictionaries({"oneOf": st.lists(children, min_size=1, max_size=3)})
    all_of = st.fixed_dictionaries({"allOf": st.lists(obj, min_size=1, max_size=2)})
    return st.one_of(obj, arr, unions, one_of, all_of)


_schemas = st.recursive(_leaf, _extend, max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(_schemas)
def test_any_schema_cleans_into_valid_gemini_schema(schema: dict[str, Any]) -> None:
    out = clean_schema_for_gemini({"type": "object", "properties": {"p": schema}, "$defs": {"D": schema}})
    assert_gemini_schema(out)
    assert "p" in out["properties"]
