"""The API document's page (``/docs``, Swagger UI) served with its own files: its script,
style and icon come from the `swagger_ui_bundle` package (Swagger UI's dist files, Apache-2.0)
under ``/docs/assets/``, so the page works with no request leaving the machine.

``configure(app)`` points APIFlask's page at them (by default it loads them from a CDN).
"""

from __future__ import annotations

from flask import Blueprint, Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs_assets", __name__)  # a plain blueprint: not in the API document

ASSETS = "/docs/assets"
_FILES = {
    "SWAGGER_UI_CSS": "swagger-ui.css",
    "SWAGGER_UI_BUNDLE_JS": "swagger-ui-bundle.js",
    "SWAGGER_UI_STANDALONE_PRESET_JS": "swagger-ui-standalone-preset.js",
    "DOCS_FAVICON": "favicon-32x32.png",
}


@bp.get(f"{ASSETS}/<path:name>")
def asset(name: str):
    """One file of Swagger UI's distribution (404 for anything else)."""
    return send_from_directory(str(swagger_ui_path), name, max_age=86400)


def configure(app: Flask) -> None:
    """Serve ``/docs`` with the local files."""
    for setting, name in _FILES.items():
        app.config[setting] = f"{ASSETS}/{name}"
    app.register_blueprint(bp)
