"""Domain exceptions. No HTTP here: `http/errors.py` maps them to status codes.

AgentHostError
├── ConfigError                  bad configuration; the server refuses to start
├── CallerError                  the caller's fault
│   ├── InvalidRequest           malformed or unsupported input (param names the field)
│   ├── RequestTooLarge          carries the limit in bytes
│   ├── AuthenticationFailed     missing, bad, revoked or expired key
│   ├── PermissionDenied         the key's role may not do this
│   ├── NotFound                 unknown (or invisible) agent, response, …
│   ├── InsufficientBalance
│   └── RateLimited              carries retry_after seconds
├── RunError                     the agent run itself failed (tool limits, MCP down…)
├── IdentityProviderUnavailable  the OIDC issuer's keys could not be read
└── ProviderError                the upstream model failed
    ├── UpstreamUnavailable      refused, 5xx, overloaded
    └── UpstreamTimeout
"""

from __future__ import annotations


class AgentHostError(Exception):
    """Base of every error we raise on purpose. `code` is machine-readable."""

    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param


class ConfigError(AgentHostError):
    code = "invalid_config"


class CallerError(AgentHostError):
    pass


class InvalidRequest(CallerError):
    code = "invalid_request"


class RequestTooLarge(CallerError):
    code = "request_too_large"

    def __init__(self, message: str, *, limit: int | None = None):
        super().__init__(message)
        self.limit = limit  # bytes, when known


class AuthenticationFailed(CallerError):
    code = "invalid_api_key"


class PermissionDenied(CallerError):
    code = "remote_agents_disabled"


class NotFound(CallerError):
    code = "not_found"


class InsufficientBalance(CallerError):
    code = "insufficient_balance"


class RateLimited(CallerError):
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RunError(AgentHostError):
    code = "run_failed"


class IdentityProviderUnavailable(AgentHostError):
    """A bearer token could not be checked: the issuer's discovery or keys are unreachable."""

    code = "identity_provider_unavailable"


class ServerShuttingDown(AgentHostError):
    """The server is stopping and its drain time is up: open runs end now, each stream
    with its protocol's ending."""

    code = "server_shutting_down"


class ProviderError(AgentHostError):
    """The upstream failed. `status` is the upstream's HTTP status when it sent one."""

    code = "upstream_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message, code=code)
        self.status = status


class UpstreamUnavailable(ProviderError):
    code = "upstream_unavailable"


class UpstreamTimeout(ProviderError):
    code = "upstream_timeout"
