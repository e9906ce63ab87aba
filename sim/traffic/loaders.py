"""Read recorded LLM traffic (Azure 2023/2024, BurstGPT, Mooncake, generic tables) into a Workload.

Every format goes through one polars lazy pipeline that yields only numeric columns, so a
16.8M-row week never becomes Python objects; bad rows are located afterwards, from the arrays,
and reported with their line number.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import stat
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from sim.errors import InputError
from sim.traffic import limits
from sim.workload import MOONCAKE_BLOCK_TOKENS, Workload

BUILTIN_PREFIX = "builtin:"
FORMATS = (
    "azure2023",
    "azure2024",
    "burstgpt",
    "mooncake",
    "generic_csv",
    "generic_parquet",
    "generic_jsonl",
)
TIMESTAMP_UNITS = ("s", "ms", "us", "datetime")
_CHUNK_ROWS = 1 << 20

_AZURE_HEADER = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
_BURSTGPT_COLUMNS = {"Timestamp", "Model", "Request tokens", "Response tokens"}
_MOONCAKE_KEYS = {"timestamp", "input_length", "output_length"}
_GENERIC_DEFAULT = {
    "timestamp": "timestamp",
    "prompt_tokens": "prompt_tokens",
    "output_tokens": "output_tokens",
    "timestamp_unit": "s",
}
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_UTC_OFFSET = re.compile(r"[+-]\d\d:?\d\d$")
# A trace row is flat (Mooncake's hash_ids is one list): deeper JSON is refused before parsing,
# as Python's parser would exhaust its recursion limit near depth 1,000.
MAX_JSON_DEPTH = 64
# Dates a trace row may carry: older or later ones are corrupt cells or wrong units.
FIRST_YEAR, LAST_YEAR = 1990, 2099
QUOTE_CHARS = 200  # an error message quotes at most this much of a cell
_SNIFF_BYTES = 1 << 20  # format detection reads at most the first MiB
_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
)
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """repr() of a cell for an error message, cut to `limit` characters of the value."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(value) if isinstance(value, str) else text
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def builtin_traces() -> list[str]:
    """Names usable as `builtin:<name>` (the CSVs shipped in sim/data/traces)."""
    folder = resources.files("sim").joinpath("data/traces")
    return sorted(p.name.removesuffix(".csv") for p in folder.iterdir() if p.name.endswith(".csv"))


def resolve_trace_path(spec: str, base_dir: Path | None = None) -> Path:
    """Turn `builtin:NAME` or a (relative) path into an existing file path."""
    spec = str(spec)
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX) :]
        if name not in builtin_traces():
            raise InputError(
                spec, None, f"unknown builtin trace; available: {', '.join(builtin_traces())}"
            )
        return Path(str(resources.files("sim").joinpath(f"data/traces/{name}.csv")))
    path = Path(spec).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    check_trace_file(path)
    return path


