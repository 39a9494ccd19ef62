"""cliproxy provider plugin for Qwen Code accounts: device-flow login, token refresh, chat on Qwen's API."""
