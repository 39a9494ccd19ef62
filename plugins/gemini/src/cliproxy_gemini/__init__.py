"""cliproxy provider plugin for the Gemini API (``gemini-api-key`` / ``generative-language-api-key``)."""