def check_trace_file(path, max_bytes: int | None = None) -> int:
    """The file's size, after refusing what is not a readable, plain, uncompressed trace.

    Looks before opening anything for reading: a FIFO would block, /dev/zero never ends. Files
    over `max_bytes` (default: limits.max_trace_bytes(), 2 GiB) are refused."""
    path = Path(path)
    source = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(source, None, "trace file not found") from None
    except OSError as exc:
        raise InputError(source, None, f"cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(source, None, "is a directory, not a trace file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            source, None, "is not a regular file (a device, FIFO or socket); give a trace file"
        )
    if info.st_size == 0:
        raise InputError(source, None, "cannot read trace: the file is empty")
    if max_bytes is None:
        try:
            max_bytes = limits.max_trace_bytes()
        except ValueError as exc:
            raise InputError(limits.MAX_TRACE_BYTES_ENV, None, str(exc)) from None
    if info.st_size > max_bytes:
        raise InputError(
            source,
            None,
            f"is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for trace files; "
            f"set ${limits.MAX_TRACE_BYTES_ENV} to raise it",
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InputError(source, None, f"cannot read: {exc.strerror or exc}") from None
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            raise InputError(
                source,
                None,
                f"is {name}-compressed; compressed traces are not read: unpack it first",
            )
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise InputError(source, None, f"is {name} text; only UTF-8 is read: convert it first")
    return info.st_size


def _head(path: Path) -> tuple[str, bool]:
    """The first MiB as UTF-8 text, and whether that is the whole file."""
    with open(path, "rb") as fh:
        data = fh.read(_SNIFF_BYTES + 1)
    whole = len(data) <= _SNIFF_BYTES
    data = data[:_SNIFF_BYTES]
    try:
        # final=whole: a character cut at the MiB boundary is not an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, data, exc.start) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError(str(path), None, "contains NUL bytes: not a text trace", line)
    return text, whole


def _not_utf8(path: Path, data: bytes, offset: int, line: int | None = None) -> InputError:
    line = data.count(b"\n", 0, offset) + 1 if line is None else line
    return InputError(
        str(path),
        None,
        f"not UTF-8 text (byte 0x{data[offset]:02x}); only UTF-8 is read: convert it first "
        "(e.g. iconv -f latin1 -t utf-8)",
        line,
    )


def json_line(text: str, source: str, line: int):
    """One JSON value, refused with an InputError when nested deeper than MAX_JSON_DEPTH."""
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        depth = deepest = 0
        for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
            depth += 1 if bracket in "[{" else -1
            deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            raise InputError(
                source, None, f"JSON nested {deepest} levels deep (at most {MAX_JSON_DEPTH})", line
            )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(source, None, f"not valid JSON: {exc.msg}", line) from None
    except RecursionError:  # unreachable after the depth check; kept as the last guard
        raise InputError(source, None, "JSON nested too deep", line) from None


def detect_format(path) -> str:
    """Name the trace format from the file's suffix, header and first row."""
    path = Path(path)
    suffix = path.suffix.lower()
    check_trace_file(path)
    if suffix == ".parquet":
        return "generic_parquet"
    text, whole = _head(path)
    if suffix in _JSONL_SUFFIXES:
        line, newline, _ = text.partition("\n")
        if not newline and not whole:
            raise InputError(str(path), None, "cannot detect trace format: line 1 is over 1 MiB", 1)
        value = json_line(line.strip(), str(path), 1) if line.strip() else {}
        if not isinstance(value, dict):
            raise InputError(
                str(path), None, "cannot detect trace format: line 1 is not a JSON object", 1
            )
        keys = set(value)
        if _MOONCAKE_KEYS <= keys:
            return "mooncake"
        if {"timestamp", "prompt_tokens", "output_tokens"} <= keys:
            return "generic_jsonl"
        raise InputError(
            str(path),
            None,
            f"cannot detect trace format: JSON keys {quote(sorted(keys)[:8])} are neither "
            "Mooncake (timestamp, input_length, output_length) nor generic; pass a format and "
            "columns",
        )
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            rows.append([cell.strip() for cell in row])
            if len(rows) == 2:
                break
    except csv.Error as exc:
        raise InputError(
            str(path), None, f"cannot detect trace format: {exc}", reader.line_num
        ) from None
    header = rows[0] if rows else []
    if header == _AZURE_HEADER:
        first = rows[1][0] if len(rows) > 1 and rows[1] else ""
        # 2024 week traces carry a UTC offset ("+00:00"); 2023 ones are naive.
        return "azure2024" if _UTC_OFFSET.search(first) else "azure2023"
    if _BURSTGPT_COLUMNS <= set(header):
        return "burstgpt"
    if {"timestamp", "prompt_tokens", "output_tokens"} <= set(header):
        return "generic_csv"
    raise InputError(
        str(path),
        None,
        f"cannot detect trace format: header {quote(header[:6])} matches none of Azure 2023/2024 "
        "(TIMESTAMP,ContextTokens,GeneratedTokens), BurstGPT or Mooncake; "
        "pass format='generic_csv' with a column mapping",
    )


@dataclass(frozen=True)
class _Layout:
    """Where a format keeps the three fields, and how its timestamps read."""

    timestamp: str
    prompt: str
    output: str
    unit: str  # "s" | "ms" | "us" | "datetime" | "azure2023" | "azure2024"
    rebase: bool  # subtract the first timestamp (absolute clocks) or keep (already relative)
    kind: str  # "csv" | "jsonl" | "parquet"
    typed: bool = False  # CSV token columns parsed as integers while reading (known formats)
    conversation: str | None = None  # generic formats: a conversation-id column (optional)


def _layout(fmt: str, mapping: dict | None, source: str) -> _Layout:
    if fmt == "azure2023":
        return _Layout(*_AZURE_HEADER, unit="azure2023", rebase=True, kind="csv", typed=True)
    if fmt == "azure2024":
        return _Layout(*_AZURE_HEADER, unit="azure2024", rebase=True, kind="csv", typed=True)
    if fmt == "burstgpt":
        return _Layout("Timestamp", "Request tokens", "Response tokens", "s", False, "csv", True)
    if fmt == "mooncake":
        return _Layout("timestamp", "input_length", "output_length", "ms", False, "jsonl")
    if fmt not in FORMATS:
        raise InputError(source, "format", f"unknown trace format {quote(fmt)}; one of {FORMATS}")
    cols = dict(_GENERIC_DEFAULT)
    allowed = {*_GENERIC_DEFAULT, "conversation"}
    unknown = set(mapping or {}) - allowed
    if unknown:
        raise InputError(
            source,
            "columns",
            f"unknown keys {quote(sorted(map(str, unknown)))}; allowed: {sorted(allowed)}",
        )
    cols.update(mapping or {})
    for key, value in cols.items():
        if not isinstance(value, str) or not value:
            raise InputError(source, f"columns.{key}", f"must be a column name, got {quote(value)}")
    if cols["timestamp_unit"] not in TIMESTAMP_UNITS:
        raise InputError(
            source,
            "columns.timestamp_unit",
            f"{cols['timestamp_unit']!r} is not one of {TIMESTAMP_UNITS}",
        )
    kind = fmt.removeprefix("generic_")
    return _Layout(
        cols["timestamp"], cols["prompt_tokens"], cols["output_tokens"],
        cols["timestamp_unit"], True, kind, conversation=cols.get("conversation"),
    )  # fmt: skip


def _scan(path: Path, layout: _Layout) -> pl.LazyFrame:
    if layout.kind == "csv":
        # A bad cell must become a null we can point at, not a parse abort. Known formats read
        # token columns as integers directly (ignore_errors nulls a bad cell; a ragged line still
        # fails); generic files stay text so " 12 " is still read as 12.
        header = pl.scan_csv(path, infer_schema=False, n_rows=1).collect_schema()
        if layout.typed:
            overrides = {c: pl.Int64 for c in (layout.prompt, layout.output) if c in header}
            schema = {name: overrides.get(name, pl.String) for name in header}
            return pl.scan_csv(path, schema=schema, ignore_errors=True)
        return pl.scan_csv(path, infer_schema=False)
    if layout.kind == "parquet":
        return pl.scan_parquet(path)
    return pl.scan_ndjson(path, infer_schema_length=1000)


def _azure_fast_expr(layout: _Layout) -> pl.Expr:
    """Epoch nanoseconds of Azure's fixed layout `YYYY-MM-DD HH:MM:SS.fffffff[+00:00]`.

    About 2.5x faster than a full strptime: ~28 requests share each whole second in a week
    trace, so the parse cache hits, and the fraction is plain digits. Anything else (another
    offset, no fraction, garbage) comes out null and is re-parsed by the general expression.
    """
    col = pl.col(layout.timestamp)
    whole_ns = (
        col.str.slice(0, 19)
        .str.strptime(pl.Datetime("ns"), "%Y-%m-%d %H:%M:%S", strict=False, cache=True)
        .dt.epoch("ns")
    )
    frac = col.str.slice(20)
    if layout.unit == "azure2024":
        frac = frac.str.strip_suffix("+00:00")
    frac_ns = frac.str.pad_end(9, "0").cast(pl.Int64, strict=False)
    valid = (col.str.slice(19, 1) == ".") & (frac.str.len_bytes() <= 9) & (frac_ns >= 0)
    return pl.when(valid).then(whole_ns + frac_ns).otherwise(None)


def _timestamp_expr(layout: _Layout, dtype) -> pl.Expr:
    col = pl.col(layout.timestamp)
    # Datetimes stay integer nanoseconds until rebased: as float64 seconds since 1970 they
    # would lose everything below ~0.2 microseconds.
    if layout.unit == "azure2023":
        # cache=False: every timestamp is unique, so polars' parse cache only costs (2x here).
        parsed = col.str.strptime(
            pl.Datetime("ns"), "%Y-%m-%d %H:%M:%S%.f", strict=False, cache=False
        )
        return parsed.dt.epoch("ns")
    if layout.unit == "azure2024":
        parsed = col.str.strptime(
            pl.Datetime("ns", "UTC"), "%Y-%m-%d %H:%M:%S%.f%:z", strict=False, cache=False
        )
        return parsed.dt.epoch("ns")
    if layout.unit == "datetime":
        # Microseconds cover years 1 to 9999 without wrapping (nanoseconds stop at 2262); the
        # year is checked before the value is used (_year_expr).
        return _datetime_us(col, dtype).dt.epoch("us") * 1000
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6}[layout.unit]
    return col.cast(pl.Float64, strict=False) * scale


