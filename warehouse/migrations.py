"""The warehouse schema as an ordered list of named migrations.

Each migration runs once, in its own transaction, and is recorded in `schema_migrations`. Never
edit a migration that has shipped: append a new one.
"""

from __future__ import annotations

# Money is DECIMAL(24,12): 12 integer digits cover a GPU server's purchase price, 12 fractional
# digits keep a per-token price converted to per-Mtok exact. Timestamps are naive UTC.
_CORE = """
CREATE SEQUENCE scrape_run_id START 1;
CREATE TABLE scrape_runs (
    run_id BIGINT PRIMARY KEY DEFAULT nextval('scrape_run_id'),
    source VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    observed_at TIMESTAMP,
    status VARCHAR NOT NULL CHECK (status IN ('ok', 'failed', 'rejected')),
    rows_seen INTEGER NOT NULL DEFAULT 0,
    rows_changed INTEGER NOT NULL DEFAULT 0,
    error VARCHAR
);
CREATE TABLE capture_bodies (
    sha256 VARCHAR PRIMARY KEY,
    size_bytes BIGINT NOT NULL,
    body_gzip BLOB NOT NULL
);
CREATE SEQUENCE capture_id START 1;
CREATE TABLE raw_captures (
    capture_id BIGINT PRIMARY KEY DEFAULT nextval('capture_id'),
    run_id BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    fetched_at TIMESTAMP NOT NULL,
    http_status INTEGER NOT NULL,
    content_type VARCHAR,
    sha256 VARCHAR NOT NULL
);
CREATE TABLE price_periods (
    source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    provider VARCHAR NOT NULL,
    sku VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    term VARCHAR NOT NULL,
    unit VARCHAR NOT NULL,
    tier_min_tokens BIGINT NOT NULL,
    currency VARCHAR NOT NULL,
    price DECIMAL(24, 12) NOT NULL,
    gpu_model VARCHAR,
    gpu_name_source VARCHAR,
    gpu_count DOUBLE,
    gpu_memory_gb DOUBLE,
    vcpus DOUBLE,
    ram_gb DOUBLE,
    context_length BIGINT,
    valid_from TIMESTAMP NOT NULL,
    valid_to TIMESTAMP,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    first_run_id BIGINT NOT NULL,
    last_run_id BIGINT NOT NULL,
    dated BOOLEAN NOT NULL
);
"""

# The user-facing objects. `{src}` is filled in by `_price_views` below with a constant relation
# (never user input) so the current and as-of variants share one definition.
_GPU_OFFERS = """
SELECT source, provider, sku, region, term, gpu_model, gpu_name_source, gpu_count, gpu_memory_gb,
       vcpus, ram_gb, kind, unit, currency, price,
       CASE WHEN currency <> 'USD' THEN NULL
            WHEN unit = 'usd_per_hour' THEN price
            WHEN unit = 'usd_per_second' THEN price * 3600
            WHEN unit = 'usd_per_gpu_hour' THEN price * gpu_count
       END::DOUBLE AS usd_per_hour,
       CASE WHEN currency <> 'USD' THEN NULL
            WHEN unit = 'usd_per_gpu_hour' THEN price
            WHEN unit = 'usd_per_hour' AND gpu_count > 0 THEN price / gpu_count
            WHEN unit = 'usd_per_second' AND gpu_count > 0 THEN price * 3600 / gpu_count
       END::DOUBLE AS usd_per_gpu_hour,
       valid_from, valid_to, last_seen
FROM {src}
WHERE kind IN ('gpu_instance', 'gpu_serverless')
"""

_API_PRICES = """
SELECT source, provider, sku AS model, region, currency,
       max(price) FILTER (WHERE unit = 'usd_per_mtok_input') AS input_per_mtok,
       max(price) FILTER (WHERE unit = 'usd_per_mtok_output') AS output_per_mtok,
       max(price) FILTER (WHERE unit = 'usd_per_mtok_cached_input') AS cached_input_per_mtok,
       max(price) FILTER (WHERE unit = 'usd_per_mtok_cache_write') AS cache_write_per_mtok,
       max(context_length) AS context_length,
       max(valid_from) AS valid_from,
       max(last_seen) AS last_seen
FROM {src}
WHERE kind = 'api_token' AND term = 'on_demand' AND tier_min_tokens = 0
GROUP BY source, provider, sku, region, currency
"""

_COLUMNS = """source, kind, provider, sku, region, term, unit, tier_min_tokens, currency, price,
       gpu_model, gpu_name_source, gpu_count, gpu_memory_gb, vcpus, ram_gb, context_length,
       valid_from, valid_to, first_seen, last_seen, first_run_id, last_run_id, dated"""


def _price_views() -> str:
    as_of = "prices_as_of(ts)"
    return f"""
CREATE VIEW price_history AS SELECT {_COLUMNS} FROM price_periods;
-- Current = in force now: an announced future price (valid_from ahead) is not current yet.
CREATE VIEW prices AS SELECT {_COLUMNS} FROM price_periods
    WHERE valid_from <= timezone('UTC', now())
      AND (valid_to IS NULL OR timezone('UTC', now()) < valid_to);
CREATE MACRO prices_as_of(ts) AS TABLE
    SELECT {_COLUMNS} FROM price_periods
    WHERE valid_from <= CAST(ts AS TIMESTAMP)
      AND (valid_to IS NULL OR CAST(ts AS TIMESTAMP) < valid_to);
CREATE VIEW gpu_offers AS {_GPU_OFFERS.format(src="prices")};
CREATE MACRO gpu_offers_as_of(ts) AS TABLE {_GPU_OFFERS.format(src=as_of)};
CREATE VIEW api_prices AS {_API_PRICES.format(src="prices")};
CREATE MACRO api_prices_as_of(ts) AS TABLE {_API_PRICES.format(src=as_of)};
"""


