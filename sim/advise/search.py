"""Search the market: gather candidates, screen them analytically, simulate a shortlist with the
same fleet code as `sim run`, and rank everything into one table.

The shortlist keeps the best screened candidate of each kind and fills up by estimated cost; then
every candidate whose lower bound is below the best simulated cost meeting the SLO is simulated
too (in rounds, up to a budget), so a candidate the screen misjudged can still win.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.advise import bridge
from sim.advise.candidates import (
    Candidate,
    Sizer,
    api_candidates,
    cloud_candidates,
    owned_costs,
    purchase_candidates,
    read_market,
)
from sim.advise.constraints import AdviseConstraints
from sim.advise.screen import TARGET_UTIL, WorkloadStats
from sim.engine.billing import is_commitment
from sim.engine.result import OK
from sim.summary import FleetSummary

HOURS_PER_MONTH = 730.0
KIND_ORDER = ("api", "cloud", "self_hosted", "mix")


@dataclass
class Outcome:
    """What the simulation said about one candidate (means over replications)."""

    cost_usd: float
    meets_slo: bool
    ttft_p99_s: float | None
    tpot_p99_s: float | None
    success_rate: float | None
    overrun_s: float
    overrun_variable_usd: float
    input_mtok: float
    output_mtok: float
    api_input_usd: float  # cost of input tokens paid to an API (API fleets and overflow)
    api_output_usd: float


@dataclass
class Advice:
    scenario: str
    price_as_of: str
    slo: dict
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    screened: int = 0
    simulated: int = 0
    replications: int = 0
    seconds: dict = field(default_factory=dict)
    span_s: float = 0.0


Simulator = Callable[[list[Candidate]], list[Outcome]]


def advise(
    path,
    overrides: Sequence[str] = (),
    *,
    top: int | None = None,
    workers: int = 1,
    warehouse: Any = None,
    db_path: str | None = None,
    progress: Callable[[str], None] | None = None,
    executor: Any = None,
) -> Advice:
    """The whole search for the scenario file at `path`; the shortlist's simulations run on
    `executor` (a `sim.backends.Executor`; default: a local pool of `workers` processes)."""
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    scenario, c = bridge.load_question(path, overrides)
    wh = warehouse if warehouse is not None else bridge.open_warehouse(db_path)
    n_reps = bridge.replications(scenario, c)
    seed = scenario.seed
    stats = WorkloadStats.from_workload(bridge.first_workload(scenario, seed))
    t_load = time.perf_counter()

    cands, notes, seconds = gather(scenario, c, wh, stats)
    t_screen = time.perf_counter()
    say(
        f"screened {len(cands)} candidates in {seconds['screen']:.2f} s "
        f"({seconds['screen_cpu']:.2f} s CPU) "
        f"(prices and step model loaded in {seconds['read']:.2f} s)"
    )

    simulate = CandidateSimulator(scenario, n_reps, seed, workers, say, executor)
    shortlist_n = top if top is not None else c.shortlist
    outcomes = search(cands, simulate, shortlist_n)
    t_sim = time.perf_counter()
    rows = rank(cands, outcomes, stats, c)
    return Advice(
        scenario=scenario.name,
        price_as_of=scenario.price_as_of,
        slo={**scenario.slo.targets_s, "min_success_rate": scenario.slo.min_success_rate},
        rows=rows,
        notes=notes,
        screened=len(cands),
        simulated=len(outcomes),
        replications=n_reps,
        seconds={
            "load": t_load - t0 + seconds["read"],
            "screen": seconds["screen"],
            "screen_cpu": seconds["screen_cpu"],
            "simulate": t_sim - t_screen,
            "simulate_cpu": simulate.cpu_s,  # summed over worker processes
            "total": time.perf_counter() - t0,
        },
        span_s=stats.span_s,
    )


class CandidateSimulator:
    """Simulates candidates with the scenario's workload, `n_reps` replications from `seed`;
    `cpu_s` adds up the CPU seconds of every simulation job."""

    def __init__(self, scenario, n_reps: int, seed: int, workers: int, say=None, executor=None):
        self.scenario, self.n_reps, self.seed, self.workers = scenario, n_reps, seed, workers
        self.say, self.executor = say, executor
        self.cpu_s = 0.0

    def __call__(self, batch: list[Candidate]) -> list[Outcome]:
        fleets = [dataclasses.replace(cand.fleet, name=f"c{i}") for i, cand in enumerate(batch)]
        if self.say is not None:
            self.say(f"simulating {len(batch)} candidates x {self.n_reps} replications")
        summary, results, cpu_s = bridge.simulate(
            self.scenario,
            fleets,
            n=self.n_reps,
            seed=self.seed,
            workers=self.workers,
            executor=self.executor,
        )
        self.cpu_s += cpu_s
        return [_outcome(entry, res) for entry, res in zip(summary.fleets, results, strict=True)]


def gather(
    scenario, c: AdviseConstraints, wh, stats: WorkloadStats
) -> tuple[list[Candidate], list[str], dict]:
    """Every candidate with its screen estimate, the scenario's own fleets first; notes; and the
    seconds spent reading prices and building the step model ("read") and screening ("screen")."""
    t0 = time.perf_counter()
    market = read_market(wh, bridge.price_date(scenario), scenario.model.name)
    sizer = Sizer(bridge.profile_factory(scenario), stats, scenario.slo.targets_s)
    precisions = c.precisions or (scenario.model.precision,)
    cands: list[Candidate] = list(_scenario_candidates(scenario, wh, sizer))
    sizer.warm(precisions)
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    apis, notes = api_candidates(market["api"], stats, c)
    cands += apis
    cands += cloud_candidates(market["offers"], sizer, precisions, c)
    feasible_apis = [a for a in apis if a.estimate.feasible]
    cheapest_api = min(feasible_apis, key=lambda a: a.estimate.cost_usd, default=None)
    cands += purchase_candidates(market["purchase"], sizer, precisions, c, cheapest_api)
    cands = [x for x in cands if x.from_scenario or x.kind in c.kinds]
    if len(cands) > c.max_candidates:
        notes.append(f"{len(cands)} candidates, cut to max_candidates = {c.max_candidates}")
        cands = cands[: c.max_candidates]
    seconds = {
        "read": t1 - t0,
        "screen": time.perf_counter() - t1,
        "screen_cpu": time.process_time() - cpu1,  # CPU seconds: steadier on a shared machine
    }
    return cands, notes, seconds


def _scenario_candidates(scenario, wh, sizer: Sizer) -> list[Candidate]:
    resolved, prices = bridge.resolve_scenario_fleets(scenario, wh)
    out = []
    for f in resolved.fleets:
        kind = f.kind
        if kind == "self_hosted" and getattr(f, "overflow", None) is not None:
            kind = "mix"
        cap = None
        if kind != "api" and f.engine.service == "physics":
            profile, cap = sizer.get(f.gpu, f.tp, f.precision or scenario.model.precision)
        prov = prices.get(f.name, {})
        upfront = opex = None
        if f.kind == "self_hosted" and cap is not None and cap.feasible:
            replicas = f.servers * f.gpus_per_server // f.tp
            util = min(1.0, sizer.stats.mean_rate / (replicas * cap.rps / TARGET_UTIL))
            costs = owned_costs(f, profile, sizer.stats.span_s, util)
            upfront, opex = costs["capex"], costs["monthly_opex"]
        out.append(
            Candidate(
                kind=kind,
                description=f"scenario fleet {f.name!r}",
                provider=str(getattr(f, "provider", "purchase" if f.kind == "self_hosted" else "")),
                term=str(
                    getattr(f, "term", "purchase" if f.kind == "self_hosted" else "on_demand")
                ),
                fleet=f,
                estimate=None,
                region=str(getattr(f, "region", "") or prov.get("region") or ""),
                gpu=getattr(f, "gpu", None),
                tp=getattr(f, "tp", None),
                precision=getattr(f, "precision", None) or scenario.model.precision,
                capacity=cap,
                upfront_usd=upfront,
                monthly_opex_usd=opex,
                price_source=str(prov.get("source", "")),
                from_scenario=True,
                dedupe=("scenario", f.name),
            )
        )
    return out


# -- search ----------------------------------------------------------------------------------


def shortlist(cands: list[Candidate], n: int, done: set[int] | None = None) -> list[int]:
    """Indexes to simulate first: the scenario's fleets, the best screened candidate of each kind,
    then the cheapest estimates; one per identical offer (same price in another region)."""
    done = done or set()
    picked: list[int] = [i for i, x in enumerate(cands) if x.from_scenario and i not in done]
    order = sorted(
        (i for i, x in enumerate(cands) if x.estimate is not None and x.estimate.feasible),
        key=lambda i: (cands[i].estimate.cost_usd, i),
    )
    seen = {cands[i].dedupe for i in picked}
    budget = n

    def take(i: int) -> None:
        nonlocal budget
        if i in done or i in picked or cands[i].dedupe in seen or budget <= 0:
            return
        picked.append(i)
        seen.add(cands[i].dedupe)
        budget -= 1

    # One slot each for the best of every kind and the best commitment, so the table shows a
    # simulated answer for every way of buying that the market offers.
    classes = [lambda x, k=kind: x.kind == k for kind in KIND_ORDER]
    classes.append(lambda x: is_commitment(x.term))
    for member in classes:
        first = next((i for i in order if member(cands[i])), None)
        if first is not None:
            take(first)
    for i in order:
        take(i)
    return picked


def search(cands: list[Candidate], simulate: Simulator, n: int, rounds: int = 3) -> dict:
    """Simulate the shortlist, then any candidate whose lower bound is below the best simulated
    cost meeting the SLO (at most `rounds` more rounds of `n`). Returns {index: Outcome}."""
    outcomes: dict[int, Outcome] = {}

    def run(idx: list[int]) -> None:
        if idx:
            for i, out in zip(idx, simulate([cands[i] for i in idx]), strict=True):
                outcomes[i] = out

    run(shortlist(cands, n))
    for _ in range(rounds):
        best = min((o.cost_usd for o in outcomes.values() if o.meets_slo), default=math.inf)
        seen = {cands[i].dedupe for i in outcomes}
        left = sorted(
            (
                i
                for i, x in enumerate(cands)
                if i not in outcomes
                and x.estimate is not None
                and x.estimate.feasible
                and x.estimate.lower_bound_usd < best
                and x.dedupe not in seen
            ),
            key=lambda i: (cands[i].estimate.lower_bound_usd, i),
        )
        batch: list[int] = []
        for i in left:
            if cands[i].dedupe not in seen and len(batch) < n:
                batch.append(i)
                seen.add(cands[i].dedupe)
        if not batch:
            break
        run(batch)
    return outcomes


def _outcome(entry: FleetSummary, results: list) -> Outcome:
    """Means over replications of what the ranking needs, from `sim run`'s summary entry and the
    fleet results."""

    def mean(values) -> float:
        return float(np.mean(values)) if len(values) else math.nan

    inp, outp, api_in, api_out = [], [], [], []
    for fr in results:
        ok = fr.status == OK
        inp.append(float(fr.prompt_tokens[ok].sum()) / 1e6)
        outp.append(float(fr.output_tokens[ok].sum()) / 1e6)
        meta = fr.meta
        price_in = meta.get("price_usd_per_mtok_input")
        if fr.kind == "api" and price_in is not None:
            api_in.append(inp[-1] * price_in)
            api_out.append(outp[-1] * meta["price_usd_per_mtok_output"])
        elif fr.served_by is not None:  # a hybrid: the API's share, by its own prices
            api = ok & (fr.served_by == 1)
            share = float(fr.cost_usd[api].sum())
            tokens_in = float(fr.prompt_tokens[api].sum())
            tokens_out = float(fr.output_tokens[api].sum())
            total = tokens_in + tokens_out
            api_in.append(share * tokens_in / total if total else 0.0)
            api_out.append(share * tokens_out / total if total else 0.0)
        else:
            api_in.append(0.0)
            api_out.append(0.0)
    return Outcome(
        cost_usd=float(entry.total_cost_usd.mean),
        meets_slo=entry.meets_slo,
        ttft_p99_s=entry.latency("ttft", "p99"),
        tpot_p99_s=entry.latency("tpot", "p99"),
        success_rate=entry.success_rate.mean,
        overrun_s=mean([fr.meta.get("overrun_s", 0.0) for fr in results]),
        overrun_variable_usd=mean([fr.meta.get("overrun_variable_usd", 0.0) for fr in results]),
        input_mtok=mean(inp),
        output_mtok=mean(outp),
        api_input_usd=mean(api_in),
        api_output_usd=mean(api_out),
    )


# -- ranking ---------------------------------------------------------------------------------


def _split_per_mtok(cand: Candidate, out: Outcome) -> tuple[float | None, float | None]:
    """USD per million input and output tokens: an API's share at its own prices, GPU cost split
    by the share of GPU time prefill and decode took (from the step model at the sizing batch)."""
    gpu_cost = out.cost_usd - out.api_input_usd - out.api_output_usd
    frac = cand.capacity.prefill_frac if cand.capacity and cand.capacity.feasible else None
    if cand.kind == "api":
        frac = 0.0
    if frac is None and gpu_cost > 1e-12:
        return None, None
    frac = frac or 0.0
    cost_in = out.api_input_usd + gpu_cost * frac
    cost_out = out.api_output_usd + gpu_cost * (1 - frac)
    per_in = cost_in / out.input_mtok if out.input_mtok > 0 else None
    per_out = cost_out / out.output_mtok if out.output_mtok > 0 else None
    return per_in, per_out


def rank(
    cands: list[Candidate], outcomes: dict[int, Outcome], stats: WorkloadStats, c
) -> list[dict]:
    """One row per candidate, simulated winners first, then by cost; `why_not` for the rest."""
    month = HOURS_PER_MONTH * 3600 / stats.span_s
    budget = c.budget_usd_per_month

    def cost_of(i: int) -> float:
        if i in outcomes:
            return outcomes[i].cost_usd
        est = cands[i].estimate
        return est.cost_usd if est is not None else math.inf

    def over_budget(i: int) -> bool:
        return budget is not None and cost_of(i) * month > budget

    def key(i: int):
        o = outcomes.get(i)
        simulated_ok = o is not None and o.meets_slo
        feasible = cands[i].estimate is None or cands[i].estimate.feasible
        return (
            not simulated_ok,
            over_budget(i),
            o is None,
            not feasible,
            cost_of(i),
            i,
        )

    order = sorted(range(len(cands)), key=key)
    winner = order[0] if order and outcomes.get(order[0]) and outcomes[order[0]].meets_slo else None
    best_cost = cost_of(winner) if winner is not None else None
    rental = _best_monthly(cands, outcomes, ("cloud",), month, commit_mix=True)
    api_best = _best_monthly(cands, outcomes, ("api",), month)
    first_of: dict[tuple, int] = {}
    rows = []
    for rank_no, i in enumerate(order, start=1):
        cand, out = cands[i], outcomes.get(i)
        est = cand.estimate
        row: dict[str, Any] = {
            "rank": rank_no,
            "kind": cand.kind,
            "description": cand.description,
            "provider": cand.provider,
            "term": cand.term,
            "region": cand.region,
            "gpu": cand.gpu,
            "tp": cand.tp,
            "precision": cand.precision,
            "cost_usd_total": _clean(cost_of(i)),
            "cost_usd_per_month": _clean(cost_of(i) * month),
            "usd_per_mtok_input": None,
            "usd_per_mtok_output": None,
            "meets_slo": None if out is None else out.meets_slo,
            "slo_robust": None,  # needs the calibration error band: unknown until it lands
            "ttft_p99_s": None if out is None else _clean(out.ttft_p99_s),
            "tpot_p99_s": None if out is None else _clean(out.tpot_p99_s),
            "success_rate": None if out is None else _clean(out.success_rate),
            "simulated": out is not None,
            "cost_is_estimate": out is None,
            "screen_cost_usd": None if est is None else _clean(est.cost_usd),
            "screen_lower_bound_usd": None if est is None else _clean(est.lower_bound_usd),
            "overrun_s": None if out is None else out.overrun_s,
            "overrun_variable_usd": None if out is None else out.overrun_variable_usd,
            "upfront_usd": cand.upfront_usd,
            "payback_months_vs_rental": None,
            "payback_months_vs_api": None,
            "price_source": cand.price_source,
            "assumptions": list(cand.assumptions),
            "from_scenario": cand.from_scenario,
            "why_not": None,
        }
        if out is not None:
            row["usd_per_mtok_input"], row["usd_per_mtok_output"] = _split_per_mtok(cand, out)
        elif cand.kind == "api":
            row["usd_per_mtok_input"] = cand.fleet.price_usd_per_mtok_input
            row["usd_per_mtok_output"] = cand.fleet.price_usd_per_mtok_output
        if cand.upfront_usd:
            opex = cand.monthly_opex_usd
            row["payback_months_vs_rental"] = _payback(cand.upfront_usd, opex, rental)
            row["payback_months_vs_api"] = _payback(cand.upfront_usd, opex, api_best)
        row["why_not"] = _why_not(
            i, cand, out, winner, best_cost, first_of, over_budget(i), row, budget
        )
        first_of.setdefault(cand.dedupe, rank_no)
        rows.append(row)
    return rows


def _why_not(i, cand, out, winner, best_cost, first_of, over, row, budget) -> str | None:
    if i == winner:
        return None
    if out is None:
        est = cand.estimate
        if est is not None and not est.feasible:
            return est.why_not
        if cand.dedupe in first_of:
            return f"same offer as #{first_of[cand.dedupe]} (another region or source)"
        if best_cost is not None and est is not None:
            return (
                f"screened out: estimated ${est.cost_usd:,.2f}, lower bound "
                f"${est.lower_bound_usd:,.2f}, vs ${best_cost:,.2f} for #1"
            )
        return "not simulated"
    if not out.meets_slo:
        return "misses the SLO in simulation"
    if over:
        return f"over budget (${row['cost_usd_per_month']:,.0f}/month > ${budget:,.0f})"
    if best_cost is not None:
        return f"${out.cost_usd - best_cost:,.2f} more than #1 over the scenario"
    return None


def _best_monthly(cands, outcomes, kinds, month, commit_mix=False) -> float | None:
    """The cheapest monthly cost among candidates of `kinds` meeting the SLO in simulation
    (commitment mixes count as rentals), else among feasible screen estimates."""

    def eligible(x: Candidate) -> bool:
        if x.kind in kinds:
            return True
        return commit_mix and x.kind == "mix" and x.term != "purchase"

    sim = [o.cost_usd for i, o in outcomes.items() if o.meets_slo and eligible(cands[i])]
    if sim:
        return min(sim) * month
    est = [
        x.estimate.cost_usd
        for x in cands
        if eligible(x) and x.estimate is not None and x.estimate.feasible
    ]
    return min(est) * month if est else None


def _payback(upfront: float, opex: float | None, alternative: float | None) -> float | None:
    """Months until the purchase's upfront cost is repaid by not paying the alternative; None
    when the alternative is unknown or costs no more than running the owned servers."""
    if alternative is None or opex is None or alternative <= opex:
        return None
    return upfront / (alternative - opex)


def _clean(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
