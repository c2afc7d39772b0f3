"""The dg defs folder: component instances declared in YAML (recipes under ``recipes/<name>/``)."""
