"""The Sighting HTTP service: ``create_app`` is the application factory (gunicorn points here).

gunicorn -c gunicorn.conf.py          # wsgi_app = "api:create_app()"
"""

from __future__ import annotations

import logging
import os

from apiflask import APIFlask
from flask import request

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, pipeline=None) -> APIFlask:
    """Build the app: store, models (loaded here, in the worker), routes, errors, metrics.

    Args:
        settings: the configuration; from the environment and `.env` when None.
        pipeline: an already loaded `matching.pipeline.Pipeline` to share (tests); loaded
            from ``settings`` when None.
    """
    from api.auth import HEADER, caller
    from api.errors import register_error_handlers
    from api.metrics import init_metrics
    from api.routes import (
        analytics,
        catalogs,
        discovery,
        docs,
        explain,
        health,
        items,
        jobs,
        matching,
        sightings,
        streams,
        traps,
        watches,
    )
    from api.schemas import API_KEY, Error, json_keywords
    from console import bp as console_bp
    from matching.engine import load_pipeline
    from service.state import SightingState

    settings = settings or get_settings()
    app = APIFlask(__name__, title="Sighting", version="1.0", docs_path="/docs")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SPEC_FORMAT"] = "json"
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 422
    # every error answer is documented in the service's own shape (api/errors.py)
    app.config["HTTP_ERROR_SCHEMA"] = Error
    app.config["VALIDATION_ERROR_SCHEMA"] = Error
    app.config["VALIDATION_ERROR_DESCRIPTION"] = "Bad input: details name the fields"
    app.security_schemes = {API_KEY: {"type": "apiKey", "in": "header", "name": HEADER}}
    app.info = {
        "description": "Find the exact items of a catalog in camera frames. "
        'Errors share one shape: {"error": {"status", "code", "message", "details"}}.'
    }

    app.spec_processor(json_keywords)
    # the worker's one state object: store, models, caches, streams, jobs (service.state)
    app.extensions["sighting"] = SightingState.build(settings, pipeline or load_pipeline(settings))
    register_error_handlers(app)
    init_metrics(app)

    @app.before_request
    def _authenticate() -> None:  # every /v1 route: 401 before anything else is looked at
        if request.url_rule is not None and request.url_rule.rule.startswith("/v1/"):
            caller()

    @app.after_request
    def _worker_header(response):
        response.headers["X-Sighting-Worker"] = str(os.getpid())  # which worker answered
        return response

    modules = (health, catalogs, items, matching, explain, streams, jobs, analytics, traps)
    for module in (*modules, sightings, watches, discovery):
        app.register_blueprint(module.bp)
    docs.configure(app)  # /docs with Swagger UI's files served here, not from a CDN
    app.register_blueprint(console_bp)  # the browser console: /console, / redirects there
    log.info("Sighting ready: storage=%s", settings.storage)
    return app
