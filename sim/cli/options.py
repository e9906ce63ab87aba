"""Options several commands share: where their tasks run (`--backend`, `--address`)."""

from __future__ import annotations

import click

from sim.backends import BACKENDS, BackendError, Executor
from sim.errors import InputError


def executor_options(func):
    """`--backend serial|process|ray` and `--address` (Ray only) on a command."""
    func = click.option(
        "--address",
        default=None,
        metavar="auto|ray://HOST:PORT",
        help="Ray cluster to join (with --backend ray): auto = the cluster this machine belongs "
        "to (ray start / KubeRay), ray://HOST:10001 = a Ray client; default: a local Ray.",
    )(func)
    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="process",
        show_default=True,
        help="Where tasks (one fleet of one replication or point each) run: this process, a "
        "local process pool (--workers) or Ray tasks (pip install 'infercost[ray]').",
    )(func)


def make_executor(backend: str, address: str | None, workers: int | None) -> Executor:
    """The Executor for the options, or a one-line input error (exit 2)."""
    if workers is not None and workers < 1:
        raise InputError("--workers", None, f"must be >= 1, got {workers}")
    try:
        return Executor(backend, address=address, workers=workers)
    except BackendError as exc:
        field, sep, reason = str(exc).partition(": ")
        if not sep or field not in ("backend", "address", "workers"):
            field, reason = "backend", str(exc)
        raise InputError(f"--{field}", None, reason) from exc
