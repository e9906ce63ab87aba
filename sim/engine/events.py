"""What happened to a fleet besides serving requests (scaling, cold starts, preemptions, spot kills,
throttling) and how full its replicas were: counted where it happens, by the fleets and
replicas, and read out once at the end of a run by `event_counts` and `utilisation`, which the
exact and the streaming paths share. docs/reports.md defines every figure.
"""

from __future__ import annotations

import math
from array import array

import numpy as np

# Events whose times are kept, counted per window in the time series (TIMESERIES_COLUMNS).
WINDOW_EVENTS = ("scale_up", "scale_down", "cold_starts", "preemptions", "spot_kills")
# Which events a fleet kind can have: the others are None (not applicable), never 0.
AUTOSCALED = ("scale_up", "scale_down", "cold_starts", "cold_start_waits", "spot_kills")
API_ONLY = ("throttled", "retries")


class EventLog:
    """One fleet's events: the time of each scaling decision, cold start, KV preemption and spot
    kill, plus per-request recompute counts and how long requests waited for a cold start."""

    def __init__(self):
        self.times = {kind: array("d") for kind in WINDOW_EVENTS}
        self.recomputes = 0  # evictions of a running sequence (KV preemption or a kill)
        self.recomputed_requests = 0  # requests evicted at least once
        self.recomputes_max = 0  # the most evictions of one request
        self.cold_start_waits = array("d")  # seconds queued for want of a warm replica, each

    def add(self, kind: str, t: float) -> None:
        self.times[kind].append(t)

    def evicted(self, attempts_after: int) -> None:
        """A running sequence lost its KV cache; `attempts_after` is its eviction count now."""
        self.recomputes += 1
        if attempts_after == 1:
            self.recomputed_requests += 1
        if attempts_after > self.recomputes_max:
            self.recomputes_max = attempts_after

    def per_window(self, edges: np.ndarray) -> dict[str, np.ndarray]:
        """Counts of each `WINDOW_EVENTS` kind per window of `edges` (events after the end: none)."""
        return {kind: window_counts(edges, np.asarray(t)) for kind, t in self.times.items()}


def window_counts(edges: np.ndarray, t: np.ndarray) -> np.ndarray:
    """How many of the times `t` fall in each window [edges[k], edges[k+1]) (the last closed)."""
    n_w = len(edges) - 1
    t = np.asarray(t, dtype=np.float64)
    t = t[t <= edges[-1]]
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, n_w - 1)
    return np.bincount(idx, minlength=n_w)[:n_w].astype(np.int64)


def no_window_events(n_windows: int) -> dict[str, np.ndarray]:
    return {kind: np.zeros(n_windows, dtype=np.int64) for kind in WINDOW_EVENTS}


def pools(fleet) -> list:
    """The GPU fleets whose replicas make up `fleet`: its prefill and decode pools for a
    disaggregated fleet (sim/engine/disagg.py), else the fleet itself."""
    return [fleet.prefill, fleet.decode] if hasattr(fleet, "prefill") else [fleet]


def events_per_window(fleet, edges: np.ndarray) -> dict[str, np.ndarray]:
    """`EventLog.per_window` summed over the fleet's pools."""
    parts = [p.events.per_window(edges) for p in pools(fleet)]
    return {kind: np.sum([part[kind] for part in parts], axis=0) for kind in WINDOW_EVENTS}


def event_counts(fleet) -> dict:
    """A GPU fleet's event totals for `FleetResult.meta["event_counts"]` (after its run; a hybrid
    fleet's overflow API must have run), summed over a disaggregated fleet's pools (a request
    evicted in both pools counts once in each for `recomputed_requests`). Keys are those of
    `sim.summary.FleetEvents`."""
    logs = [p.events for p in pools(fleet)]
    out: dict = {kind: sum(len(ev.times[kind]) for ev in logs) for kind in WINDOW_EVENTS}
    waits = np.concatenate([np.asarray(ev.cold_start_waits) for ev in logs])
    out["cold_start_waits"] = len(waits)
    out["cold_start_wait_s_p99"] = float(np.percentile(waits, 99)) if len(waits) else None
    out["recomputes"] = sum(ev.recomputes for ev in logs)
    out["recomputed_requests"] = sum(ev.recomputed_requests for ev in logs)
    out["recomputes_max_per_request"] = max(ev.recomputes_max for ev in logs)
    if fleet.kind != "cloud":
        out.update(dict.fromkeys(AUTOSCALED))
    overflow = getattr(fleet, "overflow", None)
    if overflow is None:
        out.update(dict.fromkeys(API_ONLY))
    else:
        out["throttled"] = len(overflow.throttle_s)
        out["retries"] = overflow.retries
    return out


