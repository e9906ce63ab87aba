"""The GPU a fleet names (a perf-catalog name such as "h100-sxm") against the GPU of the offer
that prices it (a warehouse `gpu_model` such as "H100-SXM"): a mismatch would run at one GPU's
speed and another's price, so it is an input error.
"""

from __future__ import annotations

import functools

from sim.errors import InputError


def _key(name: str) -> str:
    return "".join(ch for ch in str(name).upper() if ch.isalnum())


def catalog_gpu_for(offer_gpu_model: str | None, catalog: list[str] | None = None) -> str | None:
    """The perf-catalog GPU whose name matches a warehouse `gpu_model`, or None (no such GPU in
    the catalog, so its speed is unknown)."""
    if not offer_gpu_model:
        return None
    if catalog is None:
        return _by_key().get(_key(offer_gpu_model))
    want = _key(offer_gpu_model)
    return next((name for name in catalog if _key(name) == want), None)


@functools.cache
def _by_key() -> dict[str, str]:
    from sim.perf import list_gpus

    return {_key(name): name for name in list_gpus()}


def check_gpu_matches_offer(
    gpu: str, offer_gpu_model: str | None, *, source: str, field: str, sku: str = ""
) -> None:
    """Raise InputError (naming `source` and `field`) when the offer's GPU is known and is not
    `gpu`. An offer whose GPU the warehouse does not know passes: nothing contradicts the fleet."""
    if not offer_gpu_model:
        return
    if _key(gpu) != _key(offer_gpu_model):
        what = f"{sku} has" if sku else "the priced offer has"
        raise InputError(
            source,
            field,
            f"gpu = {gpu!r} but {what} {offer_gpu_model}: the fleet would run at one GPU's speed "
            "and another's price; name the instance's GPU or another instance",
        )
