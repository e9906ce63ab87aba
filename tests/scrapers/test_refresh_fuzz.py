"""Property test over mutated recorded price responses served from 127.0.0.1 (issue 15).

Whatever one value or shape in a recorded response becomes, the refresh ends `ok`, `failed` or
`rejected` with at most one warning line and no traceback, a run that is not ok leaves stored
prices untouched, and no non-finite number is ever stored.
"""

from __future__ import annotations

import json
import logging
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapers.refresh import refresh

# (source, served path, recorded file, content type): small recorded responses, so 100 cases run
# in well under a minute.
CASES = (
    ("litellm", "/m.json", "litellm_model_prices_1.14.4.json", "application/json"),
    ("openrouter", "/models", "openrouter_models.json", "application/json"),
    ("runpod", "/graphql", "runpod_graphql_gpu_types_excerpt.json", "application/json"),
    ("azure", "/azure", "azure_gpu_retail_prices_projection_excerpt.json", "application/json"),
    ("lambda", "/vms.csv", "skypilot_lambda_vms_v7_excerpt.csv", "text/csv"),
)
HOSTILE = (
    None, "N/A", "", "-1", -1, 0, 1e9, 1e308, 1e-30, math.inf, -math.inf, math.nan, True, [], {},
    [1, 2], {"a": 1}, "9999-12-31T23:59:59", "2025-01-01T00:00:00+05:00", "x" * 5000, 2**70,
)  # fmt: skip


def _mutate_json(value, draw, depth=0):
    """`value` with one element somewhere inside replaced by a hostile value."""
    if depth > 0 and (not isinstance(value, dict | list) or not value or draw(st.booleans())):
        return draw(st.sampled_from(HOSTILE))
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: _mutate_json(value[key], draw, depth + 1)}
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], _mutate_json(value[i], draw, depth + 1), *value[i + 1 :]]
    return draw(st.sampled_from(HOSTILE))


def _mutate_csv(text: str, draw) -> str:
    lines = text.splitlines()
    i = draw(st.integers(1, len(lines) - 1))
    cells = lines[i].split(",")
    j = draw(st.integers(0, len(cells) - 1))
    if draw(st.booleans()):
        cells[j] = str(draw(st.sampled_from(HOSTILE)))
    else:
        cells = cells[:j]  # a cut row
    lines[i] = ",".join(cells)
    return "\r\n".join(lines) + "\r\n"


def _stored(wh, source):
    return wh.query(
        "SELECT sku, region, term, unit, tier_min_tokens, price, valid_from, valid_to "
        "FROM price_periods WHERE source = ? ORDER BY ALL",
        [source],
    ).rows()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_responses_never_crash_store_junk_or_lose_prices(
    data, wh, serve, fast_http, fixture_bytes, caplog
):
    source, path, name, content_type = data.draw(st.sampled_from(CASES))
    body = fixture_bytes(name)
    if not _stored(wh, source):  # a first good run, so there is something to lose
        serve(source, path, body, content_type=content_type)
        assert refresh(wh, [source], http_factory=fast_http)[0].status == "ok"
    if content_type == "text/csv":
        mutated = _mutate_csv(body.decode(), data.draw)
    else:
        mutated = json.dumps(_mutate_json(json.loads(body), data.draw))
    serve(source, path, mutated, content_type=content_type)
    before = _stored(wh, source)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        (result,) = refresh(wh, [source], http_factory=fast_http)
    assert result.status in ("ok", "failed", "rejected")
    if result.status != "ok":
        assert _stored(wh, source) == before
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) <= 1 and all(r.exc_info is None for r in warnings)
    assert all("Traceback" not in r.getMessage() for r in caplog.records)
    assert (
        wh.query(
            "SELECT count(*) FROM price_periods WHERE NOT isfinite(coalesce(gpu_count, 1)) "
            "OR NOT isfinite(coalesce(gpu_memory_gb, 1)) OR NOT isfinite(coalesce(vcpus, 1)) "
            "OR NOT isfinite(coalesce(ram_gb, 1)) OR price < 0"
        ).item()
        == 0
    )
