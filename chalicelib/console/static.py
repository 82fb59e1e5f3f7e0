"""The console's page: one HTML file and its built script and style sheet, shipped inside the
package (``chalicelib/console/static/``, built from ``console/`` by ``make console`` and
committed, so neither a fresh clone nor the Lambda package needs Node).

``GET /console`` answers the page with the assets' content hash in their URLs, so a new build is
fetched at once and an unchanged one is cached for a day; the page routes by the URL's fragment
(``#/members``), so no other path is needed.
"""

from __future__ import annotations

import hashlib
import html
import re
from functools import cache
from pathlib import Path

from chalice import Response

from chalicelib.errors import NotFound

Headers = dict[str, str | list[str]]

STATIC = Path(__file__).resolve().parent / "static"
ENTRIES = ("app.js", "app.css")
NAMES = re.compile(r"^(app\.js|app\.css|chunk-[A-Z0-9]{8}\.js)$")  # chunks: named by their content hash
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@cache
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@cache
def _version(name: str) -> str:
    return hashlib.sha256(_read(name).encode("utf-8")).hexdigest()[:12]


def index(login_url: str = "") -> Response:
    """The page. ``login_url``: Cognito's hosted login (``SIYU_CONSOLE_LOGIN_URL``), offered on the
    login screen; empty locally, where a token logs in."""
    page = _read("index.html")
    for name in ENTRIES:
        page = page.replace(f"assets/{name}", f"console/assets/{name}?v={_version(name)}")
    if login_url:
        page = page.replace("<body>", f'<body data-login-url="{html.escape(login_url, quote=True)}">')
    headers: Headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache", **SECURITY}
    return Response(page, headers=headers)


def asset(name: str) -> Response:
    if not NAMES.match(name) or not (STATIC / name).is_file():
        raise NotFound("no such console asset")
    headers: Headers = {"Content-Type": TYPES[Path(name).suffix], "Cache-Control": "public, max-age=86400", **SECURITY}
    return Response(_read(name), headers=headers)
