"""The `sim` command: a thin layer over the library. Each command group lives in its own module."""

from __future__ import annotations

import sys
import typing

import click

from sim.cli import _threads  # noqa: F401  (before NumPy loads)
from sim.errors import InputError


def _fail(message: object, code: int) -> typing.NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Main(click.Group):
    """Turns known input errors into one line on stderr and exit code 2, never a traceback."""

    def make_context(self, info_name, args, parent=None, **extra):
        # The root's own options (--db) are parsed here, outside invoke.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as exc:
            _fail(exc, 2)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a bare `sim prices` shows that group's help, as click does
        except OSError as exc:
            # A path the user gave that cannot be written or read (--out /dev/null/x, --db in a
            # read-only folder); an OSError without a file name is not the user's and propagates.
            if exc.filename is None:
                raise
            _fail(f"{exc.filename}: {exc.strerror or exc}", 2)
        except Exception as exc:  # warehouse errors carry their own exit code
            code = getattr(exc, "exit_code", None)
            if isinstance(code, int) and not isinstance(exc, click.exceptions.Exit):
                # format_message names the parameter ("Invalid value for '--tp': ..."); str() does not.
                _fail(exc.format_message() if isinstance(exc, click.ClickException) else exc, code)
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
    # Each module adds its commands to `cli` when imported; a broken module fails loudly.
    import importlib

    for name in (
        "sql_cmd",
        "prices_cmd",
        "refresh_cmd",
        "perf_cmd",
        "calibrate_cmd",
        "trace_cmd",
        "scenario_cmd",
        "run_cmd",
        "analysis_cmd",
        "advise_cmd",
    ):
        importlib.import_module(f"sim.cli.{name}")


_register()


def main() -> None:
    cli(prog_name="sim")