def api_event_counts(api, end_s: float = math.inf) -> dict:
    """An API fleet's event totals: throttled requests (429s, up to `end_s`) and retries."""
    out: dict = dict.fromkeys(WINDOW_EVENTS)
    out.update(dict.fromkeys(AUTOSCALED))
    out.update(
        cold_start_wait_s_p99=None,
        recomputes=None,
        recomputed_requests=None,
        recomputes_max_per_request=None,
    )
    out["throttled"] = int((api.throttle_s <= end_s).sum())
    out["retries"] = api.retries
    return out


def utilisation(fleet, edges: np.ndarray, ok_output_tokens: float, mean_context: float) -> dict:
    """How full a GPU fleet was over the run [0, edges[-1]]; keys of `sim.summary.Utilisation`.

    busy_fraction: busy GPU-seconds (a step running) over billed GPU-seconds.
    batch_occupancy: sequences in the running batch, integrated over time, over max_num_seqs x
    billed replica-seconds (an idle replica counts as an empty batch).
    kv_occupancy: KV-cache tokens held, integrated over time, over KV capacity x billed
    replica-seconds (within a jump the held tokens grow linearly: their mean is used).
    output_tokens_per_s: output tokens of requests the fleet completed, over the run's length.
    capacity_output_tokens_per_s: what the time-mean number of replicas decodes at full batch,
    the batch being max_num_seqs or as many sequences of the workload's mean context
    (prompt + half the output) as the KV cache holds, each step timed by the serving profile.
    """
    widths = np.diff(edges)
    members = pools(fleet)
    billed_gpu_s = float(sum(p.billed_gpu_s(edges).sum() for p in members))
    busy_s = float(sum(p.busy_gpu_s.array(len(widths)).sum() for p in members))
    run_s = float(edges[-1])
    out = {
        "busy_fraction": busy_s / billed_gpu_s if billed_gpu_s > 0 else None,
        "batch_occupancy": None,
        "kv_occupancy": None,
        "output_tokens_per_s": ok_output_tokens / run_s if run_s > 0 else None,
        "capacity_output_tokens_per_s": None,
    }
    if any(p.exp for p in members):
        return out
    # Summed over pools, each weighted by its own batch limit and KV capacity.
    seq_s = kv_s = seq_cap_s = kv_cap_s = 0.0
    for p in members:
        replica_s = float((p.replicas_in(edges) * widths).sum())
        seq_s += sum(r.seq_s for r in p.replicas)
        kv_s += sum(r.kv_s for r in p.replicas)
        seq_cap_s += p.engine.max_batch_seqs * replica_s
        kv_cap_s += (p.kv_cap or 0) * replica_s
    if seq_cap_s <= 0:
        return out
    out["batch_occupancy"] = seq_s / seq_cap_s
    out["kv_occupancy"] = kv_s / kv_cap_s if kv_cap_s > 0 else None
    if len(members) > 1:
        return out  # a disaggregated fleet: no single full-batch decode rate (docs/reports.md)
    replica_s = seq_cap_s / fleet.engine.max_batch_seqs
    max_seqs = fleet.engine.max_batch_seqs
    if math.isfinite(mean_context) and mean_context > 0:
        batch = max(1, min(max_seqs, int(fleet.kv_cap // mean_context)))
        step_s = fleet.profile.step_time_s(0, 0.0, batch, int(batch * mean_context))
        if step_s > 0:
            out["capacity_output_tokens_per_s"] = batch / step_s * replica_s / run_s
    return out