def _datetime_us(col: pl.Expr, dtype) -> pl.Expr:
    if dtype == pl.String:
        return col.str.to_datetime(time_unit="us", strict=False)
    return col.cast(pl.Datetime("us"), strict=False)


def _year_expr(layout: _Layout, dtype) -> pl.Expr | None:
    """Whether a row's date lies outside FIRST_YEAR..LAST_YEAR; None for numeric timestamps."""
    col = pl.col(layout.timestamp)
    if layout.unit.startswith("azure"):
        year = col.str.slice(0, 4).cast(pl.Int32, strict=False)
    elif layout.unit == "datetime":
        year = _datetime_us(col, dtype).dt.year()
    else:
        return None
    return (~year.is_between(FIRST_YEAR, LAST_YEAR)).fill_null(False)


def _int_expr(name: str, dtype) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        return col.str.strip_chars().cast(pl.Int64, strict=False)
    if dtype.is_float():
        # A float that is a whole number is fine (pandas writes ints as floats next to NaNs).
        return pl.when(col == col.round(0)).then(col).otherwise(None).cast(pl.Int64, strict=False)
    return col.cast(pl.Int64, strict=False)


def _location(layout: _Layout, row: int) -> int:
    """File line of data row `row` (0-based): CSV has a header line, JSONL does not."""
    return row + 2 if layout.kind == "csv" else row + 1


