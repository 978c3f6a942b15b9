"""The one validated configuration: a YAML file, then `AGENTHOST_<SECTION>__<KEY>` env overrides.

`${NAME}` (or `${NAME:-default}`) in any YAML string is replaced by that environment
variable, so secrets stay out of the file. A bad file raises `ConfigError` naming the key,
and the server does not start.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from agenthost.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "TRACE")
_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "replace-me", "xxx"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RemoteAgentPermissions(_Section):
    """What role `user` may do with remote (API) agent access; admins may do everything."""

    use: bool = Field(True, description="call agents through the API and create API keys")
    create: bool = Field(True, description="create agents")
    share: bool = Field(False, description="share remote access with users, roles and groups")
    public: bool = Field(False, description="share remote access with everyone")


class InterfaceSettings(_Section):
    remote_agents: RemoteAgentPermissions = Field(default_factory=RemoteAgentPermissions)


class AutoRefill(_Section):
    enabled: bool = False
    interval: str = Field("30d", description="period such as 12h, 7d or 30d")
    amount: int = Field(10_000, ge=0, description="credits added each interval")

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: str) -> str:
        parse_duration(value)
        return value


class BalanceSettings(_Section):
    enabled: bool = Field(True, description="charge and enforce per-user token balances")
    start_balance: int = Field(20_000, ge=0, description="credits a new user starts with")
    auto_refill: AutoRefill = Field(default_factory=AutoRefill)
    min_output_tokens: int = Field(
        16,
        ge=1,
        le=100_000,
        description="the smallest output cap worth sending upstream: a balance that cannot "
        "pay for this many output tokens (beyond the input) is refused with 402",
    )


class VertexSettings(_Section):
    """google: call Gemini through Vertex AI with Google Cloud credentials, not an API key."""

    project: str = Field(pattern=r"^[A-Za-z0-9.:_-]+$", description="the Google Cloud project id")
    location: str = Field(
        "global", pattern=r"^[a-z0-9-]+$", description="a region such as us-central1, or global"
    )
    credentials_file: str | None = Field(
        None,
        description="a service-account JSON key file; unset: Application Default Credentials",
    )


_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


class CircuitBreakerSettings(_Section):
    """Skip a provider that keeps failing before the first token, for a cool-down."""

    failures: int = Field(
        5, ge=0, le=1000, description="consecutive pre-first-token failures that open it; 0: off"
    )
    cooldown_seconds: float = Field(
        30.0, gt=0, le=86_400, description="how long it stays open before one trial call"
    )


class ProviderSettings(_Section):
    """One upstream. `openai` covers every OpenAI-compatible server."""

    type: Literal["openai", "azure_openai", "anthropic", "google", "bedrock", "local", "scripted"]
    base_url: str | None = None
    endpoint: str | None = Field(None, description="azure_openai: https://NAME.openai.azure.com")
    api_version: str | None = Field(None, description="azure_openai: the api-version query")
    deployments: dict[str, str] = Field(
        default_factory=dict, description="azure_openai: model name -> deployment name"
    )
    api_key: SecretStr | None = None
    models: list[str] = Field(default_factory=list, description="model choices shown in the UI")
    max_output_tokens: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="the output cap sent upstream when neither the request nor the agent "
        "sets one (default 4096; local: what its context leaves)",
    )
    timeout_seconds: float = Field(600.0, gt=0, description="whole-call timeout")
    connect_timeout_seconds: float = Field(10.0, gt=0)
    first_token_timeout_seconds: float = Field(120.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10, description="retries before the first token only")
    headers: dict[str, str] = Field(default_factory=dict)
    stream_interval_ms: float = Field(
        20.0,
        ge=0,
        le=1000,
        description="openai: a streamed answer arriving faster than this is read (and "
        "relayed) in batches at most this often; 0 reads every token at once",
    )
    model_path: str | None = Field(None, description="local: a GGUF file (default: embedded)")
    context_tokens: int = Field(4096, ge=256, description="local: context window")
    threads: int | None = Field(
        None, ge=1, description="local: generation threads (default: half the cores, at least 1)"
    )
    script: dict[str, Any] = Field(default_factory=dict, description="scripted: behaviour")
    user_provided: bool = Field(
        False, description="each caller's own key (Settings → Provider keys); no api_key here"
    )
    bill_usage: bool = Field(True, description="false: usage is recorded but not charged")
    vertex: VertexSettings | None = Field(
        None, description="google: Vertex AI's project, location and credentials"
    )
    region: str | None = Field(None, description="bedrock: the AWS region (us-east-1)")
    access_key_id: str | None = Field(
        None, description="bedrock: AWS access key id (default: the standard AWS chain)"
    )
    secret_access_key: SecretStr | None = Field(None, description="bedrock: with access_key_id")
    session_token: SecretStr | None = Field(
        None, description="bedrock: temporary credentials' session token"
    )
    endpoint_url: str | None = Field(
        None, description="bedrock: default https://bedrock-runtime.{region}.amazonaws.com"
    )
    auth: Literal["api_key", "entra"] = Field(
        "api_key", description="azure_openai: entra sends a Microsoft Entra ID bearer token"
    )
    token_command: str | None = Field(
        None,
        description="azure_openai entra: a command printing a bearer token (or az's JSON)",
    )
    token_command_timeout_seconds: float = Field(30.0, gt=0, le=600)
    tenant_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9.-]+$", description="azure_openai entra: client credentials"
    )
    client_id: str | None = None
    client_secret: SecretStr | None = None
    authority_url: str = "https://login.microsoftonline.com"
    circuit_breaker: CircuitBreakerSettings = Field(
        default_factory=CircuitBreakerSettings,
        description="agents with fallbacks skip this provider while it keeps failing",
    )

    @model_validator(mode="after")
    def _entra_has_one_source(self) -> ProviderSettings:
        if self.auth != "entra":
            return self
        if self.type != "azure_openai":
            raise ValueError("auth: entra is for azure_openai providers")
        credentials = (self.tenant_id, self.client_id, self.client_secret)
        if self.token_command and any(credentials):
            raise ValueError("auth: entra takes token_command or client credentials, not both")
        if not self.token_command and not all(credentials):
            raise ValueError(
                "auth: entra needs token_command, or tenant_id, client_id and client_secret"
            )
        if self.api_key is not None or self.user_provided:
            raise ValueError("auth: entra sends a token instead of a key; remove api_key")
        return self

    @model_validator(mode="after")
    def _user_provided_has_no_key(self) -> ProviderSettings:
        if self.user_provided and self.api_key is not None:
            raise ValueError("user_provided: each user brings their key; remove api_key")
        if self.user_provided and self.type in ("local", "scripted"):
            raise ValueError(f"user_provided: a {self.type} provider takes no key")
        return self

    @model_validator(mode="after")
    def _bedrock_keys(self) -> ProviderSettings:
        aws = ("region", "access_key_id", "secret_access_key", "session_token", "endpoint_url")
        if self.type != "bedrock":
            stray = [k for k in aws if getattr(self, k) is not None]
            if stray:
                raise ValueError(f"{stray[0]}: only a bedrock provider takes it")
            return self
        if self.api_key is not None:
            raise ValueError("api_key: bedrock signs with AWS keys (access_key_id, ...)")
        if not self.region or not _AWS_REGION.match(self.region):
            raise ValueError(
                f"region: an AWS region such as us-east-1 is needed, not {self.region!r}"
            )
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key go together")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token: needs access_key_id and secret_access_key")
        if self.user_provided and self.access_key_id is not None:
            raise ValueError("user_provided: each user brings their key; remove access_key_id")
        return self


class Price(_Section):
    """USD per one million tokens; cache prices default to the input price."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(None, ge=0)
    cache_write: float | None = Field(None, ge=0)


