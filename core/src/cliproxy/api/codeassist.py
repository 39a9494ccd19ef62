"""Gemini CLI's Code Assist surface (``CODE_ASSIST_ENDPOINT``): ``POST /v1internal:<method>``.

Generation and token counting are routed like any request (client dialect ``gemini-cli``). The account
methods Gemini CLI calls at startup (``loadCodeAssist``, ``onboardUser``, ``retrieveUserQuota``,
``listExperiments`` ...) are answered here so the CLI proceeds with whatever upstream serves the model; a
plugin that owns real Code Assist credentials can take them over with ``register_routes``.
Only loopback peers are served, judged by the TCP peer address (never by forwarded-for headers).
"""

from __future__ import annotations

import os
from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler

from ..errors import ProxyError
from .common import Exec, context, probe, to_response

__all__ = ["CODE_ASSIST_HANDLERS", "is_loopback"]

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_LOOPBACK = ("127.", "::1", "::ffff:127.")


def is_loopback(request: Request[Any, Any, Any]) -> bool:
    client = request.scope.get("client")
    host = client[0] if client else ""
    return bool(host) and (host.startswith(_LOOPBACK) or host == "localhost")


def _check_peer(request: Request[Any, Any, Any]) -> None:
    if not is_loopback(request):
        raise ProxyError(403, "the Code Assist endpoints only accept local connections", kind="permission")


def _project(body: bytes) -> str:
    try:
        data = _decode(body) if body.strip() else {}
    except msgspec.DecodeError:
        data = {}
    if isinstance(data, dict):
        for key in ("cloudaicompanionProject", "project"):
            if isinstance(data.get(key), str) and data[key]:
                return str(data[key])
        meta = data.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("duetProject"), str):
            return str(meta["duetProject"])
    return os.environ.get("GOOGLE_CLOUD_PROJECT") or "cliproxy"


async def _generate(request: Request[Any, Any, Any], execution: Any, stream: bool, action: str) -> Response[Any]:
    _check_peer(request)
    body = await request.body()
    p = probe(body, "gemini-cli", action)
    result = await execution.handle("gemini-cli", body, p.model or "", stream, context(request, action))
    return to_response(result)


@post("/v1internal:generateContent", status_code=200)
async def generate_content(request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
    return await _generate(request, execution, False, "generate")


@post("/v1internal:streamGenerateContent", status_code=200)
async def stream_generate_content(request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
    return await _generate(request, execution, True, "generate")


@post("/v1internal:countTokens", status_code=200)
async def count_tokens(request: Request[Any, Any, Any], execution: Exec) -> Response[Any]:
    return await _generate(request, execution, False, "count_tokens")


def _local(method: str, body: bytes) -> Any:
    project = _project(body)
    tier = {
        "id": "standard-tier",
        "name": "Gemini Code Assist",
        "description": "served by cliproxy",
        "userDefinedCloudaicompanionProject": True,
    }
    if method == "loadCodeAssist":
        return {
            "currentTier": tier,
            "allowedTiers": [{**tier, "isDefault": True}],
            "cloudaicompanionProject": project,
            "gcpManaged": False,
        }
    if method == "onboardUser":
        return {
            "name": "onboard/cliproxy",
            "done": True,
            "response": {"cloudaicompanionProject": {"id": project, "name": project}},
        }
    if method == "retrieveUserQuota":
        return {"buckets": []}
    if method == "listExperiments":
        return {"experimentIds": [], "flags": []}
    return {}


def _account_method(method: str) -> HTTPRouteHandler:
    async def handler(request: Request[Any, Any, Any]) -> Response[bytes]:
        _check_peer(request)
        body = await request.body()
        return Response(_encode(_local(method, body)), media_type="application/json")

    handler.__name__ = f"code_assist_{method}"
    return post(f"/v1internal:{method}", status_code=200, name=f"code-assist-{method}")(handler)


ACCOUNT_METHODS = (
    "loadCodeAssist",
    "onboardUser",
    "retrieveUserQuota",
    "listExperiments",
    "recordCodeAssistMetrics",
    "fetchAdminControls",
    "getCodeAssistGlobalUserSetting",
    "setCodeAssistGlobalUserSetting",
)

CODE_ASSIST_HANDLERS = [
    generate_content,
    stream_generate_content,
    count_tokens,
    *(_account_method(m) for m in ACCOUNT_METHODS),
]
