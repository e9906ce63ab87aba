"""Per-request output as a choice, written as a run goes: `requests = "all" | "sample:N" | "none"`.

    writer = RequestRowWriter(path, "sample:100000", seed=seed)
    writer.add(replication, fleet, batch)         # any number of times, batches of settled requests
    writer.close({(replication, fleet): rates})   # each fleet's CostRates, known at its end

"all" writes every request, one Parquet row group per `row_group_rows` rows, into a side file as
batches arrive, and at `close` copies it row group by row group into `path` adding each request's
cost share (the share needs the whole run's window costs); memory stays at one row group.
"sample:N" keeps a uniform random sample of N requests per fleet and replication (the N smallest
of a seeded random key per request: the same sample whatever the batching), written at `close`.
"none" writes nothing. The mode is stated in the file's metadata (`infercost.requests`).
Compact dtypes: int32 indices and token counts, int16 attempts, int8 codes, float64 times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.engine.result import STATUS_NAMES
from sim.engine.stream import CostRates, RequestBatch

DEFAULT_REQUESTS = "sample:100000"

SCHEMA = pa.schema(
    [
        ("replication", pa.int32()),
        ("fleet", pa.dictionary(pa.int32(), pa.string())),
        ("request", pa.int64()),
        ("arrival_s", pa.float64()),
        ("start_s", pa.float64()),
        ("first_token_s", pa.float64()),
        ("finish_s", pa.float64()),
        ("prompt_tokens", pa.int32()),
        ("output_tokens", pa.int32()),
        ("status", pa.dictionary(pa.int8(), pa.string())),
        ("attempts", pa.int16()),
        ("served_by", pa.int8()),
        ("cost_usd", pa.float64()),
    ]
)
_STATUS_VALUES = pa.array([STATUS_NAMES[k] for k in sorted(STATUS_NAMES)])


def parse_requests_option(value: str) -> tuple[str, int | None]:
    """ "all" | "none" | "sample:N" (N >= 1) -> (mode, N)."""
    text = str(value).strip()
    if text in ("all", "none"):
        return text, None
    if text.startswith("sample:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n >= 1:
            return "sample", n
    raise ValueError(f"requests: must be 'all', 'none' or 'sample:N' with N >= 1, got {value!r}")


def rows_metadata(mode: str, n: int | None, seed: int) -> dict[bytes, bytes]:
    """The Parquet metadata stating which request rows a file holds (`infercost.requests`)."""
    text = {
        "all": "all requests",
        "none": "none",
        "sample": f"sample:{n} (uniform, per fleet and replication, seed {seed})",
    }[mode]
    return {b"infercost.requests": text.encode()}


def _table(replication: int, fleet: str, b: RequestBatch, cost: np.ndarray | None) -> pa.Table:
    """`b`'s rows; cost_usd: a request's own price where the batch has it, else `cost`."""
    n = len(b)
    if b.cost_usd is not None:
        own = np.asarray(b.cost_usd, dtype=np.float64)
        cost = np.where(np.isnan(own), np.nan if cost is None else cost, own)
    served = b.served_by if b.served_by is not None else np.zeros(n, dtype=np.int8)
    return pa.table(
        {
            "replication": pa.array(np.full(n, replication, dtype=np.int32)),
            "fleet": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array([fleet])
            ),
            "request": pa.array(b.request.astype(np.int64)),
            "arrival_s": pa.array(b.arrival_s.astype(np.float64)),
            "start_s": pa.array(b.start_s.astype(np.float64)),
            "first_token_s": pa.array(b.first_token_s.astype(np.float64)),
            "finish_s": pa.array(b.finish_s.astype(np.float64)),
            "prompt_tokens": pa.array(b.prompt_tokens.astype(np.int32)),
            "output_tokens": pa.array(b.output_tokens.astype(np.int32)),
            "status": pa.DictionaryArray.from_arrays(
                pa.array(b.status.astype(np.int8)), _STATUS_VALUES
            ),
            "attempts": pa.array(b.attempts.astype(np.int16)),
            "served_by": pa.array(np.asarray(served, dtype=np.int8)),
            "cost_usd": pa.array(np.full(n, np.nan) if cost is None else cost),
        },
        schema=SCHEMA,
    )


class RequestRowWriter:
    def __init__(
        self,
        path: Path | str,
        requests: str = DEFAULT_REQUESTS,
        *,
        seed: int = 0,
        row_group_rows: int = 1 << 20,
    ):
        self.path = Path(path)
        self.mode, self.sample_n = parse_requests_option(requests)
        self.requests = requests
        self.seed = seed
        self.row_group_rows = row_group_rows
        self._side = self.path.with_name(self.path.name + ".partial")
        self._writer: pq.ParquetWriter | None = None
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        # sample mode: per (replication, fleet), the kept batch and its random keys
        self._kept: dict[tuple[int, str], tuple[RequestBatch, np.ndarray]] = {}
        self.rows_seen = 0

    def _metadata(self) -> dict[bytes, bytes]:
        return rows_metadata(self.mode, self.sample_n, self.seed)

    def add(self, replication: int, fleet: str, b: RequestBatch) -> None:
        n = len(b)
        self.rows_seen += n
        if n == 0 or self.mode == "none":
            return
        if self.mode == "all":
            self._buffer.append(_table(replication, fleet, b, None))
            self._buffered += n
            if self._buffered >= self.row_group_rows:
                self._flush()
            return
        # A key per request from its own (seed, replication, fleet, request) stream position:
        # the same request gets the same key however the requests are batched.
        keys = _request_keys(self.seed, replication, fleet, b.request)
        kept = self._kept.get((replication, fleet))
        if kept is not None:
            b = _concat(kept[0], b)
            keys = np.concatenate([kept[1], keys])
        if len(keys) > self.sample_n:
            idx = np.argpartition(keys, self.sample_n - 1)[: self.sample_n]
            b, keys = b.take(idx), keys[idx]
        self._kept[(replication, fleet)] = (b, keys)

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._buffered = [], 0
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._side, SCHEMA)
        self._writer.write_table(table, row_group_size=self.row_group_rows)

    def close(self, costs: dict[tuple[int, str], CostRates] | None = None) -> Path | None:
        """Write `path` (None in mode "none"). `costs` fills cost_usd (NaN where missing)."""
        costs = costs or {}
        if self.mode == "none":
            return None
        out = pq.ParquetWriter(self.path, SCHEMA.with_metadata(self._metadata()))
        try:
            if self.mode == "sample":
                for (rep, fleet), (b, _) in sorted(self._kept.items(), key=lambda kv: kv[0]):
                    b = b.take(np.argsort(b.request, kind="stable"))
                    rates = costs.get((rep, fleet))
                    cost = rates.request_cost(b) if rates is not None else None
                    out.write_table(_table(rep, fleet, b, cost))
            else:
                self._flush()
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
                    side = pq.ParquetFile(self._side)
                    for k in range(side.num_row_groups):
                        out.write_table(_with_cost(side.read_row_group(k), costs))
                    self._side.unlink()
        finally:
            out.close()
        return self.path


def _with_cost(table: pa.Table, costs: dict) -> pa.Table:
    """Fill the rows' cost_usd still NaN (requests without a price of their own)."""
    own = table["cost_usd"].to_numpy(zero_copy_only=False)
    cost = np.full(table.num_rows, np.nan)
    reps = table["replication"].to_numpy()
    fleets = table["fleet"].cast(pa.string()).to_numpy(zero_copy_only=False)
    status = table["status"].combine_chunks().indices.to_numpy()
    for (rep, fleet), rates in costs.items():
        sel = np.flatnonzero((reps == rep) & (fleets == fleet))
        if not len(sel):
            continue
        col = {c: table[c].to_numpy() for c in ("prompt_tokens", "output_tokens", "finish_s")}
        b = RequestBatch(
            request=sel,
            arrival_s=col["finish_s"][sel],
            start_s=col["finish_s"][sel],
            first_token_s=col["finish_s"][sel],
            finish_s=col["finish_s"][sel],
            end_s=col["finish_s"][sel],  # only completed requests pay, and for them end = finish
            prompt_tokens=col["prompt_tokens"][sel],
            output_tokens=col["output_tokens"][sel],
            status=status[sel],
            attempts=np.zeros(len(sel), dtype=np.int16),
        )
        cost[sel] = rates.request_cost(b)
    cost = np.where(np.isnan(own), cost, own)
    return table.set_column(table.schema.get_field_index("cost_usd"), "cost_usd", pa.array(cost))


