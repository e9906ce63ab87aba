"""`RequestRowWriter`: all / sample:N / none, row groups as the run goes, cost shares at close."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from engine_helpers import FakeProfile, factory_for, poisson_workload

from sim.engine import simulate_fleet
from sim.engine.accounting import allocate_cost
from sim.engine.config import EngineConfig, SelfHostedFleetConfig
from sim.engine.rows import RequestRowWriter, parse_requests_option
from sim.engine.stream import FleetAggregate, batch_from_result


@pytest.fixture(scope="module")
def run():
    cfg = SelfHostedFleetConfig(
        name="own", servers=1, tp=4, gpu_price_usd=2e4, engine=EngineConfig(max_queue=50)
    )
    w = poisson_workload(np.random.default_rng(4), 2500, 20.0)
    fr = simulate_fleet(
        cfg, w, profile_factory=factory_for(FakeProfile()), rng=np.random.default_rng(0)
    )
    ts = fr.timeseries
    edges = np.append(ts["window_start_s"].to_numpy(), ts["window_end_s"][-1])
    agg = FleetAggregate(60.0)
    batch = batch_from_result(fr)
    agg.add(batch)
    rates = agg.cost_rates(edges, ts["cost_usd"].to_numpy())
    share = allocate_cost(
        edges, ts["cost_usd"].to_numpy(), fr.end_s, fr.status, fr.prompt_tokens + fr.output_tokens
    )
    return fr, batch, rates, share


def _write(tmp_path, mode, batch, rates, parts=5, **kw):
    writer = RequestRowWriter(tmp_path / "requests.parquet", mode, seed=3, **kw)
    for rep in (0, 1):
        for idx in np.array_split(np.arange(len(batch)), parts):
            writer.add(rep, "own", batch.take(idx))
    return writer.close({(0, "own"): rates, (1, "own"): rates})


def test_all_writes_every_row_in_row_groups_with_costs(tmp_path, run):
    fr, batch, rates, share = run
    path = _write(tmp_path, "all", batch, rates, row_group_rows=1000)
    f = pq.ParquetFile(path)
    assert f.num_row_groups >= 5
    assert f.schema_arrow.metadata[b"infercost.requests"] == b"all requests"
    t = f.read()
    assert t.num_rows == 2 * len(batch)
    rep0 = t.filter(t["replication"].to_numpy() == 0)
    np.testing.assert_array_equal(rep0["request"].to_numpy(), np.arange(len(batch)))
    np.testing.assert_allclose(rep0["cost_usd"].to_numpy(), share, rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(rep0["finish_s"].to_numpy(), fr.finish_s)
    assert str(t.schema.field("prompt_tokens").type) == "int32"
    assert not (tmp_path / "requests.parquet.partial").exists()


def test_sample_is_uniform_and_independent_of_batching(tmp_path, run):
    _, batch, rates, share = run
    a = pq.read_table(_write(tmp_path, "sample:300", batch, rates, parts=1))
    b = pq.read_table(_write(tmp_path, "sample:300", batch, rates, parts=9))
    assert a.equals(b)
    assert a.num_rows == 600
    req = a.filter(a["replication"].to_numpy() == 0)["request"].to_numpy()
    assert len(set(req)) == 300
    # uniform: the sampled indices spread over the run (mean within 4 standard errors)
    n = len(batch)
    assert abs(req.mean() - (n - 1) / 2) < 4 * n / np.sqrt(12 * 300)
    np.testing.assert_allclose(
        a.filter(a["replication"].to_numpy() == 0)["cost_usd"].to_numpy(), share[req], rtol=1e-9
    )
    assert (
        b"sample:300"
        in pq.ParquetFile(tmp_path / "requests.parquet").schema_arrow.metadata[
            b"infercost.requests"
        ]
    )


def test_none_writes_nothing(tmp_path, run):
    _, batch, rates, _ = run
    assert _write(tmp_path, "none", batch, rates) is None
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("bad", ["some", "sample:0", "sample:x", "sample:", ""])
def test_bad_option_names_the_field(bad):
    with pytest.raises(ValueError, match="requests: must be"):
        parse_requests_option(bad)
    assert parse_requests_option("sample:7") == ("sample", 7)
