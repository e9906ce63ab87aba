"""`sim perf --list` prints every catalog name whole, even on a narrow terminal (issue 14)."""

from __future__ import annotations

from click.testing import CliRunner

from sim.cli import cli
from sim.perf import list_gpus, list_models


def test_list_shows_whole_names_on_a_narrow_terminal():
    result = CliRunner().invoke(cli, ["perf", "--list"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    names = {line.split("│")[1].strip() for line in result.output.splitlines() if "│" in line}
    assert set(list_models()) <= names and set(list_gpus()) <= names
