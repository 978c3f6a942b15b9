"""AWS credentials and SigV4 signing for Bedrock, with botocore's signer.

Keys come from the provider's config (`access_key_id`, `secret_access_key`, optional
`session_token`), from a user-provided caller's stored key (`ACCESS_KEY_ID:SECRET` or
`ACCESS_KEY_ID:SECRET:SESSION_TOKEN`), or else from the standard AWS chain (environment,
shared files, SSO, container and instance roles) through a botocore session. The chain
may read files or call a metadata service, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import get_session
from yarl import URL

from agenthost.errors import ProviderError

SERVICE = "bedrock"


def parse_user_key(provider: str, key: str) -> Credentials:
    """A caller's stored key, `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`."""
    parts = key.strip().split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ProviderError(
            f"upstream {provider}: the stored key must be ACCESS_KEY_ID:SECRET_ACCESS_KEY "
            "(optionally :SESSION_TOKEN)",
            status=401,
        )
    return Credentials(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


class AwsSigner:
    """Signs Bedrock requests for one provider."""

    def __init__(self, provider: str, region: str, static: Credentials | None) -> None:
        self._provider = provider
        self._region = region
        self._static = static
        self._chain: Any = None  # botocore's resolved (maybe refreshable) credentials

    async def credentials(self) -> ReadOnlyCredentials:
        if self._static is not None:
            return self._static.get_frozen_credentials()
        try:
            return await asyncio.to_thread(self._from_chain)
        except ProviderError:
            raise
        except Exception as exc:  # botocore's many credential errors; no secrets in them
            raise ProviderError(
                f"upstream {self._provider}: AWS credentials unavailable ({type(exc).__name__})",
                status=401,
            ) from exc

    def _from_chain(self) -> ReadOnlyCredentials:
        if self._chain is None:
            self._chain = get_session().get_credentials()
        if self._chain is None:
            raise ProviderError(
                f"upstream {self._provider}: no AWS credentials found (set access_key_id and "
                "secret_access_key, or configure the standard AWS chain)",
                status=401,
            )
        frozen: ReadOnlyCredentials = self._chain.get_frozen_credentials()
        return frozen

    def sign(
        self, url: URL, body: bytes, headers: dict[str, str], creds: ReadOnlyCredentials
    ) -> dict[str, str]:
        """`headers` plus SigV4's (Authorization, X-Amz-Date, X-Amz-Security-Token)."""
        request = AWSRequest(method="POST", url=str(url), data=body, headers=headers)
        static = Credentials(creds.access_key, creds.secret_key, creds.token)
        SigV4Auth(static, SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())
