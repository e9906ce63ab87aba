"""`sim scenario schema` and `sim scenario check`: the scenario file format, without running."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sim.cli import cli


@cli.group("scenario")
def scenario_group() -> None:
    """Scenario files: print their JSON Schema, or validate files without running them.

    Example:

        sim scenario check scenarios/*.toml
    """


@scenario_group.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of a scenario file (TOML maps onto it key for key).

    Editors validate TOML with it (e.g. taplo or Even Better TOML: `#:schema ./scenario.schema.json`).

    Example:

        sim scenario schema > scenario.schema.json
    """
    from sim.scenario import json_schema

    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


@scenario_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a key, as in `sim run`.")  # fmt: skip
def check_cmd(files: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Validate scenario files against the schema and the model catalog, without prices or a run.

    Exit 0 when every file is valid; else the first error on one line and exit 2.

    Example:

        sim scenario check scenarios/*.toml
    """
    from sim.scenario import load_scenario

    for path in files:
        scenario = load_scenario(path, list(overrides), require_fleets=False)
        click.echo(f"{path}: ok ({len(scenario.fleets)} fleets, model {scenario.model.name})")
