"""What a run writes: the table, the metrics, the map (PNG, HTML) and contact sheets."""
