"""Test kit for cliproxy and its plugins: loopback servers and faithful fake upstream providers.

Shipped with the core package so plugin authors test against the same fakes. Provider SDKs are only imported
when a fake validates a request, so importing this package needs none of them.
"""

from __future__ import annotations

from .fakes import (
    FakeApp,
    FakeClaude,
    FakeGemini,
    FakeGeminiCLI,
    FakeOAuthServer,
    FakeOpenAIChat,
    FakeOpenAIResponses,
    FakeUpstream,
    IssuedToken,
    Recorded,
    Reply,
    ToolCall,
    Usage,
)
from .loopback import serve_in_thread, serve_on_loopback

__all__ = [
    "FakeApp",
    "FakeClaude",
    "FakeGemini",
    "FakeGeminiCLI",
    "FakeOAuthServer",
    "FakeOpenAIChat",
    "FakeOpenAIResponses",
    "FakeUpstream",
    "IssuedToken",
    "Recorded",
    "Reply",
    "ToolCall",
    "Usage",
    "serve_in_thread",
    "serve_on_loopback",
]
