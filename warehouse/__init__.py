"""DuckDB price warehouse: the only place that writes SQL."""

from warehouse.db import RunResult, Warehouse, open_warehouse, parse_as_of
from warehouse.errors import ReadOnlySQLError, WarehouseError, WarehouseLockedError
from warehouse.records import KINDS, TERMS, UNITS, PriceRecord, RawCapture

__all__ = [
    "KINDS",
    "TERMS",
    "UNITS",
    "PriceRecord",
    "RawCapture",
    "ReadOnlySQLError",
    "RunResult",
    "Warehouse",
    "WarehouseError",
    "WarehouseLockedError",
    "open_warehouse",
    "parse_as_of",
]