class McpServerSettings(_Section):
    transport: Literal["stdio", "streamable_http"]
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="streamable_http: request headers; {user.id}, {user.email} and "
        "{secret.NAME} (the user's own secret NAME) are replaced by the calling user's "
        "(one pooled connection per user then; a secret not set fails with missing_secret)",
    )
    timeout_seconds: float = Field(30.0, gt=0, description="connect, list and per-call cap")
    tools_ttl_seconds: float = Field(300.0, gt=0, description="how long a tool list is cached")

    @model_validator(mode="after")
    def _check_target(self) -> McpServerSettings:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio server needs 'command'")
        if self.transport == "streamable_http" and not self.url:
            raise ValueError("a streamable_http server needs 'url'")
        return self


class RateLimit(_Section):
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    concurrent_requests: int | None = Field(None, ge=1)


class KeyRateLimit(RateLimit):
    """Per-key limits; a key left out of the file keeps its default (not "unlimited")."""

    requests_per_minute: int | None = Field(120, ge=1)
    tokens_per_minute: int | None = Field(200_000, ge=1)
    concurrent_requests: int | None = Field(8, ge=1)


class RunLimits(_Section):
    max_steps: int = Field(16, ge=1, description="model calls per run")
    max_tool_argument_bytes: int = Field(65_536, ge=1)
    tool_timeout_seconds: float = Field(60.0, gt=0)
    run_deadline_seconds: float = Field(900.0, gt=0)


