"""cliproxy provider plugin for iFlow accounts: OAuth login, API key from the account, chat on iFlow's API."""
