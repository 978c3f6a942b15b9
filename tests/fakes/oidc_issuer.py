"""A fake OpenID issuer's public side: discovery and the JWKS, in its own process.

    python tests/fakes/oidc_issuer.py --jwks FILE [--path /realms/acme] [--port 0]

prints `READY <port>`. The issuer is `http://127.0.0.1:<port><path>`. The JWKS is read
from FILE on every request, so a test rotates keys by rewriting it; tests sign their own
tokens with the matching private keys (tests/support/oidc.py). This fakes only the
identity provider's key publication, to let tests sign tokens no real provider would
(expired, wrong audience, `alg: none`...); the sign-in flow runs against a real provider.
`GET /_stats` counts JWKS reads. `POST /token` answers what a test last put with
`PUT /_token_reply` (an ID token signed by the test, for sign-in checks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

OPTIONS = argparse.Namespace(jwks=Path("/dev/null"), path="")
STATS = {"jwks_fetches": 0, "discovery_fetches": 0}
TOKEN_REPLY: dict[str, object] = {"error": "invalid_grant"}
TOKEN_REQUESTS: list[dict[str, str]] = []


def _issuer(request: Request) -> str:
    return f"http://{request.url.netloc}{OPTIONS.path}"


async def discovery(request: Request) -> Response:
    STATS["discovery_fetches"] += 1
    issuer = _issuer(request)
    return JSONResponse(
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/jwks",
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
    )


async def jwks(request: Request) -> Response:
    STATS["jwks_fetches"] += 1
    return JSONResponse(json.loads(OPTIONS.jwks.read_text()))


async def stats(request: Request) -> Response:
    return JSONResponse({**STATS, "token_requests": TOKEN_REQUESTS})


async def token(request: Request) -> Response:
    form = await request.form()
    TOKEN_REQUESTS.append({k: str(v) for k, v in form.items()})
    status = 400 if "error" in TOKEN_REPLY else 200
    return JSONResponse(TOKEN_REPLY, status_code=status)


async def token_reply(request: Request) -> Response:
    TOKEN_REPLY.clear()
    TOKEN_REPLY.update(await request.json())
    return JSONResponse({"ok": True})


def build_app() -> Starlette:
    path = OPTIONS.path
    return Starlette(
        routes=[
            Route(f"{path}/.well-known/openid-configuration", discovery),
            Route(f"{path}/jwks", jwks),
            Route(f"{path}/token", token, methods=["POST"]),
            Route("/_stats", stats),
            Route("/_token_reply", token_reply, methods=["PUT"]),
        ]
    )


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--jwks", type=Path, required=True)
    parser.add_argument("--path", default="", help="the issuer's path, e.g. /realms/acme")
    args = parser.parse_args()
    OPTIONS.jwks, OPTIONS.path = args.jwks, args.path.rstrip("/")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    config = uvicorn.Config(build_app(), log_level="warning", access_log=False, lifespan="off")
    asyncio.run(_serve(uvicorn.Server(config), sock))


if __name__ == "__main__":
    main()
