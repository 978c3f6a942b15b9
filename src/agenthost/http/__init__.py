"""HTTP routers for /api/agents/v1, request dependencies and error mapping."""
