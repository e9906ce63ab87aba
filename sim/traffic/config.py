"""Build a Workload from a validated `[workload]` spec (sim/traffic/spec.py, docs/workload.md).

A spec names either a recorded `trace` or a synthetic `generator`, then optional transforms
applied in a fixed order: window_s, rate_scale, time_stretch, tile_to_s, sample_frac, max_requests.
A recorded trace is parsed once per process and reused by every replication and analysis point.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.traffic import conversations, synthetic, transforms
from sim.traffic.lengths import IndependentLengths, LognormalLengths, ResampleLengths
from sim.traffic.loaders import load_trace, resolve_trace_path
from sim.traffic.spec import MAX_REQUESTS, LengthSpec, WorkloadSpec
from sim.workload import Workload


def _length_dist(spec: LengthSpec) -> LognormalLengths:
    if spec.dist == "lognormal":
        max_tokens = spec.max if spec.max is not None else 1_000_000
        return LognormalLengths(spec.median, spec.sigma, int(max_tokens))
    return LognormalLengths(int(spec.value), 0.0, int(spec.value))


@functools.lru_cache(maxsize=8)
def _cached_trace(path: Path, stamp: tuple, fmt: str, model: str | None, columns: tuple | None):
    # `stamp` (size, mtime) makes an edited file a new key.
    mapping = dict(columns) if columns is not None else None
    w = load_trace(path, format=fmt, model=model, mapping=mapping)
    for arr in (w.arrival_s, w.prompt_tokens, w.output_tokens, w.cached_prompt_tokens):
        arr.flags.writeable = False  # shared by every caller: nobody may change it in place
    return w


def _load(path: Path, *, fmt: str = "auto", model: str | None = None, columns=None) -> Workload:
    st = path.stat()
    key = tuple(sorted(columns.items())) if columns else None
    return _cached_trace(path, (st.st_size, st.st_mtime_ns), fmt, model, key)


def _resolve(spec: str, key: str, base_dir: Path, source: str) -> Path:
    try:
        return resolve_trace_path(spec, base_dir)
    except InputError as exc:
        raise InputError(source, f"workload.{key}", f"{exc.reason}: {exc.source}") from None


def _lengths(spec: WorkloadSpec, base_dir: Path, source: str):
    if spec.lengths_from is not None:
        path = _resolve(spec.lengths_from, "lengths_from", base_dir, source)
        trace = _load(path)
        return ResampleLengths(trace.prompt_tokens, trace.output_tokens, source=path.name)
    return IndependentLengths(_length_dist(spec.prompt_tokens), _length_dist(spec.output_tokens))


def _generate(spec: WorkloadSpec, base_dir: Path, rng: np.random.Generator, source: str):
    if spec.generator == "conversations":
        return conversations.conversations(
            spec.rate_per_s,
            spec.duration_s,
            rng,
            turns=_length_dist(spec.turns),
            first_prompt=_length_dist(spec.prompt_tokens),
            user_tokens=_length_dist(spec.user_tokens),
            output=_length_dist(spec.output_tokens),
            think_time_s=spec.think_time_s,
            system_tokens=spec.system_prompt_tokens or 0,
            block_tokens=spec.prefix_block_tokens or 16,
            max_context_tokens=spec.max_context_tokens or 32_768,
        )
    lengths = _lengths(spec, base_dir, source)
    if spec.generator == "poisson":
        return synthetic.poisson(spec.rate_per_s, spec.duration_s, lengths, rng)
    if spec.generator == "gamma":
        return synthetic.gamma_arrivals(spec.rate_per_s, spec.cv, spec.duration_s, lengths, rng)
    if spec.generator == "diurnal":
        return synthetic.diurnal(
            spec.rate_per_s,
            spec.duration_s,
            lengths,
            rng,
            peak_to_trough=3.0 if spec.peak_to_trough is None else spec.peak_to_trough,
            period_s=86400.0 if spec.period_s is None else spec.period_s,
            peak_hour=14.0 if spec.peak_hour is None else spec.peak_hour,
        )
    return synthetic.mmpp(spec.rates_per_s, spec.dwell_s, spec.duration_s, lengths, rng)


def _transform(
    spec: WorkloadSpec, w: Workload, rng: np.random.Generator, source: str, tile: bool = True
):
    if spec.window_s is not None:
        w = transforms.window(w, *spec.window_s)
    if spec.rate_scale is not None:
        expected = len(w) * spec.rate_scale
        if expected > MAX_REQUESTS:
            raise InputError(
                source,
                "workload.rate_scale",
                f"about {expected:.3g} requests per replication, over the budget of {MAX_REQUESTS:,}",
            )
        w = transforms.scale_rate(w, spec.rate_scale, rng)
    if spec.time_stretch is not None:
        w = transforms.stretch(w, spec.time_stretch)
    if spec.tile_to_s is not None and tile:
        w = transforms.tile_diurnal(w, spec.tile_to_s, rng, **_tile_options(spec, w, source))
    if spec.sample_frac is not None:
        w = transforms.sample(w, spec.sample_frac, rng)
    if spec.max_requests is not None:
        w = transforms.truncate(w, spec.max_requests)
    return w


def _base_workload(spec: WorkloadSpec, base_dir: Path, rng: np.random.Generator, source: str):
    """The recorded trace or the generated workload, before transforms."""
    if spec.trace is not None:
        path = _resolve(spec.trace, "trace", base_dir, source)
        # Errors inside the file name the file and line; they are more useful than the key.
        return _load(path, fmt=spec.format or "auto", model=spec.model_filter, columns=spec.columns)
    return _generate(spec, base_dir, rng, source)


def _tile_options(spec: WorkloadSpec, w: Workload, source: str) -> dict:
    """`tile_diurnal`'s options from the spec, after checking that tiling `w` to `tile_to_s`
    stays within the request budget."""
    if w.duration_s > 0 and len(w) * spec.tile_to_s / w.duration_s > MAX_REQUESTS:
        raise InputError(
            source, "workload.tile_to_s", f"tiles past the budget of {MAX_REQUESTS:,} requests"
        )
    return {
        "peak_to_trough": 3.0 if spec.peak_to_trough is None else spec.peak_to_trough,
        "peak_hour": 14.0 if spec.peak_hour is None else spec.peak_hour,
    }


def build_workload(
    spec: WorkloadSpec, *, base_dir: Path, rng: np.random.Generator, source: str
) -> Workload:
    """The Workload a validated `[workload]` spec describes; problems in files raise InputError."""
    base_dir = Path(base_dir)
    try:
        w = _transform(spec, _base_workload(spec, base_dir, rng, source), rng, source)
    except ValueError as exc:  # limits the keys cannot see alone, e.g. a tile too large
        raise InputError(source, "workload", str(exc)) from None
    if len(w) == 0:
        raise InputError(source, "workload", "no requests left (check window_s, rates, durations)")
    return w


def workload_chunks(
    spec: WorkloadSpec,
    *,
    base_dir: Path,
    rng: np.random.Generator,
    source: str,
    chunk_requests: int = 1 << 20,
) -> Iterator[Workload]:
    """`build_workload`'s workload in consecutive pieces, for a run that reads it as it goes
    (`engine_path = "streaming"`): concatenated, the pieces are that workload exactly.

    A tiled trace (`tile_to_s`, with no `sample_frac` or `max_requests` after it) is generated
    tile by tile, so memory holds about `chunk_requests` requests whatever the span; any other
    workload is built whole and handed out in slices of `chunk_requests`."""
    base_dir = Path(base_dir)
    if spec.tile_to_s is None or spec.sample_frac is not None or spec.max_requests is not None:
        w = build_workload(spec, base_dir=base_dir, rng=rng, source=source)
        for lo in range(0, len(w), chunk_requests):
            yield _slice(w, lo, min(lo + chunk_requests, len(w)))
        return
    try:
        base = _base_workload(spec, base_dir, rng, source)
        base = _transform(spec, base, rng, source, tile=False)
        pieces = transforms.tile_diurnal_chunks(
            base,
            spec.tile_to_s,
            rng,
            tiles_per_chunk=max(1, chunk_requests // max(len(base), 1)),
            **_tile_options(spec, base, source),
        )
        empty = True
        for piece in pieces:
            if len(piece):
                empty = False
                yield piece
    except ValueError as exc:
        raise InputError(source, "workload", str(exc)) from None
    if empty:
        raise InputError(source, "workload", "no requests left (check window_s, rates, durations)")


def _slice(w: Workload, lo: int, hi: int) -> Workload:
    meta = dict(w.meta)
    if "hash_ids" in meta:
        offsets, values = meta["hash_ids"]
        meta["hash_ids"] = (offsets[lo : hi + 1] - offsets[lo], values[offsets[lo] : offsets[hi]])
    return Workload(
        w.arrival_s[lo:hi],
        w.prompt_tokens[lo:hi],
        w.output_tokens[lo:hi],
        w.cached_prompt_tokens[lo:hi],
        w.name,
        meta,
    )


def fit_context(w: Workload, max_context: int, policy: str, source: str) -> Workload:
    """Requests whose prompt + output exceed the model's context window: an input error
    (`policy = "reject"`, the default), or prompts cut to fit (`"truncate"`, counted in
    `meta["context_truncated"]`), as a serving engine that truncates would do."""
    total = w.prompt_tokens.astype(np.int64) + w.output_tokens.astype(np.int64)
    over = total > max_context
    count = int(over.sum())
    if not count:
        return w
    if policy == "reject":
        raise InputError(
            source,
            "workload",
            f"{count:,} requests exceed the model's {max_context:,}-token context (largest "
            f'{int(total.max()):,} tokens); set model.context_overflow = "truncate" to cut them',
        )
    output = np.minimum(w.output_tokens, max_context - 1)
    prompt = np.minimum(w.prompt_tokens, max_context - output)
    cached = np.minimum(w.cached_prompt_tokens, prompt)
    meta = {**w.meta, "context_truncated": count}
    return Workload(w.arrival_s, prompt, output, cached, w.name, meta)
