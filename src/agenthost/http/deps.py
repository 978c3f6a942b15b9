"""Request dependencies: the process services and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agenthost.auth import sessions
from agenthost.auth.principal import Principal
from agenthost.services import Services


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs plain `def` dependencies in a thread pool.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def authenticated(request: Request) -> tuple[Services, Principal]:
    """The services and the caller, without FastAPI's dependency machinery (which costs
    more than the rest of a proxied request's routing); for the two hot routes."""
    services = await get_services(request)
    return services, await get_principal(request, services)


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    token = bearer_token(request)
    if token is None and sessions.COOKIE_NAME in request.cookies:
        # Same-origin browser scripts (the web playground) call with the session cookie
        # plus the CSRF header instead of a key.
        found = await sessions.session_principal(
            services.web_sessions,
            sessions.codec_for(request.app.state),
            request.cookies.get(sessions.COOKIE_NAME),
            request.headers.get(sessions.CSRF_HEADER),
        )
        if found is not None:
            request.state.principal = found
            return found
    principal = await services.callers.authenticate(token)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