def request_sample(df, n: int, *, seed: int):
    """Rows of a requests frame (columns replication, fleet, request, ...) kept by "sample:N":
    per fleet and replication the `n` requests with the smallest keys, the sample a
    `RequestRowWriter` keeps from the same requests, in request order."""
    import polars as pl

    parts = []
    for (rep, fleet), part in df.group_by(["replication", "fleet"], maintain_order=True):
        if part.height > n:
            keys = _request_keys(seed, int(rep), str(fleet), part["request"].to_numpy())
            keep = np.sort(np.argpartition(keys, n - 1)[:n])
            part = part[keep]
        parts.append(part)
    return pl.concat(parts) if parts else df


def _concat(a: RequestBatch, b: RequestBatch) -> RequestBatch:
    fields = {}
    for k, v in a.__dict__.items():
        w = b.__dict__[k]
        if v is None and w is None:
            fields[k] = None
        elif k in _FILL and (v is None or w is None):  # one batch lacks the optional column
            v = np.full(len(a), _FILL[k]) if v is None else v
            w = np.full(len(b), _FILL[k]) if w is None else w
            fields[k] = np.concatenate([v.astype(w.dtype), w])
        else:
            fields[k] = None if v is None or w is None else np.concatenate([v, w])
    return RequestBatch(**fields)


# Optional RequestBatch columns and what a batch without them means: served by the fleet itself,
# no price of its own.
_FILL = {"served_by": 0, "cost_usd": np.nan}


def _request_keys(seed: int, replication: int, fleet: str, request: np.ndarray) -> np.ndarray:
    """A uniform pseudo-random 64-bit key per request, a pure function of its identity (splitmix64
    of seed, replication, fleet and request index)."""
    salt = np.uint64(
        (seed * 1_000_003 + replication * 7919 + sum(map(ord, fleet)) * 104_729) % 2**63
    )
    with np.errstate(over="ignore"):
        z = request.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + salt
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
