"""Fake upstream providers that speak each real wire format and validate what they receive."""

from __future__ import annotations

from .base import Endpoint, FakeApp, FakeUpstream, Handler, Recorded, Reply, ToolCall, Usage, split_text
from .claude import FakeClaude
from .gemini import FakeGemini, FakeGeminiCLI
from .oauth import FakeOAuthServer, IssuedToken
from .openai_chat import FakeOpenAIChat
from .openai_responses import FakeOpenAIResponses

__all__ = [
    "Endpoint",
    "FakeApp",
    "FakeClaude",
    "FakeGemini",
    "FakeGeminiCLI",
    "FakeOAuthServer",
    "FakeOpenAIChat",
    "FakeOpenAIResponses",
    "FakeUpstream",
    "Handler",
    "IssuedToken",
    "Recorded",
    "Reply",
    "ToolCall",
    "Usage",
    "split_text",
]
