"""Catalogs, items and images in the store (S3 or a local folder with the same keys).

Entry points: `open_store(settings)` builds the `Store`; `CatalogRepository(store)` manages
catalogs on it (manifests with versions, images, cached feature blobs) safely under
concurrent writers. Nothing here knows about HTTP or models.
"""
