"""Integrity rules over every stored price period, run at each ingest and by `sim prices check`.

Each rule yields findings with a level. An `error` finding quarantines the period it names: the
row stays stored and visible (`quarantined = true` in the views) but the query API never offers
it as a cost. The rules and their bounds are documented in docs/pricing.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

import polars as pl

LEVELS = ("error", "warning", "info")

# Terms that must never cost more than on-demand for the same SKU, region and unit.
INTERRUPTIBLE_TERMS = ("spot", "low_priority")
COMMITTED_TERMS = (
    "reserved_1y",
    "reserved_3y",
    "savings_plan_1y",
    "savings_plan_3y",
    "commitment_1y",
    "commitment_3y",
)

# USD per GPU-hour a real offer can carry, by GPU class. Wide on purpose: they catch unit
# mix-ups (per instance vs per GPU, per hour vs per month) and placeholders, not dear regions.
# The highest list prices seen in the recorded catalogs (2025-2026) sit well inside: Azure
# ND128isr GB200 v6 in brazilsouth $54.08/GPU-h, ND96isr H100 v5 southafricanorth $21.08,
# GCP V100 $3.97, Vast's RTX 3060 $0.0675 at the bottom.
# B300 (AWS p6-b300.48xlarge, 142.42 USD/h for 8 in us-west-2, vantage export 2026-01-21) and
# the AWS accelerators (trn1/trn2/inf2) joined with the AWS coverage.
_FLAGSHIP = ("GB300", "B300", "GB200", "B200", "H200", "GH200", "H100-SXM", "H100-PCIe", "H100-NVL",
             "MI325X", "MI300X")  # fmt: skip
_DATACENTER = ("A100-80GB", "A100-40GB", "L40S", "L40", "A40", "A6000", "RTX-6000-Ada",
               "RTX-PRO-6000", "V100", "A10G", "A10", "L4", "A30", "Trainium2", "Trainium",
               "Inferentia2")  # fmt: skip
GPU_HOUR_BOUNDS_USD: dict[str, tuple[Decimal, Decimal]] = {
    **{gpu: (Decimal("0.50"), Decimal(80)) for gpu in _FLAGSHIP},
    **{gpu: (Decimal("0.05"), Decimal(30)) for gpu in _DATACENTER},
}
OTHER_GPU_HOUR_BOUNDS_USD = (Decimal("0.01"), Decimal(10))  # consumer and older boards
MAX_CHANGE_RATIO = Decimal(3)  # between two consecutive periods of one key
MAX_SOURCE_SPREAD = Decimal("1.25")  # same API model, two sources

KEEP_SUPERSEDED_DAYS = 90

_KEY = ("source", "kind", "provider", "sku", "region", "term", "unit", "tier_min_tokens")


@dataclass(frozen=True)
class Finding:
    """One broken rule about one stored period (named by its natural key and `valid_from`)."""

    rule: str
    level: str
    source: str
    kind: str
    provider: str
    sku: str
    region: str
    term: str
    unit: str
    tier_min_tokens: int
    valid_from: datetime
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def gpu_hour_bounds(gpu_model: str) -> tuple[Decimal, Decimal]:
    return GPU_HOUR_BOUNDS_USD.get(gpu_model, OTHER_GPU_HOUR_BOUNDS_USD)


def _finding(rule: str, level: str, row: dict, message: str) -> Finding:
    return Finding(rule, level, *(row[c] for c in _KEY), row["valid_from"], message)


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


_COLS = ", ".join(_KEY) + ", valid_from"
_PAIR_COLS = ", ".join(f"{side}.{c} AS {side}_{c}" for side in ("a", "b") for c in _KEY)


def _term_pairs(con) -> list[Finding]:
    """Spot and committed prices above the on-demand price of the same SKU in overlapping periods."""
    cheaper = INTERRUPTIBLE_TERMS + COMMITTED_TERMS
    marks = ", ".join("?" for _ in cheaper)
    pairs = _rows(
        con,
        f"""SELECT {_PAIR_COLS}, a.valid_from AS a_valid_from, b.valid_from AS b_valid_from,
                   a.price AS a_price, b.price AS b_price
            FROM price_periods a JOIN price_periods b
              ON a.source = b.source AND a.kind = b.kind AND a.provider = b.provider
             AND a.sku = b.sku AND a.region = b.region AND a.unit = b.unit
             AND a.tier_min_tokens = b.tier_min_tokens AND a.currency = b.currency
            WHERE a.term = 'on_demand' AND b.term IN ({marks}) AND b.price > a.price
              AND a.valid_from < coalesce(b.valid_to, 'infinity'::TIMESTAMP)
              AND b.valid_from < coalesce(a.valid_to, 'infinity'::TIMESTAMP)""",
        list(cheaper),
    )
    findings = []
    for p in pairs:
        on_demand = {c: p[f"a_{c}"] for c in (*_KEY, "valid_from")}
        other = {c: p[f"b_{c}"] for c in (*_KEY, "valid_from")}
        rule = (
            "spot_above_on_demand"
            if other["term"] in INTERRUPTIBLE_TERMS
            else ("committed_above_on_demand")
        )
        message = (
            f"{other['term']} {p['b_price']} is above on_demand {p['a_price']} for "
            f"{other['provider']} {other['sku']} {other['region'] or '(global)'}; "
            "one of the two is wrong, so neither is used"
        )
        # Which of the two is wrong cannot be known from the pair: both are held back.
        findings.append(_finding(rule, "error", other, message))
        findings.append(_finding(rule, "error", on_demand, message))
    return findings


def _free(con) -> list[Finding]:
    rows = _rows(con, f"SELECT {_COLS} FROM price_periods WHERE price <= 0")
    return [
        _finding(
            "free_price",
            "warning",
            r,
            f"{r['provider']} {r['sku']} {r['unit']} is priced 0 (a free tier): never used as a "
            "cost unless the scenario sets allow_free = true",
        )
        for r in rows
    ]


def _gpu_bounds(con) -> list[Finding]:
    rows = _rows(
        con,
        f"""SELECT {_COLS}, gpu_model, price,
                   CASE WHEN unit = 'usd_per_gpu_hour' THEN price
                        WHEN unit = 'usd_per_hour' THEN price / gpu_count
                        WHEN unit = 'usd_per_second' THEN price * 3600 / gpu_count END
                       AS per_gpu_hour
            FROM price_periods
            WHERE kind IN ('gpu_instance', 'gpu_serverless') AND currency = 'USD'
              AND gpu_model IS NOT NULL AND gpu_count > 0 AND price > 0""",
    )
    findings = []
    for r in rows:
        if r["per_gpu_hour"] is None:
            continue
        low, high = gpu_hour_bounds(r["gpu_model"])
        value = Decimal(r["per_gpu_hour"])
        if not low <= value <= high:
            findings.append(
                _finding(
                    "gpu_hour_bounds",
                    "error",
                    r,
                    f"{r['gpu_model']} at {value:.4f} USD per GPU-hour is outside "
                    f"{low}-{high} (a unit or GPU-count mix-up?)",
                )
            )
    return findings


def _jumps(con) -> list[Finding]:
    """Consecutive periods of one key whose prices differ more than MAX_CHANGE_RATIO times."""
    match = " AND ".join(f"a.{c} = b.{c}" for c in _KEY)
    rows = _rows(
        con,
        f"""SELECT {", ".join("b." + c for c in _KEY)}, b.valid_from, a.price AS before,
                   b.price AS after
            FROM price_periods a JOIN price_periods b ON {match} AND b.valid_from = a.valid_to
            WHERE a.price > 0 AND b.price > 0
              AND (b.price > ? * a.price OR a.price > ? * b.price)""",
        [MAX_CHANGE_RATIO, MAX_CHANGE_RATIO],
    )
    return [
        _finding(
            "price_jump",
            "warning",
            r,
            f"{r['provider']} {r['sku']} {r['term']} went from {r['before']} to {r['after']} "
            f"({r['unit']}): more than {MAX_CHANGE_RATIO}x in one step",
        )
        for r in rows
    ]


def _source_spread(con) -> list[Finding]:
    """Current API prices of one provider and model from two sources more than 25% apart."""
    rows = _rows(
        con,
        f"""SELECT {_COLS}, price FROM price_periods
            WHERE kind = 'api_token' AND valid_to IS NULL AND price > 0 AND currency = 'USD'
              AND term = 'on_demand' AND tier_min_tokens = 0
              AND unit IN ('usd_per_mtok_input', 'usd_per_mtok_output')""",
    )
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["provider"], r["sku"], r["region"], r["unit"]), []).append(r)
    findings = []
    for (provider, sku, _region, unit), group in groups.items():
        if len({r["source"] for r in group}) < 2:
            continue
        low = min(group, key=lambda r: r["price"])
        high = max(group, key=lambda r: r["price"])
        if high["price"] > MAX_SOURCE_SPREAD * low["price"]:
            message = (
                f"{provider} {sku} {unit}: {high['source']} says {high['price']}, "
                f"{low['source']} says {low['price']} (more than 25% apart)"
            )
            for r in group:
                findings.append(_finding("sources_disagree", "warning", r, message))
    return findings


def _unknown_gpus(con) -> list[Finding]:
    rows = _rows(
        con,
        f"""SELECT {_COLS}, gpu_name_source FROM price_periods
            WHERE kind IN ('gpu_instance', 'gpu_serverless') AND gpu_model IS NULL""",
    )
    return [
        _finding(
            "unknown_gpu",
            "warning",
            r,
            f"GPU name {r['gpu_name_source']!r} of {r['provider']} {r['sku']} maps to no "
            "canonical GPU (add it to scrapers/gpu_names.py)",
        )
        for r in rows
    ]


RULES = (_term_pairs, _free, _gpu_bounds, _jumps, _source_spread, _unknown_gpus)


def run_checks(con) -> list[Finding]:
    """Every finding over the stored periods, errors first, in a stable order."""
    findings = [f for rule in RULES for f in rule(con)]
    unique = {(f.rule, *(getattr(f, c) for c in _KEY), f.valid_from): f for f in findings}
    return sorted(
        unique.values(),
        key=lambda f: (LEVELS.index(f.level), f.rule, f.source, f.provider, f.sku, f.region,
                       f.term, f.unit, f.tier_min_tokens, f.valid_from),
    )  # fmt: skip


def store_checks(con, run_id: int | None, checked_at: datetime) -> list[Finding]:
    """Run the checks and make their findings the current ones (the previous set is kept)."""
    findings = run_checks(con)
    con.execute("UPDATE price_checks SET current = false WHERE current")
    # Superseded findings are history worth a while, not forever: every run re-checks everything.
    con.execute(
        "DELETE FROM price_checks WHERE NOT current AND checked_at < ? - to_days(?::INTEGER)",
        [checked_at, KEEP_SUPERSEDED_DAYS],
    )
    if findings:
        frame = pl.DataFrame(
            [f.as_dict() for f in findings],
            schema_overrides={"valid_from": pl.Datetime("us"), "tier_min_tokens": pl.Int64},
        )
        con.register("findings_arrow", frame.to_arrow())
        try:
            con.execute(
                "INSERT INTO price_checks (run_id, checked_at, current, rule, level, source, "
                "kind, provider, sku, region, term, unit, tier_min_tokens, valid_from, message) "
                "SELECT ?, ?, true, rule, level, source, kind, provider, sku, region, term, unit, "
                "tier_min_tokens, valid_from, message FROM findings_arrow",
                [run_id, checked_at],
            )
        finally:
            con.unregister("findings_arrow")
    return findings
