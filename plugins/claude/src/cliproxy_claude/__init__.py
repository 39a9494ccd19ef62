"""cliproxy provider plugin for the Anthropic Messages API: ``claude-api-key`` entries and Claude Code subscription
logins (``cliproxy login claude``)."""
