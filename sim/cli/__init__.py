"""The `sim` command: a thin layer over the library. Each command group lives in its own module."""

from __future__ import annotations

import sys

import click

from sim.errors import InputError


class _Main(click.Group):
    """Turns known input errors into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:  # warehouse errors carry their own exit code
            code = getattr(exc, "exit_code", None)
            if isinstance(code, int) and not isinstance(exc, click.exceptions.Exit):
                click.echo(f"error: {exc}", err=True)
                sys.exit(code)
            raise


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    envvar="INFERCOST_DB",
    default=None,
    help="DuckDB warehouse file (default: $INFERCOST_DB, else a per-user data directory).",
)
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """infercost: is a metered API, an autoscaled cloud GPU fleet or your own GPUs cheapest?

    Example:

        sim run scenarios/peak.toml
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


def _register() -> None:
    # Each module adds its commands to `cli`; a missing module means that part is not built yet.
    import importlib

    for name in (
        "sql_cmd",
        "prices_cmd",
        "refresh_cmd",
        "perf_cmd",
        "trace_cmd",
        "run_cmd",
        "analysis_cmd",
    ):
        try:
            importlib.import_module(f"sim.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"sim.cli.{name}":
                raise


_register()


def main() -> None:
    cli(prog_name="sim")
