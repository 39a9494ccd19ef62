"""cliproxy provider plugin for OpenAI Responses / Codex upstreams (``codex-api-key`` entries)."""
