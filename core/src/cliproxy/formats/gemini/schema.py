"""JSON shapes Gemini is picky about: snake_case request keys, and tool parameter schemas.

Google speaks camelCase on the wire but its SDKs and several clients send snake_case (``system_instruction``,
``inline_data``, ``function_call``), and the REST front end accepts both, so request keys are camelised before
typed decoding (never inside user data such as schemas or arguments). Tool schemas go through
:func:`clean_schema_for_gemini` because Gemini's function declarations reject many JSON-schema keywords other
dialects use freely.
"""

from __future__ import annotations

import re
from typing import Any, Final

from .wire import _dumps

__all__ = ["clean_schema_for_gemini"]


# ------------------------------------------------------------------------------------------- snake_case input

#: Keys whose values are user data (schemas, arguments, labels): their own keys must never be renamed.
_OPAQUE_KEYS: Final = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseSchema",
        "responseJsonSchema",
        "labels",
        "partialArgs",
    }
)
_SNAKE_KEY: Final = re.compile(rb'"[a-z]+(?:_[a-z0-9]+)+"\s*:')


def _camel(key: str) -> str:
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _camelize(value: Any) -> Any:
    """Rename snake_case keys to camelCase everywhere except inside opaque user data."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            ck = _camel(k)
            out[ck] = v if ck in _OPAQUE_KEYS else _camelize(v)
        return out
    if isinstance(value, list):
        return [_camelize(v) for v in value]
    return value


# --------------------------------------------------------------------------------------- JSON schema cleaning

#: Keywords Gemini's function-declaration schema understands; everything else is removed or turned into a
#: hint.
_KEEP_KEYWORDS: Final = frozenset(
    {
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
)
#: Constraints Gemini rejects but the model should still know about: moved into ``description``.
_HINT_KEYWORDS: Final = (
    "minLength",
    "maxLength",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "format",
    "default",
    "examples",
)
_MAX_REF_DEPTH: Final = 8
_JSON_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "object", "array"})


def clean_schema_for_gemini(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a JSON schema into the subset Gemini function declarations accept.

    Gemini rejects ``$ref``/``$defs``, ``additionalProperties``, ``const``, type arrays, non-string enums and
    most validation keywords, so: local ``$ref`` are inlined (cycles and unresolvable refs become a
    description hint), ``allOf`` is merged, ``anyOf``/``oneOf`` keep their strongest branch, ``["T","null"]``
    becomes ``T``, ``const`` becomes a one-value ``enum``, enums become strings, constraints move into
    ``description`` and ``required`` only names real properties. Property *names* are never touched. The input
    is not modified.
    """
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, dict):
            defs.update({f"#/{key}/{name}": sub for name, sub in found.items()})
    out = _clean_node(schema, defs, ())
    if "type" not in out:
        out["type"] = "object"
    if out.get("type") == "object" and "properties" not in out:
        out["properties"] = {}
    return out


def _hint(node: dict[str, Any], text: str) -> None:
    desc = node.get("description")
    node["description"] = f"{desc} ({text})" if isinstance(desc, str) and desc else text


