"""Turn query results into text for people (rich tables) and for programs (CSV, JSON).

Decimals print exactly and without padding zeros: 2.500000000000 shows as 2.5.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal

import polars as pl

FORMATS = ("table", "csv", "json")


def format_value(value: object) -> str:
    """One cell as text: '' for NULL, exact plain decimals, ISO timestamps."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return _plain_decimal(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _plain_decimal(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _json_value(value: object) -> str:
    if isinstance(value, Decimal):
        # A JSON number written from the exact decimal, so 0.15 never becomes 0.15000000000000002.
        return _plain_decimal(value)
    if isinstance(value, datetime | date):
        return json.dumps(value.isoformat())
    if isinstance(value, float) and value != value:
        return "null"
    return json.dumps(value, default=str)


def to_json(df: pl.DataFrame) -> str:
    """A JSON array with one object per row, keys in column order."""
    rows = []
    for row in df.iter_rows():
        pairs = (
            f"{json.dumps(name)}: {_json_value(v)}" for name, v in zip(df.columns, row, strict=True)
        )
        rows.append("{" + ", ".join(pairs) + "}")
    if not rows:
        return "[]"
    return "[\n  " + ",\n  ".join(rows) + "\n]"


def to_csv(df: pl.DataFrame) -> str:
    """CSV with a header row; NULL is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(df.columns)
    for row in df.iter_rows():
        writer.writerow([format_value(v) for v in row])
    return buffer.getvalue().rstrip("\n")


def to_table(df: pl.DataFrame, *, title: str | None = None, width: int | None = None) -> str:
    """A rich table as plain text (no colour codes), wide enough to not wrap short cells."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_edge=False, header_style="bold")
    numeric = {
        name
        for name, dtype in zip(df.columns, df.dtypes, strict=True)
        if dtype.is_numeric() or isinstance(dtype, pl.Decimal)
    }
    for name in df.columns:
        table.add_column(name, justify="right" if name in numeric else "left", no_wrap=True)
    for row in df.iter_rows():
        table.add_row(*(format_value(v) for v in row))
    console = Console(
        file=io.StringIO(), width=width or 4000, color_system=None, force_terminal=False
    )
    console.print(table)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    lines.append(f"({df.height} row{'s' if df.height != 1 else ''})")
    return "\n".join(lines)


def render(df: pl.DataFrame, fmt: str, *, title: str | None = None) -> str:
    """`df` in one of FORMATS."""
    if fmt == "csv":
        return to_csv(df)
    if fmt == "json":
        return to_json(df)
    if fmt == "table":
        return to_table(df, title=title)
    raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
