"""Gemini CLI (Cloud Code Assist ``v1internal``, dialect ``gemini-cli``): the Gemini codec inside an envelope.

Requests are ``{"project", "model", "request": {<gemini body>}, "user_prompt_id"?}``; responses and stream
chunks are ``{"response": {<GenerateContentResponse>}}``. Everything inside the envelope is delegated to
:mod:`cliproxy.formats.gemini`; this codec only adds and strips the wrapper, keeping ``project`` and the other
envelope keys in ``ext["gemini-cli"]`` so a CLI → CLI round trip is lossless. Errors, the stream-end check and
count answers are Gemini's (count answers are *not* wrapped in ``response``).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ... import ir
from ...errors import ErrorKind
from .. import gemini
from ..base import Codec, CodecError

__all__ = ["CODEC", "NAME", "GeminiCLICodec"]

NAME: Final = "gemini-cli"
_ENVELOPE_KEYS: Final = ("project", "model", "request")

_encode: Final = msgspec.json.Encoder().encode


class _ResponseEnvelope(msgspec.Struct, omit_defaults=True):
    response: gemini.GenerateContentResponse | None = None
    error: gemini.ErrorBody | None = None


_response_envelope_decoder: Final = msgspec.json.Decoder(_ResponseEnvelope)


def _ext(req: ir.Request) -> dict[str, Any]:
    value = req.ext.get(NAME) if req.ext else None
    return value if isinstance(value, dict) else {}


class GeminiCLICodec(Codec):
    """Code Assist envelope around the Gemini codec.

    Like the Gemini codec, ``decode_response``/``stream_decoder`` optionally take the IR request to restore
    sanitised tool names.
    """

    name = NAME
    counts_tokens = True

    def decode_request(self, body: bytes) -> ir.Request:
        try:
            env = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise CodecError(f"invalid JSON body: {exc}") from None
        if not isinstance(env, dict):
            raise CodecError("request body must be a JSON object")
        inner = env.get("request")
        if not isinstance(inner, dict):
            raise CodecError("request: the Gemini CLI envelope needs a 'request' object")
        req = gemini.decode_request_dict(inner)
        model = env.get("model")
        if isinstance(model, str) and model:
            req.model = model.removeprefix("models/")
        extra = {k: v for k, v in env.items() if k not in ("model", "request")}
        if extra:
            req.ext = {**req.ext, NAME: extra}
        return req

    def encode_request(self, req: ir.Request) -> bytes:
        ext = _ext(req)
        body: dict[str, Any] = {"project": ext.get("project", ""), "model": req.model}
        body["request"] = gemini.encode_request_dict(req, with_model=False)
        for k, v in ext.items():
            if k not in _ENVELOPE_KEYS:
                body[k] = v
        return _encode(body)

    def decode_response(self, body: bytes, req: ir.Request | None = None) -> ir.Response:
        try:
            env = _response_envelope_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"invalid Gemini CLI response: {exc}") from None
        if env.error is not None:
            raise CodecError(f"upstream error {env.error.code}: {env.error.message}")
        if env.response is None:
            raise CodecError("Gemini CLI response has no 'response' object")
        return gemini.CODEC.decode_response(_encode(env.response), req)

    def encode_response(self, resp: ir.Response, req: ir.Request | None = None) -> bytes:
        return b'{"response":' + gemini.CODEC.encode_response(resp) + b"}"

    def stream_decoder(self, req: ir.Request | None = None) -> gemini.GeminiStreamDecoder:
        return gemini.GeminiStreamDecoder(gemini.name_map(req), unwrap=True)

    def stream_encoder(self, req: ir.Request) -> gemini.GeminiStreamEncoder:
        return gemini.GeminiStreamEncoder(req, wrap=True)

    def error_body(self, status: int, message: str, kind: ErrorKind | None = None, code: str | None = None) -> bytes:
        """Errors are never wrapped in the envelope: the CLI reads Google's ``{"error": ...}`` as is."""
        return gemini.CODEC.error_body(status, message, kind, code)

    def is_native_error(self, body: bytes) -> bool:
        return gemini.CODEC.is_native_error(body)

    def relay_check(self) -> gemini.GeminiRelayCheck:
        return gemini.GeminiRelayCheck(self)

    def encode_count_tokens_request(self, req: ir.Request) -> bytes:
        """What the Gemini CLI itself sends to ``v1internal:countTokens``: no project, safety or config."""
        inner = gemini.count_tokens_request_dict(req)
        return _encode({"request": {"model": inner["model"], "contents": inner["contents"]}})

    def decode_count_tokens_response(self, body: bytes) -> int:
        """``totalTokens``, also when an upstream wrapped the answer in ``response`` like its other answers."""
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise CodecError(f"invalid countTokens response: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("response"), dict) and "totalTokens" not in data:
            return gemini.decode_count_tokens_response(_encode(data["response"]))
        return gemini.decode_count_tokens_response(body)

    def encode_count_tokens_response(self, total: int) -> bytes:
        return gemini.encode_count_tokens_response(total)


CODEC: Final = GeminiCLICodec()