class LimitSettings(_Section):
    per_key: KeyRateLimit = Field(default_factory=KeyRateLimit)
    per_user: RateLimit = Field(default_factory=RateLimit)
    max_body_bytes: int = Field(3_145_728, ge=1024)
    run: RunLimits = Field(default_factory=RunLimits)
    agent_graph_depth: int = Field(
        3, ge=0, le=32, description="how deep sub-agents and handoffs may nest in one request"
    )
    run_lease_seconds: float = Field(
        30.0, ge=3, le=3600, description="a running response not renewed this long is ended"
    )
    graceful_shutdown_seconds: float = Field(
        30.0, gt=0, le=3600, description="on SIGTERM, how long open requests may finish"
    )
    websocket_connection_seconds: float = Field(
        3600.0, gt=0, description="Open Responses WebSocket connections end after this long"
    )


class BootstrapSettings(_Section):
    admin_email: str = Field("admin@localhost", description="first admin, created on first start")
    default_agent: bool = Field(True, description="create a ready agent on first start")


class MetricsSettings(_Section):
    enabled: bool = Field(True, description="serve Prometheus metrics at GET /metrics")
    bearer_token: SecretStr | None = Field(
        None, description="when set, a scrape must send `Authorization: Bearer TOKEN`"
    )


class ObservabilitySettings(_Section):
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP base URL: export a trace of each request when set"
    )
    record_content: bool = Field(False, description="traces carry prompt and output text")
    service_name: str = Field("agenthost", description="service.name of exported traces")


class WebSettings(_Section):
    session_idle_seconds: float = Field(
        7200, gt=0, description="a web session not used for this long ends"
    )
    session_max_seconds: float = Field(
        43200, gt=0, description="a web session ends this long after sign-in, used or not"
    )


class AdminClaim(_Section):
    name: str = Field(..., min_length=1, description="the claim that lists roles or groups")
    values: list[str] = Field(..., min_length=1, description="any of these makes an admin")


