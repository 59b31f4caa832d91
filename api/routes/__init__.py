"""One blueprint per resource: health, catalogs, items, matching (detect and search)."""