def _raw_value(path: Path, layout: _Layout, row: int, column: str) -> str | None:
    """The cell as written in the file, None when empty or absent (for error messages only)."""
    try:
        if layout.kind == "csv":
            frame = pl.scan_csv(path, infer_schema=False).slice(row, 1).collect()
            value = frame[column][0]
        elif layout.kind == "parquet":
            value = pl.scan_parquet(path).slice(row, 1).collect()[column][0]
        else:
            with open(path, encoding="utf-8", errors="replace") as fh:
                line = next(line for i, line in enumerate(fh) if i == row)
            value = json_line(line, str(path), row + 1).get(column)
    except Exception:  # the value only decorates the message; never hide the real error
        return "?"
    return None if value is None or value == "" else str(value)


def _diagnose_text(path: Path, layout: _Layout, original: Exception) -> InputError:
    """polars refused the file as a whole: walk it line by line to name the first bad line."""
    source = str(path)
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(original)
    if layout.kind == "parquet":
        return InputError(source, None, f"not a valid Parquet file: {quote(str(first))}")
    with open(path, "rb") as fh:
        lines = _utf8_lines(path, fh)
        try:
            if layout.kind == "csv":
                reader = csv.reader(lines)
                header = next(reader, [])
                for row in reader:
                    if row and len(row) != len(header):
                        return InputError(
                            source,
                            None,
                            f"expected {len(header)} fields, found {len(row)}",
                            reader.line_num,
                        )
            else:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    obj = json_line(line, source, number)
                    if not isinstance(obj, dict):
                        return InputError(source, None, "not a JSON object", number)
                    for key in (layout.timestamp, layout.prompt, layout.output):
                        value = obj.get(key)
                        if key == layout.timestamp and isinstance(value, int | float):
                            continue
                        if not isinstance(value, int) or isinstance(value, bool):
                            return InputError(
                                source, key, f"not an integer: {quote(value)}", number
                            )
        except InputError as exc:
            return exc
        except csv.Error as exc:
            return InputError(source, None, str(exc), reader.line_num + 1)
    return InputError(source, None, f"cannot read trace: {quote(str(first))}")


