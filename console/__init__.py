"""The browser console: a page and its static files, served by the API's own app.

The console is plain ES modules and CSS under ``static/`` (no build step, nothing fetched from
elsewhere). It calls only the public API (``/v1/...``, ``/readyz``, ``/openapi.json``) with the
key the user typed (kept in the tab's ``sessionStorage``, sent as ``X-API-Key``), so it adds no
route that reads or changes data: its own routes serve files only.

    app.register_blueprint(console.bp)    # /console, /console/static/..., / -> /console/
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory

STATIC = Path(__file__).parent / "static"

#: only the app's own scripts and styles; thumbnails, explanations and videos are blobs
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

bp = Blueprint("console", __name__, static_folder="static", static_url_path="/console/static")


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"  # revalidate: a new release shows at once
    return response


@bp.get("/")
def root():
    """The service's front page is the console."""
    return redirect("/console/", code=302)


@bp.get("/console")
@bp.get("/console/")
def index():
    """The console's one page; its JavaScript draws every view (``#/catalogs``, ...)."""
    return send_from_directory(STATIC, "index.html", mimetype="text/html")
