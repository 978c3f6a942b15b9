"""Headers every web page carries: no inline or foreign scripts, no framing, no sniffing,
no referrer leaving the site, and HSTS when the site is served over https."""

from __future__ import annotations

from starlette.responses import Response

# Scripts only from our own static files; inline styles stay allowed (the charts'
# colour swatches), inline scripts do not.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


def protect(response: Response, public_base_url: str | None) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if public_base_url and public_base_url.lower().startswith("https://"):
        response.headers.setdefault("strict-transport-security", HSTS)
    return response
