"""The use cases of the Sighting service, between the HTTP edge (`api`) and the engine.

Each use case (create a catalog, add images, detect, search, explain, a stream frame, a video,
submit a job...) is a function of the worker's state (`service.state.SightingState`), the
caller (`service.access.Caller`) and typed options (`service.options`), returning a typed
result; `api` reads requests into those and serialises the results (`api.serialise`). Nothing
here imports Flask (an import-linter contract in pyproject.toml says so).
"""
