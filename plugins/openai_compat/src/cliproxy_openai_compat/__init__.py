"""cliproxy provider plugin for OpenAI-compatible Chat Completions upstreams (OpenRouter, vLLM, Ollama ...)."""