def _reraise_interrupts(exc: BaseException) -> None:
    # A damaged Parquet file can make polars' reader panic; pyo3 raises that as a BaseException.
    # Only that is a file error: an interrupt or an exit must stay what it is.
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise exc


def _utf8_lines(path: Path, fh):
    """Lines of a binary file as text, raising InputError at the first line that is not UTF-8."""
    for number, raw in enumerate(fh, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(path, raw, exc.start, number) from None


def load_trace(
    path,
    *,
    format: str | None = None,  # noqa: A002 - the documented keyword
    model: str | None = None,
    mapping: dict | None = None,
    max_bytes: int | None = None,
) -> Workload:
    """Load a trace file into a Workload with arrivals in seconds from the trace start.

    Only plain UTF-8 text (CSV, JSONL) or Parquet files up to `max_bytes` (default 2 GiB, or
    $INFERCOST_MAX_TRACE_BYTES) are read; see check_trace_file.
    model: BurstGPT only, keep rows of this `Model` (e.g. "ChatGPT").
    mapping: generic formats, {"timestamp", "prompt_tokens", "output_tokens", "timestamp_unit"}.
    BurstGPT failed requests (Response tokens = 0) are dropped and counted in
    meta["dropped_failed"], empty prompts in meta["dropped_empty_prompt"]. Mooncake keeps hash_ids in meta["hash_ids"] as (offsets, values).
    """
    path = Path(path)
    source = str(path)
    check_trace_file(path, max_bytes)
    if format in (None, "auto"):
        format = "generic_" + _kind_from_suffix(path) if mapping else detect_format(path)
    if model is not None and format != "burstgpt":
        raise InputError(source, "model", f"a model filter applies to BurstGPT, not {format}")
    layout = _layout(format, mapping, source)
    if layout.kind == "parquet":
        _check_parquet_marks(path)
    lf = _scan(path, layout)
    try:
        schema = lf.collect_schema()
    except BaseException as exc:  # polars' errors, and its Rust panics (BaseException)
        _reraise_interrupts(exc)
        raise _diagnose_text(path, layout, exc) from None
    for col in (layout.timestamp, layout.prompt, layout.output, layout.conversation):
        if col is not None and col not in schema:
            raise InputError(
                source, col, f"missing column; file has {quote(list(schema.names())[:8])}"
            )

    # Row numbers cost 4 bytes a row; only filtered formats need them to name a line.
    filtered = format == "burstgpt"
    if filtered:
        lf = lf.with_row_index("_row")
    meta: dict = {"format": format, "source": source}
    if format == "burstgpt":
        if model is not None and "Model" not in schema:
            raise InputError(source, "Model", "missing column, needed for the model filter")
        if model is not None:
            models = lf.select(pl.col("Model").unique()).collect(engine="streaming")["Model"]
            if model not in models.to_list():
                raise InputError(
                    source,
                    "model",
                    f"no rows for model {quote(model)}; models: {quote(sorted(models.drop_nulls()))}",
                )
            lf = lf.filter(pl.col("Model") == model)
            meta["model"] = model
        response = _int_expr(layout.output, schema[layout.output])
        meta["dropped_failed"] = int(
            lf.select((response == 0).sum()).collect(engine="streaming").item()
        )
        lf = lf.filter((response != 0) | response.is_null())
        # Zero-token prompts occur in logs of API errors; like failed rows they carry no work.
        request = _int_expr(layout.prompt, schema[layout.prompt])
        meta["dropped_empty_prompt"] = int(
            lf.select((request == 0).sum()).collect(engine="streaming").item()
        )
        lf = lf.filter((request != 0) | request.is_null())

    fast = layout.unit.startswith("azure")
    timestamp = (
        _azure_fast_expr(layout) if fast else _timestamp_expr(layout, schema[layout.timestamp])
    )
    columns = [
        *([pl.col("_row")] if filtered else []),
        timestamp.alias("t"),
        _int_expr(layout.prompt, schema[layout.prompt]).alias("p"),
        _int_expr(layout.output, schema[layout.output]).alias("o"),
    ]
    if format == "mooncake" and "hash_ids" in schema:
        columns.append(pl.col("hash_ids").cast(pl.List(pl.Int64), strict=False))
    if layout.conversation is not None:
        columns.append(pl.col(layout.conversation).cast(pl.String).alias("conversation"))
    year_bad = _year_expr(layout, schema[layout.timestamp])
    if year_bad is not None:
        columns.append(year_bad.alias("bad_date"))
    try:
        frame = lf.select(columns).collect(engine="streaming")
        if fast and frame["t"].null_count():
            general = _timestamp_expr(layout, schema[layout.timestamp]).alias("t")
            frame = frame.with_columns(lf.select(general).collect(engine="streaming")["t"])
    except BaseException as exc:  # polars' errors, and its Rust panics (BaseException)
        _reraise_interrupts(exc)
        raise _diagnose_text(path, layout, exc) from None

    if frame.is_empty():
        # Zero requests would only fail later as "no requests left" with the wrong culprit.
        reason = "no requests: the file has no data rows"
        if filtered:
            reason = (
                f"no requests left after dropping {meta['dropped_failed']} failed and "
                f"{meta['dropped_empty_prompt']} empty-prompt rows"
            )
        raise InputError(source, None, reason)
    rows = frame["_row"].to_numpy() if filtered else None
    if not (frame["t"].dtype.is_numeric() or frame["t"].dtype.is_temporal()):
        # e.g. a JSON object where a timestamp belongs: polars keeps it as a struct
        raise InputError(source, layout.timestamp, f"not a timestamp: column of {frame['t'].dtype}")
    for name, col in (("p", layout.prompt), ("o", layout.output)):
        if not frame[name].dtype.is_numeric():  # e.g. JSON objects: a struct column
            raise InputError(source, col, f"not a token count: column of {frame[name].dtype}")
    t = _seconds(frame["t"], layout.rebase)
    bad_date = None
    if "bad_date" in frame.columns:
        if frame["bad_date"].any():
            bad_date = frame["bad_date"].to_numpy()
        frame = frame.drop("bad_date")
    frame = frame.drop("t")
    _check(path, layout, rows, t, frame["p"], frame["o"], bad_date)
    prompt = frame["p"].to_numpy()
    output = frame["o"].to_numpy()
    arrival_s = np.ascontiguousarray(t, dtype=np.float64)
    prompt = np.ascontiguousarray(prompt, dtype=np.int64)
    output = np.ascontiguousarray(output, dtype=np.int64)
    cached = None
    if "hash_ids" in frame.columns:
        ids = frame["hash_ids"].list.drop_nulls()
        lengths = ids.list.len().fill_null(0).to_numpy().astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = ids.explode().drop_nulls().to_numpy().astype(np.int64)
        meta["hash_ids"] = (offsets, values)
        meta["hash_block_tokens"] = MOONCAKE_BLOCK_TOKENS
        cached = prefix_cache_hits(offsets, values, prompt, MOONCAKE_BLOCK_TOKENS)
    if "conversation" in frame.columns:
        cached = _conversation_prefixes(frame["conversation"], prompt, output, meta)
    del frame
    return Workload(
        arrival_s=arrival_s,
        prompt_tokens=prompt,
        output_tokens=output,
        cached_prompt_tokens=cached,
        name=path.name,
        meta=meta,
    )


def _seconds(series: pl.Series, rebase: bool) -> np.ndarray:
    """Timestamps as float64 seconds (NaN where unreadable), from the first one when rebasing."""
    missing = series.is_null().to_numpy() if series.null_count() else None
    # Only the first valid index is needed; np.arange(len) would cost 8 bytes a row.
    valid = np.flatnonzero(~missing) if missing is not None else np.arange(min(len(series), 1))
    if series.dtype == pl.Int64:  # integer nanoseconds
        ns = series.fill_null(0).to_numpy() if missing is not None else series.to_numpy()
        base = int(ns[valid[0]]) if rebase and len(valid) else 0
        t = np.empty(len(ns), dtype=np.float64)
        # In slices, so the int64 difference never needs a second full-length array.
        for lo in range(0, len(ns), _CHUNK_ROWS):
            t[lo : lo + _CHUNK_ROWS] = (ns[lo : lo + _CHUNK_ROWS] - base) / 1e9
    else:
        t = series.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64, copy=True)
        if rebase and len(valid):
            with np.errstate(invalid="ignore"):  # inf - inf: NaN, reported as that row's error
                t -= t[valid[0]]
    if missing is not None:
        t[missing] = np.nan
    return t


