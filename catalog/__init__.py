"""Catalogs, items and images in the store (S3 or a local folder with the same keys).

Entry points: `catalog.stores.open_store(settings)` builds the `Store`;
`CatalogRepository(store)` manages catalogs on it (manifests with versions, images, cached
feature blobs) safely under concurrent writers. Those know nothing of HTTP or models. The
glue to matching sits beside them: `catalog.cache.CatalogCache` (a worker's views of the
catalogs, kept in step with the store) and `catalog.reindex` (describe a catalog again with
the models the service runs now). Nothing here knows about HTTP.
"""
