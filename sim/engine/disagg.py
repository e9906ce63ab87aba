"""Prefill/decode disaggregation: a GPU fleet split into a prefill pool and a decode pool, with the
KV cache of each request moved between them over a link (docs/disaggregation.md).

Composition, not a new engine: each pool is an ordinary `CloudFleet` or `SelfHostedFleet` (its
own GPUs, prices, autoscaler) running the same continuous-batching replicas. The prefill pool
sees every request with one output token (the prefill samples the first token); the decode pool
sees it with its whole prompt already in the KV cache (`cached = prompt`: no prefill work there)
and decodes the remaining tokens. Between them, `DisaggFleet` holds the prompt's KV on the prefill
replica, reserves it on a decode replica with room, waits latency + bytes / bandwidth, then frees
the prefill side and queues the request on that decode replica. The first token reaches the user
with the KV (as when the decode server streams the whole response: vLLM's disaggregated-prefill
proxy, SGLang's PD router), so TTFT = queueing + prefill + transfer.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from simpy.events import NORMAL, URGENT

from sim.engine.cloud import CloudFleet
from sim.engine.config import pool_config
from sim.engine.fleet import GpuFleet
from sim.engine.native import Due, schedule_at
from sim.engine.requests import RequestTable
from sim.engine.result import DROPPED
from sim.engine.self_hosted import SelfHostedFleet
from sim.workload import Workload

LINKS_PATH = Path(__file__).resolve().parents[1] / "perf" / "data" / "links.toml"


@dataclass(frozen=True)
class KvLink:
    """A link kind's line rate per GPU and fixed time per transfer, with where they come from."""

    name: str
    gbps_per_gpu: float
    latency_s: float
    bandwidth_source: str
    latency_estimate: bool
    as_of: str


@functools.cache
def load_links() -> dict[str, KvLink]:
    with LINKS_PATH.open("rb") as fh:
        raw = tomllib.load(fh)
    return {
        name: KvLink(
            name=name,
            gbps_per_gpu=float(row["gbps_per_gpu"]),
            latency_s=float(row["latency_s"]),
            bandwidth_source=row["bandwidth_source"],
            latency_estimate=bool(row["latency_estimate"]),
            as_of=row["as_of"],
        )
        for name, row in raw.items()
    }


def link_params(cfg, tp_prefill: int, tp_decode: int) -> tuple[float, float]:
    """(GB/s, latency s) between one prefill and one decode replica: the scenario's figures, else
    the link kind's per-GPU rate times the smaller tp (each rank moves its own KV shard)."""
    link = load_links()[cfg.kv_link]
    gbps = cfg.kv_link_gbps
    if gbps is None:
        gbps = link.gbps_per_gpu * min(tp_prefill, tp_decode)
    latency = link.latency_s if cfg.kv_link_latency_s is None else cfg.kv_link_latency_s
    return float(gbps), float(latency)


def transfer_s(kv_bytes: float, gbps: float, latency_s: float) -> float:
    """One request's KV transfer: a fixed latency plus the bytes at the link's rate."""
    return latency_s + kv_bytes / (gbps * 1e9)


class _PrefillPool:
    """A pool fleet whose requests end at their first token and keep their KV until it is sent."""

    preplan_ok = False  # KV transfers change a replica's free cache between its events

    def __init__(self, owner: DisaggFleet, *args, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)

    def new_replica(self):
        rep = super().new_replica()
        # The replica calls `complete(i, now)` right after freeing the prompt's KV.
        rep.complete = functools.partial(self._prefilled, rep)
        return rep

    def _prefilled(self, rep, i: int, now: float) -> None:
        GpuFleet.complete(self, i, now)
        self.owner.prefilled(i, rep)

    def drop(self, i: int, now: float | None = None) -> None:
        super().drop(i, now)
        self.owner.dropped(i, now)


class _DecodePool:
    """A pool fleet fed by KV transfers; its autoscaler also counts requests waiting for one."""

    preplan_ok = False  # transfers land in its replicas between their events

    def __init__(self, owner: DisaggFleet, *args, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)

    def warm(self, rep) -> None:
        super().warm(rep)
        self.owner.dispatch()

    def complete(self, i: int, now: float) -> None:
        super().complete(i, now)
        self.owner.decoded(i)

    def drop(self, i: int, now: float | None = None) -> None:
        super().drop(i, now)
        self.owner.dropped(i, now)

    def queued(self) -> int:
        return super().queued() + len(self.owner.backlog)

    def outstanding(self) -> int:
        return super().outstanding() + len(self.owner.backlog) + self.owner.n_in_flight

    def arrivals_since(self, t: float) -> int:
        """The rate policy scales the decode pool on the fleet's arrivals."""
        return self.owner.prefill.arrivals_since(t)


class PrefillCloud(_PrefillPool, CloudFleet):
    pass


class PrefillSelfHosted(_PrefillPool, SelfHostedFleet):
    pass


class DecodeCloud(_DecodePool, CloudFleet):
    pass


class DecodeSelfHosted(_DecodePool, SelfHostedFleet):
    pass


