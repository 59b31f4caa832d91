"""Collection analytics: clusters, outliers, look-alikes, a map and image quality flags.

Inputs (`analytics.inputs`, `analytics.sources`) -> `analytics.pipeline.run` (the steps in
`analytics.steps`) -> an `analytics.data.AnalyticsResult` -> `analytics.outputs` (CSV,
parquet, metrics, PNG and HTML map, contact sheets). `analytics.quality` flags bad photos
from their pixels. Entry points: ``python -m analytics`` (`analytics.cli`) and the job kind
``analytics`` (`analytics.job`) behind ``POST /v1/catalogs/<id>/analytics``.
"""
