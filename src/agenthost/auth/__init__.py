"""Authentication (API keys, passwords) and permissions."""