def _clean_node(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, dict):
        # ``true``/``{}`` schemas: anything goes; Gemini needs a concrete type, string is the least
        # surprising.
        return {"type": "string"} if node is True else {}
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if target is None or ref in seen or len(seen) >= _MAX_REF_DEPTH:
            unresolved = _clean_node(rest, defs, seen)
            _hint(unresolved, f"see {ref.rsplit('/', 1)[-1]}")
            if "type" not in unresolved:
                unresolved["type"] = "object"
            return unresolved
        # Sibling keywords (description, ...) override the referenced schema's.
        merged = {**target, **rest} if isinstance(target, dict) else rest
        return _clean_node(merged, defs, (*seen, ref))

    node = dict(node)
    all_of = node.pop("allOf", None)
    if isinstance(all_of, list):
        for branch in all_of:
            if isinstance(branch, dict):
                node = _merge_all_of(node, _resolve(branch, defs, seen))
    out: dict[str, Any] = {}
    hints: list[str] = []

    for key in ("anyOf", "oneOf"):
        branches = node.pop(key, None)
        if isinstance(branches, list) and branches:
            chosen, alternatives = _pick_branch([_resolve(b, defs, seen) for b in branches])
            if chosen is not None:
                for k, v in chosen.items():
                    if k == "description" and "description" in node:
                        continue
                    node.setdefault(k, v)
            if len(alternatives) > 1:
                hints.append("accepts: " + " | ".join(alternatives))

    typ = node.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if t != "null"]
        if len(non_null) > 1:
            hints.append("accepts: " + " | ".join(str(t) for t in non_null))
        typ = non_null[0] if non_null else "string"
    if isinstance(typ, str):
        typ = typ.lower()
        if typ == "null":  # Gemini has no null type; the value can only ever be absent
            typ = "string"
        if typ in _JSON_TYPES:
            out["type"] = typ

    if "const" in node and "enum" not in node:
        node["enum"] = [node["const"]]
    enum = node.get("enum")
    if isinstance(enum, list):
        values = [v for v in enum if v is not None]
        if values and not all(isinstance(v, bool) for v in values):
            out["enum"] = [v if isinstance(v, str) else _dumps(v) for v in values]
            out["type"] = "string"

    desc = node.get("description")
    if isinstance(desc, str) and desc:
        out["description"] = desc
    for key in ("minimum", "maximum", "minProperties", "maxProperties"):
        val = node.get(key)
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            out[key] = val
    for key in _HINT_KEYWORDS:
        if key in node:
            hints.append(f"{key}: {_dumps(node[key])}")
    if node.get("additionalProperties") is False:
        hints.append("no additional properties")

    props = node.get("properties")
    if isinstance(props, dict):
        out["properties"] = {name: _clean_node(sub, defs, seen) for name, sub in props.items()}
        req = node.get("required")
        if isinstance(req, list):
            kept = [r for r in req if isinstance(r, str) and r in out["properties"]]
            if kept:
                out["required"] = list(dict.fromkeys(kept))
        order = node.get("propertyOrdering")
        if isinstance(order, list):
            out["propertyOrdering"] = [p for p in order if p in out["properties"]]
        out.setdefault("type", "object")
    items = node.get("items")
    if isinstance(items, list):  # tuple form: Gemini only knows a single item schema
        items = items[0] if items else {}
    if isinstance(items, dict) or items is True:
        out["items"] = _clean_node(items, defs, seen) or {"type": "string"}
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "string"}
    if hints:
        _hint(out, "; ".join(hints))
    return out


def _resolve(node: Any, defs: dict[str, Any], seen: tuple[str, ...]) -> dict[str, Any]:
    """Follow a local ``$ref`` one level so union/allOf logic sees the real branch."""
    if not isinstance(node, dict):
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref in defs and ref not in seen and isinstance(defs[ref], dict):
        return {**defs[ref], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _merge_all_of(base: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in branch.items():
        if k == "properties" and isinstance(v, dict):
            out["properties"] = {**(out.get("properties") or {}), **v}
        elif k == "required" and isinstance(v, list):
            out["required"] = [*(out.get("required") or []), *v]
        else:
            out.setdefault(k, v)
    return out


def _branch_type(branch: dict[str, Any]) -> str:
    t = branch.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if isinstance(t, str):
        return t
    if "properties" in branch:
        return "object"
    if "items" in branch:
        return "array"
    if "const" in branch or "enum" in branch:
        return "string"
    return "any"


_BRANCH_RANK: Final = {
    "object": 0,
    "array": 1,
    "string": 2,
    "number": 3,
    "integer": 4,
    "boolean": 5,
    "any": 6,
}


def _pick_branch(branches: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[str]]:
    """The most informative non-null branch (objects first) plus the alternative types for the hint."""
    candidates = [b for b in branches if _branch_type(b) != "null"]
    if not candidates:
        return None, []
    types = list(dict.fromkeys(_branch_type(b) for b in candidates))
    chosen = min(candidates, key=lambda b: _BRANCH_RANK.get(_branch_type(b), 7))
    return chosen, types


def _gemini_schema_to_json_schema(node: Any) -> Any:
    """Gemini ``parameters`` use OpenAPI upper-case types and ``nullable``; others want JSON schema."""
    if isinstance(node, list):
        return [_gemini_schema_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k == "properties" and isinstance(v, dict):
            out[k] = {name: _gemini_schema_to_json_schema(sub) for name, sub in v.items()}
        elif k == "type" and isinstance(v, str):
            out[k] = v.lower()
        elif k in ("items", "anyOf", "oneOf", "allOf"):
            out[k] = _gemini_schema_to_json_schema(v)
        elif k != "nullable":
            out[k] = v
    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out
