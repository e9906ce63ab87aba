"""DuckDB price warehouse: the only place that writes SQL."""