# Integrity findings (warehouse/checks.py) and views that show them and each price's age.
# `current` marks the findings of the latest check; an `error` among them quarantines its period.
# The views select `p.*` so a column a later migration adds to price_periods shows up in them.
_CHECKS_TABLE = """
CREATE SEQUENCE price_check_id START 1;
CREATE TABLE price_checks (
    check_id BIGINT PRIMARY KEY DEFAULT nextval('price_check_id'),
    run_id BIGINT,
    checked_at TIMESTAMP NOT NULL,
    current BOOLEAN NOT NULL,
    rule VARCHAR NOT NULL,
    level VARCHAR NOT NULL CHECK (level IN ('error', 'warning', 'info')),
    source VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    provider VARCHAR NOT NULL,
    sku VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    term VARCHAR NOT NULL,
    unit VARCHAR NOT NULL,
    tier_min_tokens BIGINT NOT NULL,
    valid_from TIMESTAMP NOT NULL,
    message VARCHAR NOT NULL
);
"""

# One row per quarantined period; joined on the natural key and valid_from.
_QUARANTINE = """(SELECT DISTINCT source, kind, provider, sku, region, term, unit, tier_min_tokens,
        valid_from, true AS quarantined
    FROM price_checks WHERE current AND level = 'error')"""
_Q_MATCH = " AND ".join(
    f"q.{c} = p.{c}"
    for c in ("source", "kind", "provider", "sku", "region", "term", "unit", "tier_min_tokens",
              "valid_from")
)  # fmt: skip


def _checked(where: str, at: str) -> str:
    """Periods with `quarantined` and `age_days` (whole days since last seen, as of `at`)."""
    return f"""SELECT p.*, coalesce(q.quarantined, false) AS quarantined,
       greatest(0, floor(epoch({at} - p.last_seen) / 86400))::INTEGER AS age_days
FROM price_periods p LEFT JOIN {_QUARANTINE} q ON {_Q_MATCH}
{where}"""


_NOW = "timezone('UTC', now())"
_AT = "CAST(ts AS TIMESTAMP)"

_GPU_OFFERS_V2 = _GPU_OFFERS.replace(
    "valid_from, valid_to, last_seen", "valid_from, valid_to, last_seen, age_days, quarantined"
)
# Quarantined rows are left out of the aggregate: a pair that broke a rule must not reach a cost.
_API_PRICES_V2 = _API_PRICES.replace(
    "max(last_seen) AS last_seen",
    "max(last_seen) AS last_seen,\n       min(age_days) AS age_days,\n"
    "       bool_or(price <= 0) AS free",
).replace("WHERE kind = 'api_token'", "WHERE NOT quarantined AND kind = 'api_token'")


def _price_views_v2() -> str:
    as_of = "prices_as_of(ts)"
    current = f"WHERE p.valid_from <= {_NOW} AND (p.valid_to IS NULL OR {_NOW} < p.valid_to)"
    at = f"WHERE p.valid_from <= {_AT} AND (p.valid_to IS NULL OR {_AT} < p.valid_to)"
    return f"""
DROP MACRO TABLE api_prices_as_of;
DROP VIEW api_prices;
DROP MACRO TABLE gpu_offers_as_of;
DROP VIEW gpu_offers;
DROP MACRO TABLE prices_as_of;
DROP VIEW prices;
DROP VIEW price_history;
CREATE VIEW price_history AS {_checked("", _NOW)};
CREATE VIEW prices AS {_checked(current, _NOW)};
CREATE MACRO prices_as_of(ts) AS TABLE {_checked(at, _AT)};
CREATE VIEW gpu_offers AS {_GPU_OFFERS_V2.format(src="prices")};
CREATE MACRO gpu_offers_as_of(ts) AS TABLE {_GPU_OFFERS_V2.format(src=as_of)};
CREATE VIEW api_prices AS {_API_PRICES_V2.format(src="prices")};
CREATE MACRO api_prices_as_of(ts) AS TABLE {_API_PRICES_V2.format(src=as_of)};
"""


_SIM = """
CREATE TABLE sim_runs (
    run_id VARCHAR PRIMARY KEY,
    scenario VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    config_json VARCHAR NOT NULL
);
CREATE TABLE sim_summaries (
    run_id VARCHAR NOT NULL,
    fleet VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE
);
CREATE TABLE sim_timeseries (
    run_id VARCHAR NOT NULL,
    replication INTEGER NOT NULL,
    fleet VARCHAR NOT NULL,
    window_start_s DOUBLE NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE
);
"""

# Reserved-term upfront fees and how trustworthy each observation date is (issue 11).
_UPFRONT_AND_DATE_QUALITY = f"""
ALTER TABLE price_periods ADD COLUMN upfront DECIMAL(24, 12);
ALTER TABLE price_periods ADD COLUMN observed_at_quality VARCHAR NOT NULL DEFAULT 'exact';
CREATE OR REPLACE VIEW price_history AS
    SELECT {_COLUMNS}, upfront, observed_at_quality FROM price_periods;
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_core_tables", _CORE),
    ("0002_price_views", _price_views()),
    ("0003_sim_results", _SIM),
    ("0004_upfront_and_observed_at_quality", _UPFRONT_AND_DATE_QUALITY),
    # After 0004: its views select p.*, so the columns 0004 added appear in them too.
    ("0005_price_checks_and_age", _CHECKS_TABLE + _price_views_v2()),
]