class DisaggFleet:
    """A prefill pool and a decode pool behind one front door, reporting as one fleet.

    `table` is the run's request table: arrival, admission to prefill (start), first token (the
    KV has reached the decode replica), finish. Each pool keeps its own table of what it saw.
    """

    exp = False
    overflow = None

    def __init__(
        self, env, table: RequestTable, cfg, *, profiles, rng, window_s: float, jump: bool = True
    ):
        self.env = env
        self.table = table
        self.cfg = cfg
        self.kind = cfg.kind
        self.name = cfg.name
        p_cfg, d_cfg = pool_config(cfg, "prefill"), pool_config(cfg, "decode")
        # A prefill replica batches whole prompts (DistServe's and Splitwise's prefill instances
        # do): chunking protects decodes, which it has none of, and a chunk admitted beside KV
        # held for transfers could never grow (it would be preempted and readmitted over again).
        p_cfg = dataclasses.replace(
            p_cfg, engine=dataclasses.replace(p_cfg.engine, chunked_prefill=False)
        )
        p_profile, d_profile = profiles
        n = table.n
        prompt = table.prompt_tokens
        self.prefill_table = RequestTable(
            Workload(
                table.arrival_s, prompt, np.ones(n, dtype=np.int64), table.cached_prompt_tokens
            )
        )
        self.decode_table = RequestTable(
            Workload(table.arrival_s, prompt, table.output_tokens, prompt)
        )
        self.gbps, self.latency_s = link_params(cfg, p_cfg.tp, d_cfg.tp)
        # Bytes the prefill side sends: its own KV dtype (a prefix-cache hit is sent too: the
        # decode replica does not have it).
        self.kv_bytes_per_token = float(p_profile.kv_bytes_per_token)
        self.backlog: deque[tuple[int, object]] = deque()  # prefilled, no decode room yet
        self.n_in_flight = 0
        self.inbound: dict[int, int] = {}  # decode replica id -> transfers heading there
        self.transfers = 0
        self.transfer_s_total = 0.0
        self.done = env.event()
        self.log: list[tuple[float, str, int]] = []
        rng_p, rng_d = rng.spawn(2)
        cloud = cfg.kind == "cloud"
        p_cls = PrefillCloud if cloud else PrefillSelfHosted
        d_cls = DecodeCloud if cloud else DecodeSelfHosted
        common = {"window_s": window_s, "jump": jump}
        self.decode = d_cls(
            self, env, self.decode_table, d_cfg, profile=d_profile, rng=rng_d, **common
        )
        self.prefill = p_cls(
            self, env, self.prefill_table, p_cfg, profile=p_profile, rng=rng_p, **common
        )
        self.pools = {"prefill": self.prefill, "decode": self.decode}
        # A request the decode pool could never hold is refused at the door, before any prefill
        # (as a server refuses a request beyond its model length).
        never = table.prompt_tokens + table.output_tokens > self.decode.kv_cap
        for i in np.flatnonzero(never).tolist():
            self.prefill._never_fits[i] = 1
        self.kv_cap = min(self.prefill.kv_cap, self.decode.kv_cap)

    # -- the fleet interface simulate_fleet uses ---------------------------------------------------
    @property
    def replicas(self) -> list:
        return self.prefill.replicas + self.decode.replicas

    def start_arrivals(self) -> None:
        self.prefill.start_arrivals()

    def prefix_cache_meta(self) -> dict | None:
        """The prefill pool's: prompts are computed (or found cached) there; the decode pool is
        sent the whole KV. Per-replica caches are refused on disaggregated fleets (config)."""
        return self.prefill.prefix_cache_meta()

    def settle(self, end: float) -> None:
        """At the end of a run: merged steps' busy time, and the per-pool facts the run's table
        takes from the pools (admission to prefill, restarts in either pool)."""
        for rep in self.replicas:
            rep.settle(end)
        self.table.start_s[:] = self.prefill_table.start_s
        self.table.attempts[:] = self.prefill_table.attempts + self.decode_table.attempts
        self.log = sorted(
            [(t, f"prefill:{what}", r) for t, what, r in self.prefill.log]
            + [(t, f"decode:{what}", r) for t, what, r in self.decode.log]
        )

    def cost_parts(self, edges: np.ndarray, parts_of) -> dict[str, np.ndarray]:
        """Both pools' cost parts, named `prefill.<part>` and `decode.<part>`."""
        out = {}
        for which, pool in self.pools.items():
            for key, values in parts_of(pool, pool.cfg, edges).items():
                out[f"{which}.{key}"] = values
        return out

    def billed_gpu_s(self, edges: np.ndarray) -> np.ndarray:
        return self.prefill.billed_gpu_s(edges) + self.decode.billed_gpu_s(edges)

    def busy_gpu_s(self, n_windows: int) -> np.ndarray:
        return self.prefill.busy_gpu_s.array(n_windows) + self.decode.busy_gpu_s.array(n_windows)

    def gpu_util(self, edges: np.ndarray, billed_gpu_s: np.ndarray) -> np.ndarray:
        busy = self.busy_gpu_s(len(edges) - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(billed_gpu_s > 0, busy / billed_gpu_s, 0.0)
        return np.clip(util, 0.0, 1.0)

    def replicas_in(self, edges: np.ndarray) -> np.ndarray:
        """Replicas of both pools (a prefill and a decode replica count one each)."""
        return self.prefill.replicas_in(edges) + self.decode.replicas_in(edges)

    def pool_meta(self, edges: np.ndarray, parts: dict[str, np.ndarray]) -> dict:
        """Per pool: GPU, tp, replicas launched, KV capacity, GPU-seconds billed and busy,
        utilisation and cost; and the link."""
        n_w = len(edges) - 1
        pools = {}
        for which, pool in self.pools.items():
            billed = float(pool.billed_gpu_s(edges).sum())
            busy = float(pool.busy_gpu_s.array(n_w).sum())
            cost = sum(float(v.sum()) for k, v in parts.items() if k.startswith(which + "."))
            pools[which] = {
                "gpu": pool.cfg.gpu,
                "tp": pool.cfg.tp,
                "replicas_launched": len(pool.replicas),
                "kv_capacity_tokens": pool.kv_cap,
                "billed_gpu_s": billed,
                "busy_gpu_s": busy,
                "gpu_util": busy / billed if billed > 0 else 0.0,
                "cost_usd": cost,
            }
        return {
            "pools": pools,
            "kv_link": {
                "kind": self.cfg.kv_link,
                "gbps": self.gbps,
                "latency_s": self.latency_s,
                "transfers": self.transfers,
                "mean_transfer_s": self.transfer_s_total / self.transfers
                if self.transfers
                else 0.0,
            },
        }

    # -- the request path --------------------------------------------------------------------------
    def prefilled(self, i: int, rep) -> None:
        """Request `i` has its first token on prefill replica `rep`, which just freed its KV."""
        if self.decode_table.output[i] <= 1:  # nothing left to decode: done at the prefill
            self.table.first_token(i, self.env.now)
            self._finish(i)
            return
        rep.hold_kv(self.prefill_table.prompt[i])
        self.backlog.append((i, rep))
        self.dispatch()

    def dispatch(self) -> None:
        """Start the transfers of prefilled requests, oldest first, while some warm decode replica
        has room for the prompt's KV plus a token for each sequence it holds (its KV use as of
        its last step boundary: a jump in progress has grown it since, and an over-committed
        replica preempts at its next step as vLLM does)."""
        backlog, prompt = self.backlog, self.decode_table.prompt
        while backlog:
            i, src = backlog[0]
            need = prompt[i] + 1
            best, best_load = None, None
            for rep in self.decode.routable:
                if rep.kv_cap - rep.kv_used - rep.outstanding < need:
                    continue
                load = rep.outstanding + self.inbound.get(rep.rid, 0)
                if best is None or load < best_load:
                    best, best_load = rep, load
            if best is None:
                return
            backlog.popleft()
            best.hold_kv(prompt[i])
            self.inbound[best.rid] = self.inbound.get(best.rid, 0) + 1
            self.n_in_flight += 1
            dt = transfer_s(prompt[i] * self.kv_bytes_per_token, self.gbps, self.latency_s)
            self.transfers += 1
            self.transfer_s_total += dt
            self.env.schedule(Due(functools.partial(self._landed, i, src, best)), NORMAL, dt)

    def _landed(self, i: int, src, dst, _ev) -> None:
        """The KV of request `i` is on decode replica `dst`: both sides free their hold, the first
        token reaches the user, and the request joins `dst`'s queue."""
        tokens = self.prefill_table.prompt[i]
        now = self.env.now
        self.n_in_flight -= 1
        self.inbound[dst.rid] -= 1
        if src.state != "dead":
            src.release_kv(tokens)
        self.table.first_token(i, now)
        if dst.state == "warm" and dst in self.decode.routable:
            dst.release_kv(tokens)
            dst.enqueue(i, now)
        else:  # drained meanwhile: the hold goes with it, the request to another replica
            if dst.state != "dead":
                dst.release_kv(tokens)
            self.decode.route(i)

    def decoded(self, i: int) -> None:
        self._finish(i)
        # The replica frees the finished sequences' KV after this call returns: look for room
        # then, in an event at this same time.
        self.env.schedule(Due(self._on_room), URGENT)

    def _on_room(self, _ev) -> None:
        self.dispatch()

    def _finish(self, i: int) -> None:
        table = self.table
        table.complete(i, self.env.now)
        if table.n_terminal >= table.n and not self.done.triggered:
            self.done.succeed()

    def dropped(self, i: int, now: float | None) -> None:
        table, env = self.table, self.env
        table.fail(i, env.now if now is None else now, DROPPED)
        if table.n_terminal >= table.n and not self.done.triggered:
            if now is None or now == env.now:
                self.done.succeed()
            else:  # an absorbed arrival: at its own time, as its timeout would
                schedule_at(env, Due(self._on_done_at), NORMAL, now)

    def _on_done_at(self, _ev) -> None:
        if not self.done.triggered:
            self.done.succeed()
