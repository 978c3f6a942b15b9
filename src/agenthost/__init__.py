"""agenthost: a self-hosted agent platform behind OpenAI-compatible interfaces."""

__version__ = "0.1.0"
