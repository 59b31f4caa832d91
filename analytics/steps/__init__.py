"""The analytics steps: scale, reduce, cluster, outliers, map, pairs, metrics."""
