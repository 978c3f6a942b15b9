"""Request dependencies: the process services and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agenthost.auth.principal import Principal
from agenthost.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    principal = await services.keys.authenticate(bearer_token(request))
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