class OidcApiSettings(_Section):
    enabled: bool = Field(False, description="accept OIDC bearer tokens on /api/agents/v1")
    audience: str | None = Field(
        None, validate_default=True, description="the `aud` tokens must carry"
    )
    required_scopes: list[str] = Field(
        default_factory=list, description="all must be in the token's scope/scp claim"
    )

    @field_validator("audience")
    @classmethod
    def _audience_when_enabled(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("enabled") and not value:
            raise ValueError("required when api.enabled is true")
        return value


class OidcSettings(_Section):
    issuer: str = Field(..., description="discovery at {issuer}/.well-known/openid-configuration")
    client_id: str | None = Field(None, description="this application's client id (sign-in)")
    display_name: str | None = Field(
        None, max_length=60, description='"Sign in with <this>"; default: the issuer\'s host'
    )
    client_secret: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    auto_provision: bool = Field(False, description="sign-in creates unknown users")
    admin_claim: AdminClaim | None = None
    groups_claim: str | None = None
    api: OidcApiSettings = Field(default_factory=OidcApiSettings)

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        parsed = urlsplit(value)
        local = parsed.hostname in {"localhost", "127.0.0.1", "::1"}
        if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
            raise ValueError("must be an https URL (http only for localhost or 127.0.0.1)")
        if not parsed.hostname or parsed.query or parsed.fragment:
            raise ValueError("must be a URL like https://idp.example.com/realms/acme")
        return value


class AuthSettings(_Section):
    password_login: bool = Field(True, description="local passwords can sign in")
    oidc: OidcSettings | None = None


def _default_providers() -> dict[str, ProviderSettings]:
    return {"local": ProviderSettings(type="local")}


class Settings(BaseSettings):
    """Everything configurable. Built once, in `create_app` or the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTHOST_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///./data/agenthost.db", description="SQLAlchemy async URL"
    )
    redis_url: str | None = Field(None, description="shared limits, reservations, invalidations")
    data_dir: Path = Field(Path("./data"), description="SQLite file, secret key")
    secret_key: SecretStr | None = Field(
        None, description="signs sessions and seals compaction items; generated when unset"
    )
    public_base_url: str | None = Field(None, description="URL shown in snippets")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks of reverse proxies whose X-Forwarded-For is believed",
    )
    log_level: str = "INFO"
    interface: InterfaceSettings = Field(default_factory=InterfaceSettings)
    balance: BalanceSettings = Field(default_factory=BalanceSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    pricing: dict[str, Price] = Field(default_factory=dict)
    mcp_servers: dict[str, McpServerSettings] = Field(default_factory=dict)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    bootstrap: BootstrapSettings = Field(default_factory=BootstrapSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    web: WebSettings = Field(default_factory=WebSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    strict_providers: bool = Field(
        False,
        description="refuse to start when a provider's ${VAR} is unset (else it is disabled)",
    )
    # Providers left out because their ${VAR} is unset: name -> variable. See load_settings.
    _disabled_providers: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def disabled_providers(self) -> dict[str, str]:
        return self._disabled_providers

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        drivers = {"sqlite+aiosqlite", "postgresql+asyncpg"}
        try:
            scheme = make_url(value).drivername
        except ArgumentError as exc:
            raise ValueError(f"{value!r} is not a database URL") from exc
        if scheme not in drivers:
            raise ValueError("use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError("use redis://HOST:PORT/DB (or rediss://, unix://)")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        if value.upper() not in _LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(_LOG_LEVELS)}")
        return value.upper()

    @field_validator("secret_key")
    @classmethod
    def _reject_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if raw.lower() in _PLACEHOLDER_SECRETS or len(raw) < 16:
                raise ValueError("must be a real secret of at least 16 characters")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file (passed as init values).
        return (env_settings, init_settings)


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `12h`, `30d` → seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 15m or 90s")
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * factor


class _UnsetVariable(ConfigError):
    def __init__(self, path: str, name: str) -> None:
        super().__init__(f"config error: {path} references ${{{name}}}, which is not set")
        self.name = name


def _interpolate(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found is None:
                if default is None:
                    raise _UnsetVariable(path, name)
                return default
            return found

        return _ENV_REF.sub(replace, value)
    return value


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(str(p) for p in item["loc"])
        where = ".".join(loc) or "(root)"
        message = item["msg"]
        if item["type"] == "extra_forbidden" and loc:
            close = difflib.get_close_matches(loc[-1], _keys_at(loc[:-1]), n=1, cutoff=0.6)
            if close:
                message += f" (did you mean '{close[0]}'?)"
        variable = "AGENTHOST_" + "__".join(loc).upper()
        if loc and variable in {name.upper() for name in os.environ}:
            message += f" (from the environment variable {variable})"
        lines.append(f"{where}: {message}")
    return "config error: " + "; ".join(lines)


def _keys_at(loc: tuple[str, ...]) -> list[str]:
    """The keys the configuration knows at `loc` (a mapping's own keys are free)."""
    shape: Any = Settings
    for part in loc:
        shape = _section(shape)
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            field = shape.model_fields.get(part)
            if field is None:
                return []
            shape = field.annotation
        elif get_origin(shape) is dict:
            shape = get_args(shape)[1]  # `part` names an entry: its value's shape
        else:
            return []
    shape = _section(shape)
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        return list(shape.model_fields)
    return []


def _section(shape: Any) -> Any:
    """`Model | None` -> `Model`."""
    if get_origin(shape) in (Union, types.UnionType):
        for arg in get_args(shape):
            if arg is not type(None):
                return arg
    return shape


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (or `AGENTHOST_CONFIG`), apply env overrides, validate."""
    path = path or os.environ.get("AGENTHOST_CONFIG")
    data: dict[str, Any] = {}
    if path:
        file = Path(path)
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config error: file {file} not found") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config error: {file} is not valid YAML{_yaml_where(exc)}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config error: {file} must hold a mapping at the top level")
        loaded = loaded or {}
        providers, unset = _providers_with_variables(loaded.pop("providers", None))
        data = _interpolate(loaded, "")
        if providers is not None:
            data["providers"] = providers
    else:
        unset = {}
    data.update(overrides)
    try:
        built = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    except SettingsError as exc:  # an environment override that is not valid JSON
        raise ConfigError(f"config error: {exc}") from exc
    if unset and built.strict_providers:
        raise next(iter(unset.values()))
    for name, error in unset.items():
        built.disabled_providers[name] = error.name
    return built


def _providers_with_variables(
    providers: Any,
) -> tuple[Any, dict[str, _UnsetVariable]]:
    """The providers section with variables replaced, leaving out (and naming) each
    provider that references an unset variable: the rest of the server still starts."""
    if not isinstance(providers, dict):
        return _interpolate(providers, "providers"), {}
    kept: dict[str, Any] = {}
    unset: dict[str, _UnsetVariable] = {}
    for name, section in providers.items():
        try:
            kept[name] = _interpolate(section, f"providers.{name}")
        except _UnsetVariable as exc:
            unset[str(name)] = exc
    return kept, unset


def _yaml_where(error: yaml.YAMLError) -> str:
    """` (line L, column C): problem` on one line, however the parser phrased it."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return ": " + " ".join(str(error).split())
    mark = error.problem_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{where}: {error.problem or error.context or 'unreadable'}"
