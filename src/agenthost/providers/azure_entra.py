"""Microsoft Entra ID bearer tokens for Azure OpenAI (`auth: entra`).

Two sources. `token_command`: a command (split like a shell would, run without one)
printing a token, or the JSON `az account get-access-token` prints; it is run with a
timeout. Client credentials: `tenant_id`, `client_id` and `client_secret` POSTed to
`{authority_url}/{tenant_id}/oauth2/v2.0/token` for the Cognitive Services scope.

A token is cached until shortly before it expires. Its expiry comes from the token
service's `expires_in`, from az's `expires_on`, or else from the token's own `exp` claim
(Entra tokens are JWTs); a token with none of these is used for 5 minutes. Concurrent
calls needing a new token share one fetch (single_flight.py); a failed fetch is not
cached, so the next call tries again.
"""

from __future__ import annotations

import asyncio
import base64
import shlex
import time
from collections.abc import Callable

import aiohttp
import orjson

from agenthost.errors import ConfigError, ProviderError, UpstreamTimeout, UpstreamUnavailable
from agenthost.providers.upstream_errors import redact
from agenthost.settings import ProviderSettings
from agenthost.single_flight import SingleFlight

SCOPE = "https://cognitiveservices.azure.com/.default"
MARGIN_SECONDS = 300.0  # a token this close to its expiry is replaced first
UNKNOWN_LIFETIME = 300.0
MAX_OUTPUT = 64 * 1024  # a token command printing more than this is broken


class EntraTokens:
    """The `Authorization` value for Azure OpenAI calls."""

    def __init__(
        self,
        provider: str,
        config: ProviderSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._provider = provider
        self._config = config
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._flight: SingleFlight[str, str] = SingleFlight()
        self._session: aiohttp.ClientSession | None = None
        if config.token_command and not shlex.split(config.token_command):
            raise ConfigError(f"config error: providers.{provider}.token_command is empty")

    async def authorization(self) -> str:
        if self._token is None or self._clock() >= self._renew_at:
            await self._flight.run("token", self._fetch)
        return f"Bearer {self._token}"

    def forget(self) -> None:
        """Drop the cached token (Azure refused it)."""
        self._token, self._renew_at = None, 0.0

    async def _fetch(self) -> str:
        if self._config.token_command:
            token, lifetime = await self._from_command(self._config.token_command)
        else:
            token, lifetime = await self._from_client_credentials()
        now = self._clock()
        if lifetime is None:
            lifetime = _jwt_lifetime(token, now)
        lifetime = lifetime if lifetime is not None else UNKNOWN_LIFETIME
        self._token = token
        # A token living less than twice the margin is renewed at half its life instead.
        early = MARGIN_SECONDS if lifetime >= 2 * MARGIN_SECONDS else lifetime / 2
        self._renew_at = now + lifetime - early
        return token

    async def _from_command(self, command: str) -> tuple[str, float | None]:
        where = f"upstream {self._provider}: token_command"
        timeout = self._config.token_command_timeout_seconds
        try:
            process = await asyncio.create_subprocess_exec(
                *shlex.split(command),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise UpstreamUnavailable(f"{where} could not start: {exc.strerror}") from exc
        try:
            async with asyncio.timeout(timeout):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise UpstreamTimeout(f"{where} did not finish within {timeout:g} s") from None
        if process.returncode != 0:
            detail = redact(err.decode(errors="replace").strip(), None)[:300]
            raise ProviderError(
                f"{where} failed (exit status {process.returncode}): {detail}", status=401
            )
        return _command_token(out[:MAX_OUTPUT].decode(errors="replace").strip(), where)

    async def _from_client_credentials(self) -> tuple[str, float | None]:
        config = self._config
        assert config.client_secret is not None and config.client_id and config.tenant_id
        secret = config.client_secret.get_secret_value()
        url = f"{config.authority_url.rstrip('/')}/{config.tenant_id}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": config.client_id,
            "client_secret": secret,
            "scope": SCOPE,
        }
        where = f"upstream {self._provider}'s token service"
        timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
        try:
            async with self._client().post(url, data=form, timeout=timeout) as response:
                status, content = response.status, await response.read()
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{where} timed out") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"cannot reach {where}: {redact(str(exc), secret)}") from exc
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if status != 200 or not isinstance(body.get("access_token"), str):
            described = body.get("error_description") or body.get("error") or f"HTTP {status}"
            detail = redact(str(described), secret)[:300]
            if status == 429 or status >= 500:
                raise UpstreamUnavailable(f"{where} answered HTTP {status}: {detail}")
            raise ProviderError(f"{where}: credentials rejected ({detail})", status=401)
        return body["access_token"], _seconds(body.get("expires_in"))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _seconds(value: object) -> float | None:
    """A positive number of seconds (JSON number or digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return float(value)
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return float(value)
    return None


def _command_token(text: str, where: str) -> tuple[str, float | None]:
    """A plain token, or az's JSON (`accessToken`, `expires_on` in epoch seconds)."""
    if text.startswith("{"):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ProviderError(f"{where} printed JSON that does not parse", status=401) from None
        if not isinstance(data, dict):
            raise ProviderError(f"{where} printed JSON that is not an object", status=401)
        token = data.get("accessToken") or data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProviderError(f"{where} printed JSON without accessToken", status=401)
        expires_on = _seconds(data.get("expires_on"))
        return token, None if expires_on is None else max(expires_on - time.time(), 0.0)
    if not text or any(c.isspace() for c in text):
        raise ProviderError(f"{where} printed no token (one line expected)", status=401)
    return text, None


def _jwt_lifetime(token: str, now: float) -> float | None:
    """Seconds until a JWT's `exp`, or None when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = orjson.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, orjson.JSONDecodeError):
        return None
    exp = _seconds(claims.get("exp")) if isinstance(claims, dict) else None
    return None if exp is None else max(exp - now, 0.0)
