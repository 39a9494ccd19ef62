"""cliproxy provider plugin for the Anthropic Messages API (``claude-api-key`` entries)."""