def _check_parquet_marks(path: Path) -> None:
    """A Parquet file starts and ends with PAR1; a cut download lacks the end."""
    with open(path, "rb") as fh:
        start = fh.read(4)
        fh.seek(max(os.fstat(fh.fileno()).st_size - 4, 4))
        end = fh.read(4)
    if start != b"PAR1" or end != b"PAR1":
        where = "start" if start != b"PAR1" else "end (truncated?)"
        raise InputError(
            str(path), None, f"not a valid Parquet file: no PAR1 marker at its {where}"
        )


def _kind_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    return "jsonl" if suffix in _JSONL_SUFFIXES else "csv"


def _check(path, layout, rows, t, p_series, o_series, bad_date=None) -> None:
    """Raise for the earliest bad row: unreadable field, date out of range, span over ten years,
    token counts out of range, time going back."""
    source = str(path)
    problems: list[tuple[int, str, str]] = []  # (row position, field, reason); ties: list order

    def first(mask: np.ndarray) -> int | None:
        hits = np.flatnonzero(mask)
        return int(hits[0]) if len(hits) else None

    def row(i: int) -> int:
        return int(rows[i]) if rows is not None else i

    def raw(i: int, column: str) -> str | None:
        return _raw_value(path, layout, row(i), column)

    if (i := first(np.isnan(t))) is not None:
        value = raw(i, layout.timestamp)
        reason = "missing value" if value is None else f"not a valid timestamp: {quote(value)}"
        problems.append((i, layout.timestamp, reason))
    if bad_date is not None and (i := first(bad_date)) is not None:
        reason = f"date {quote(raw(i, layout.timestamp))} is outside {FIRST_YEAR}-{LAST_YEAR}"
        problems.append((i, layout.timestamp, reason))
    with np.errstate(invalid="ignore"):
        too_far = t > limits.MAX_SPAN_S  # NaN compares False; +inf is caught here
    if (i := first(too_far)) is not None:
        origin = "the first row" if layout.rebase else "the trace start"
        if np.isfinite(t[i]):
            reason = f"{t[i]:.4g} s after {origin}: traces may span at most 10 years"
        else:
            reason = f"timestamp is not finite: {quote(raw(i, layout.timestamp))}"
        problems.append((i, layout.timestamp, reason))
    top = limits.MAX_TOKENS_PER_REQUEST
    # Outputs may be 0: prefill-only requests (benchmarks, embeddings) generate nothing.
    for series, col, low in ((p_series, layout.prompt, 1), (o_series, layout.output, 0)):
        if series.null_count():
            i = first(series.is_null().to_numpy())
            value = raw(i, col)
            reason = "missing value" if value is None else f"not an integer: {quote(value)}"
            problems.append((i, col, reason))
        # Nulls are already reported above; fill them so comparisons stay vectorised.
        filled = series.fill_null(1).to_numpy() if series.null_count() else series.to_numpy()
        if (i := first((filled < low) | (filled > top))) is not None:
            problems.append((i, col, f"tokens must be {low} to {top:,}, got {int(filled[i])}"))
    finite = np.where(np.isnan(t), np.inf, t) if problems else t
    with np.errstate(invalid="ignore"):
        backwards = np.diff(finite) < 0 if len(t) > 1 else np.zeros(0, bool)
    if (i := first(backwards)) is not None:
        problems.append((i + 1, layout.timestamp, "time goes backwards (rows must be sorted)"))
    if not layout.rebase and len(t) and (i := first(t < 0)) is not None:
        problems.append((i, layout.timestamp, f"negative timestamp {t[i]}"))
    if problems:
        i, field, reason = min(problems, key=lambda item: item[0])
        line = _location(layout, row(i))
        if layout.kind == "parquet":
            raise InputError(source, field, f"row {row(i) + 1}: {reason}")
        raise InputError(source, field, reason, line)


