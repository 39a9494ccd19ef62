"""Gemini ``generateContent`` requests ↔ IR.

Gemini needs the function *name* on every ``functionResponse``, so names are recovered from the call history
(or from ids minted by this codec); the system prompt travels as ``systemInstruction``; thinking maps to
``thinkingConfig`` (a budget, or a level on Gemini 3 models).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ... import ir
from ...thinking import effort_to_budget
from ..base import CodecError
from .mapping import _args_object, _args_text, _mint_id, _parse_data_url, sanitize_function_name
from .schema import _SNAKE_KEY, _camelize, _gemini_schema_to_json_schema, clean_schema_for_gemini
from .wire import (
    _DIALECT,
    DEFAULT_SAFETY_SETTINGS,
    SKIP_THOUGHT_SIGNATURE,
    Blob,
    Content,
    FileData,
    FunctionCall,
    FunctionDeclaration,
    FunctionResponse,
    GeminiRequest,
    GenerationConfig,
    Part,
    _decode_any,
    _dumps,
    _encode,
    _ext,
)

__all__ = ["decode_request", "decode_request_dict", "encode_request", "encode_request_dict"]


_KNOWN_TOP: Final = frozenset(
    {"model", "contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"}
)
_KNOWN_GEN: Final = frozenset(GenerationConfig.__struct_encode_fields__)


def _normalise_body(raw: bytes | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, dict):
        return _camelize(raw)  # type: ignore[no-any-return]
    try:
        obj = _decode_any(raw)
    except msgspec.DecodeError as exc:
        raise CodecError(f"invalid JSON body: {exc}") from None
    if not isinstance(obj, dict):
        raise CodecError("request body must be a JSON object")
    return _camelize(obj) if _SNAKE_KEY.search(raw) else obj  # type: ignore[no-any-return]


def decode_request(body: bytes) -> ir.Request:
    return _decode_normalised(_normalise_body(body))


def decode_request_dict(body: dict[str, Any]) -> ir.Request:
    """Decode an already-parsed Gemini body (snake_case tolerated); shared with the Gemini-CLI codec."""
    norm = _camelize(body)
    return _decode_normalised(norm)


def _decode_normalised(norm: dict[str, Any]) -> ir.Request:
    try:
        g = msgspec.convert(norm, GeminiRequest)
    except msgspec.ValidationError as exc:
        raise CodecError(str(exc)) from None
    ext: dict[str, Any] = {}
    extra = {k: v for k, v in norm.items() if k not in _KNOWN_TOP}
    if extra:
        ext["extra"] = extra
    if g.safety_settings is not None:
        ext["safetySettings"] = g.safety_settings

    model = g.model or ""
    if model.startswith("models/"):
        model = model[7:]
    req = ir.Request(model=model)
    if g.system_instruction is not None:
        req.system = [ir.TextPart(text=p.text) for p in g.system_instruction.parts if p.text]
    req.messages = _decode_contents(g.contents)
    _decode_tools(g, req, ext)
    gen_raw = norm.get("generationConfig")
    if g.generation_config is not None:
        _decode_generation_config(g.generation_config, req, ext)
        if isinstance(gen_raw, dict):
            gen_extra = {k: v for k, v in gen_raw.items() if k not in _KNOWN_GEN}
            if gen_extra:
                ext["generationConfig"] = gen_extra
    if ext:
        req.ext = {_DIALECT: ext}
    return req


def _decode_contents(contents: list[Content]) -> list[ir.Message]:
    messages: list[ir.Message] = []
    #: Calls still waiting for their response, FIFO: (name, id).
    pending: list[tuple[str, str]] = []
    prev_role = ""
    for ci, content in enumerate(contents):
        role = content.role
        if role in ("function", "tool"):
            role = "user"
        elif role not in ("user", "model"):
            # Missing or unknown roles are repaired by alternation: the turn after a user turn is the model's.
            role = "model" if prev_role == "user" else "user"
        prev_role = role
        if role == "model":
            parts: list[ir.Part] = []
            for pi, part in enumerate(content.parts):
                decoded = _decode_model_part(part, ci, pi)
                if decoded is None:
                    continue
                if isinstance(decoded, ir.ToolCallPart):
                    pending.append((decoded.name, decoded.id))
                parts.append(decoded)
            if parts:
                messages.append(ir.Message(role="assistant", parts=parts))
            continue
        results: list[ir.Part] = []
        user_parts: list[ir.Part] = []
        for pi, part in enumerate(content.parts):
            fr = part.function_response
            if fr is not None:
                results.append(_decode_function_response(fr, pending, ci, pi))
                continue
            decoded_part = _decode_user_part(part)
            if decoded_part is not None:
                user_parts.append(decoded_part)
        if results:
            messages.append(ir.Message(role="tool", parts=results))
        if user_parts:
            messages.append(ir.Message(role="user", parts=user_parts))
    return messages


def _decode_media(part: Part) -> ir.ImagePart | None:
    if part.inline_data is not None:
        blob = part.inline_data
        return ir.ImagePart(media_type=blob.mime_type or "application/octet-stream", data=blob.data or "")
    if part.file_data is not None:
        fd = part.file_data
        return ir.ImagePart(media_type=fd.mime_type or "application/octet-stream", url=fd.file_uri)
    return None


def _decode_user_part(part: Part) -> ir.Part | None:
    if part.text is not None and not part.thought:
        return ir.TextPart(text=part.text)
    return _decode_media(part)


def _decode_model_part(part: Part, ci: int, pi: int) -> ir.Part | None:
    sig = part.thought_signature
    fc = part.function_call
    if fc is not None:
        ext = {_DIALECT: {"id": fc.id}} if fc.id else {}
        return ir.ToolCallPart(
            id=fc.id or _mint_id(ci, pi, fc.name),
            name=fc.name,
            arguments=_args_text(fc.args),
            signature=sig,
            ext=ext,
        )
    if part.thought:
        return ir.ReasoningPart(text=part.text or "", signature=sig, origin=_DIALECT)
    if part.text:
        return ir.TextPart(text=part.text, ext={_DIALECT: {"thoughtSignature": sig}} if sig else {})
    if sig:
        return ir.ReasoningPart(text="", signature=sig, origin=_DIALECT)
    if part.text is not None:
        return ir.TextPart(text="")
    return _decode_media(part)


_RESULT_KEYS: Final = ("result", "output", "content")


def _decode_function_response(
    fr: FunctionResponse, pending: list[tuple[str, str]], ci: int, pi: int
) -> ir.ToolResultPart:
    # An explicit id that names a call wins; otherwise the oldest open call of that name, then the oldest
    # open call. Gemini CLI invents its own response ids for calls that had none, so an unknown id still matches by
    # name, and the client's id is kept in ext for the way back.
    match = next((i for i, (_, cid) in enumerate(pending) if fr.id and cid == fr.id), None)
    if match is None:
        match = next((i for i, (n, _) in enumerate(pending) if n == fr.name), None)
    if match is None and pending:
        match = 0
    call_id = pending.pop(match)[1] if match is not None else fr.id or _mint_id("response", ci, pi, fr.name)
    resp = fr.response or {}
    is_error = False
    if len(resp) == 1 and "error" in resp:
        payload: Any = resp["error"]
        is_error = True
    elif len(resp) == 1 and next(iter(resp)) in _RESULT_KEYS:
        payload = next(iter(resp.values()))
    else:
        payload = resp
    content: list[ir.TextPart | ir.ImagePart] = [
        ir.TextPart(text=payload if isinstance(payload, str) else _dumps(payload))
    ]
    for extra in fr.parts or ():
        blob = extra.get("inlineData") or extra.get("inline_data")
        if isinstance(blob, dict):
            content.append(
                ir.ImagePart(
                    media_type=blob.get("mimeType") or blob.get("mime_type") or "application/octet-stream",
                    data=blob.get("data") or "",
                )
            )
    ext: dict[str, Any] = {"response": resp}
    if fr.id:
        ext["id"] = fr.id
    return ir.ToolResultPart(
        call_id=call_id, name=fr.name or None, content=content, is_error=is_error, ext={_DIALECT: ext}
    )


def _decode_tools(g: GeminiRequest, req: ir.Request, ext: dict[str, Any]) -> None:
    passthrough: list[dict[str, Any]] = []
    for tool in g.tools or ():
        decls = tool.get("functionDeclarations")
        if isinstance(decls, list):
            for raw in decls:
                try:
                    fd = msgspec.convert(raw, FunctionDeclaration)
                except msgspec.ValidationError as exc:
                    raise CodecError(f"tools.functionDeclarations: {exc}") from None
                if fd.parameters_json_schema is not None:
                    schema: dict[str, Any] | None = fd.parameters_json_schema
                elif fd.parameters is not None:
                    schema = _gemini_schema_to_json_schema(fd.parameters)
                else:
                    schema = None
                req.tools.append(ir.Tool(name=fd.name, description=fd.description, parameters=schema))
        rest = {k: v for k, v in tool.items() if k != "functionDeclarations"}
        if rest:
            passthrough.append(rest)
    if passthrough:
        ext["tools"] = passthrough
    fcc = g.tool_config.function_calling_config if g.tool_config else None
    if fcc is not None and fcc.mode:
        mode = fcc.mode.upper()
        names = fcc.allowed_function_names or []
        if mode == "NONE":
            req.tool_choice = ir.ToolChoice(mode="none")
        elif mode == "ANY" and len(names) == 1:
            req.tool_choice = ir.ToolChoice(mode="tool", name=names[0])
        elif mode == "ANY":
            req.tool_choice = ir.ToolChoice(mode="required")
        else:
            req.tool_choice = ir.ToolChoice(mode="auto")
        if len(names) > 1 or mode not in ("AUTO", "ANY", "NONE"):
            ext["functionCallingConfig"] = msgspec.to_builtins(fcc)


def _decode_generation_config(gc: GenerationConfig, req: ir.Request, ext: dict[str, Any]) -> None:
    req.max_tokens = gc.max_output_tokens
    req.temperature = gc.temperature
    req.top_p = gc.top_p
    if gc.top_k is not None:
        req.top_k = int(gc.top_k)
    req.stop = gc.stop_sequences or []
    req.candidate_count = gc.candidate_count
    req.seed = gc.seed
    req.presence_penalty = gc.presence_penalty
    req.frequency_penalty = gc.frequency_penalty
    mime = gc.response_mime_type
    if mime == "application/json" or gc.response_json_schema is not None or gc.response_schema is not None:
        if gc.response_json_schema is not None:
            req.response_format = ir.ResponseFormat(type="json_schema", schema=gc.response_json_schema)
        elif gc.response_schema is not None:
            schema = _gemini_schema_to_json_schema(gc.response_schema)
            req.response_format = ir.ResponseFormat(type="json_schema", schema=schema)
        else:
            req.response_format = ir.ResponseFormat(type="json_object")
    elif mime is not None:
        ext["responseMimeType"] = mime
    tc = gc.thinking_config
    if tc is not None:
        req.reasoning = ir.ReasoningConfig(
            budget=tc.thinking_budget,
            include_thoughts=tc.include_thoughts,
            effort=tc.thinking_level.lower() if tc.thinking_level else None,
        )


# ----------------------------------------------------------------------------------------- request: IR → wire


def _function_names_by_id(messages: list[ir.Message]) -> dict[str, str]:
    out: dict[str, str] = {}
    for msg in messages:
        for part in msg.parts:
            if isinstance(part, ir.ToolCallPart):
                out[part.id] = part.name
    return out


def _name_from_id(call_id: str) -> str | None:
    """Reference ``<name>-<unixNanos>`` ids carry the name; real ids (``toolu_…``, ``call_…``) do not."""
    head, sep, tail = call_id.rpartition("-")
    return head if sep and head and tail.isdigit() else None


def _media_part(part: ir.ImagePart) -> Part | None:
    if part.data is not None:
        return Part(inline_data=Blob(mime_type=part.media_type, data=part.data))
    if part.url:
        parsed = _parse_data_url(part.url)
        if parsed is not None:
            return Part(inline_data=Blob(mime_type=parsed[0], data=parsed[1]))
        return Part(file_data=FileData(mime_type=part.media_type, file_uri=part.url))
    return None


def _result_payload(part: ir.ToolResultPart) -> tuple[dict[str, Any], list[Part]]:
    """``{"result": ...}``: JSON stays structured, text stays a string, images become extra parts (a function
    response holds JSON only)."""
    media: list[Part] = []
    texts: list[str] = []
    for item in part.content:
        if isinstance(item, ir.TextPart):
            texts.append(item.text)
        else:
            mp = _media_part(item)
            if mp is not None:
                media.append(mp)
    original = _ext(part).get("response")
    if isinstance(original, dict):
        return original, media
    text = "\n".join(texts)
    value: Any = text
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            value = _decode_any(text)
        except msgspec.DecodeError:
            value = text
    return ({"error": value} if part.is_error else {"result": value}), media


def _encode_contents(req: ir.Request, system_extra: list[Part]) -> list[Content]:
    names = _function_names_by_id(req.messages)
    contents: list[Content] = []
    for msg in req.messages:
        if msg.role == "system":
            system_extra.extend(Part(text=p.text) for p in msg.parts if isinstance(p, ir.TextPart))
            continue
        role = "model" if msg.role == "assistant" else "user"
        parts: list[Part] = []
        signed_call = False
        for part in msg.parts:
            if isinstance(part, ir.TextPart):
                sig = _ext(part).get("thoughtSignature") if role == "model" else None
                parts.append(Part(text=part.text, thought_signature=sig))
            elif isinstance(part, ir.ImagePart):
                mp = _media_part(part)
                if mp is not None:
                    parts.append(mp)
            elif isinstance(part, ir.ToolCallPart):
                if role != "model":
                    continue
                sig = part.signature
                if sig:
                    signed_call = True
                elif not signed_call:
                    # Gemini 3 rejects replayed calls without a signature, but of parallel calls only the
                    # first carries one: calls after a genuinely signed one stay bare, the others get the
                    # sentinel.
                    sig = SKIP_THOUGHT_SIGNATURE
                parts.append(
                    Part(
                        function_call=FunctionCall(
                            name=sanitize_function_name(part.name),
                            args=_args_object(part.arguments),
                            id=_ext(part).get("id"),
                        ),
                        thought_signature=sig,
                    )
                )
            elif isinstance(part, ir.ToolResultPart):
                name = part.name or names.get(part.call_id) or _name_from_id(part.call_id) or "unknown"
                payload, media = _result_payload(part)
                parts.append(
                    Part(
                        function_response=FunctionResponse(
                            name=sanitize_function_name(name),
                            response=payload,
                            id=_ext(part).get("id"),
                        )
                    )
                )
                parts.extend(media)
            elif (
                isinstance(part, ir.ReasoningPart)
                and role == "model"
                and part.origin == _DIALECT
                and (part.text or part.signature)
            ):
                # Thought text and signatures only mean something to Gemini; other families' are dropped.
                parts.append(
                    Part(text=part.text, thought=True if part.text else None, thought_signature=part.signature)
                )
        if not parts:
            continue
        prev = contents[-1] if contents else None
        if prev is not None and prev.role == role and _mergeable(prev.parts, parts):
            prev.parts.extend(parts)
        else:
            contents.append(Content(role=role, parts=parts))
    return contents


def _has_response(parts: list[Part]) -> bool:
    return any(p.function_response is not None for p in parts)


def _mergeable(a: list[Part], b: list[Part]) -> bool:
    """Same-role turns merge so parallel calls/results form one turn each (Gemini pairs them turn by turn),
    but function responses are never mixed with ordinary user text: Gemini counts the response turn against
    the call turn."""
    return _has_response(a) == _has_response(b)


def _encode_thinking(req: ir.Request) -> dict[str, Any] | None:
    rc = req.reasoning
    if rc is None:
        return None
    tc: dict[str, Any] = {}
    if rc.budget is not None:
        tc["thinkingBudget"] = rc.budget
    elif rc.effort:
        effort = rc.effort.lower()
        if "gemini-3" in req.model and effort not in ("auto", "none"):
            tc["thinkingLevel"] = _thinking_level(effort, req.model)
        else:
            tc["thinkingBudget"] = effort_to_budget(effort)
    if rc.include_thoughts is not None:
        tc["includeThoughts"] = rc.include_thoughts
    elif tc and tc.get("thinkingBudget") != 0:
        tc["includeThoughts"] = True
    return tc or None


def _thinking_level(effort: str, model: str) -> str:
    """Gemini 3 takes ``thinkingLevel``; Pro only knows LOW/HIGH, Flash also MINIMAL/MEDIUM."""
    if "flash" in model and effort in ("minimal", "low", "medium", "high"):
        return effort.upper()
    return "LOW" if effort in ("minimal", "low") else "HIGH"


def _encode_generation_config(req: ir.Request, ext: dict[str, Any]) -> dict[str, Any]:
    gc: dict[str, Any] = dict(ext.get("generationConfig") or {})
    if req.max_tokens is not None:
        gc["maxOutputTokens"] = req.max_tokens
    if req.temperature is not None:
        gc["temperature"] = req.temperature
    if req.top_p is not None:
        gc["topP"] = req.top_p
    if req.top_k is not None:
        gc["topK"] = req.top_k
    if req.stop:
        gc["stopSequences"] = req.stop
    if req.candidate_count is not None:
        gc["candidateCount"] = req.candidate_count
    if req.seed is not None:
        gc["seed"] = req.seed
    if req.presence_penalty is not None:
        gc["presencePenalty"] = req.presence_penalty
    if req.frequency_penalty is not None:
        gc["frequencyPenalty"] = req.frequency_penalty
    rf = req.response_format
    if rf is not None and rf.type != "text":
        gc["responseMimeType"] = "application/json"
        if rf.type == "json_schema" and rf.schema is not None:
            gc["responseJsonSchema"] = rf.schema
    elif "responseMimeType" in ext:
        gc["responseMimeType"] = ext["responseMimeType"]
    thinking = _encode_thinking(req)
    if thinking is not None:
        gc["thinkingConfig"] = thinking
    return gc


def _encode_tools(req: ir.Request, ext: dict[str, Any]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if req.tools:
        decls = []
        for tool in req.tools:
            decl: dict[str, Any] = {"name": sanitize_function_name(tool.name)}
            if tool.description:
                decl["description"] = tool.description
            decl["parametersJsonSchema"] = clean_schema_for_gemini(tool.parameters or {})
            decls.append(decl)
        tools.append({"functionDeclarations": decls})
    tools.extend(ext.get("tools") or ())
    return tools


def _encode_tool_config(req: ir.Request, ext: dict[str, Any]) -> dict[str, Any] | None:
    original = ext.get("functionCallingConfig")
    if isinstance(original, dict):
        return {"functionCallingConfig": original}
    tc = req.tool_choice
    if tc is None:
        return None
    if tc.mode == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if tc.mode == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if tc.mode == "tool" and tc.name:
        return {
            "functionCallingConfig": {
                "mode": "ANY",
                "allowedFunctionNames": [sanitize_function_name(tc.name)],
            }
        }
    return {"functionCallingConfig": {"mode": "AUTO"}}


def encode_request_dict(req: ir.Request, *, with_model: bool = True) -> dict[str, Any]:
    """The Gemini body as a dict of Structs (ready for msgspec); the CLI codec wraps it without ``model``."""
    ext = _ext(req)
    body: dict[str, Any] = {}
    if with_model and req.model:
        body["model"] = req.model
    system_extra: list[Part] = []
    contents = _encode_contents(req, system_extra)
    body["contents"] = contents
    system = [Part(text=p.text) for p in req.system] + system_extra
    if system:
        body["systemInstruction"] = Content(role="user", parts=system)
    tools = _encode_tools(req, ext)
    if tools:
        body["tools"] = tools
    tool_config = _encode_tool_config(req, ext)
    if tool_config is not None and req.tools:
        body["toolConfig"] = tool_config
    gc = _encode_generation_config(req, ext)
    if gc:
        body["generationConfig"] = gc
    body["safetySettings"] = ext.get("safetySettings") or DEFAULT_SAFETY_SETTINGS
    for k, v in (ext.get("extra") or {}).items():
        body.setdefault(k, v)
    return body


def encode_request(req: ir.Request) -> bytes:
    return _encode(encode_request_dict(req))
