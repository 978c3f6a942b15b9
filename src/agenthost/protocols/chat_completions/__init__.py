"""OpenAI Chat Completions: wire models, decoding to a RunRequest, encoding run events."""