def _conversation_prefixes(conversation: pl.Series, prompt, output, meta: dict) -> np.ndarray:
    """Prefix identity from a conversation column: each row extends its conversation's previous
    prompt + output (sim/traffic/conversations.py); a row with no id is a conversation of its
    own. Block ids go to meta; returns the shared infinite-cache count of cached tokens."""
    from sim.traffic.conversations import CONVERSATION_BLOCK_TOKENS, conversation_hash_ids

    codes = conversation.cast(pl.Categorical).to_physical().cast(pl.Int64)
    ids = codes.fill_null(-1).to_numpy().astype(np.int64, copy=True)
    missing = ids < 0
    ids[missing] = -1 - np.flatnonzero(missing)  # unique per row
    offsets, values = conversation_hash_ids(ids, prompt, output, CONVERSATION_BLOCK_TOKENS)
    meta["hash_ids"] = (offsets, values)
    meta["hash_block_tokens"] = CONVERSATION_BLOCK_TOKENS
    return prefix_cache_hits(offsets, values, prompt, CONVERSATION_BLOCK_TOKENS)


def prefix_cache_hits(
    offsets: np.ndarray, values: np.ndarray, prompt_tokens: np.ndarray, block_tokens: int
) -> np.ndarray:
    """Prompt tokens served from a prefix cache, from per-request block hash ids.

    Model: an unlimited cache that keeps every block ever seen, in arrival order. A request hits
    the longest leading run of its blocks already seen (a block id stands for the whole prefix up
    to it). The last prompt token is always recomputed, as vLLM does, so hits < prompt_tokens.
    """
    seen: set[int] = set()
    cached = np.zeros(len(prompt_tokens), dtype=np.int64)
    for i in range(len(prompt_tokens)):
        block_ids = values[offsets[i] : offsets[i + 1]].tolist()
        hits = 0
        for block in block_ids:
            if block not in seen:
                break
            hits += 1
        seen.update(block_ids)
        cached[i] = min(hits * block_tokens, int(prompt_tokens[i]) - 1)
    return np.maximum(cached, 0)
