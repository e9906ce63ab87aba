"""Hostile scenario input (issue: "Hostile input"): every case is exit 2 with one line naming the
file and field, never a traceback, a hang or an absurd value accepted."""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import math
import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.cli import cli
from sim.errors import InputError
from sim.scenario import load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[2]
PEAK = REPO / "scenarios" / "peak.toml"


def check(*args: str):
    """`sim scenario check ...`: exit code and output lines."""
    result = CliRunner().invoke(cli, ["scenario", "check", *args])
    return result.exit_code, result.output.strip().splitlines(), result


def assert_one_line_exit_2(args, *, contains: str = ""):
    code, lines, result = check(*args)
    assert code == 2, (args, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert contains in lines[0], lines[0]


# (--set override, the field the error must name): each was a crash, a hang or an absurd value
# accepted before the schema held bounds.
NAMED_CASES = [
    ('fleet.1.kind=["cloud"]', "fleet[1].kind"),
    ("fleet.1.kind={a = 1}", "fleet[1].kind"),
    ("fleet.2.cost_of_capital=0.1", None),  # fine alone ...
    ("fleet.2.lifetime_years=1e6", "fleet[2].lifetime_years"),  # ... overflowed with this
    ("fleet.0.max_retries=1000000000", "fleet[0].max_retries"),
    ("fleet.0.rpm_limit=1e-9", "fleet[0].rpm_limit"),
    ('fleet.0.ttft_s={dist = "lognormal", median = 1, sigma = 1e6}', "fleet[0].ttft_s.sigma"),
    ("fleet.0.output_tokens_per_s=0", "fleet[0].output_tokens_per_s"),
    ("fleet.1.decision_interval_s=1e-6", "fleet[1].decision_interval_s"),
    ("scenario.window_s=1e-300", "scenario.window_s"),
    ("scenario.horizon_s=1e308", "scenario.horizon_s"),
    ("workload.time_stretch=1e308", "workload.time_stretch"),
    ("workload.rate_scale=1e6", "workload.rate_scale"),
    ("fleet.2.servers=100000", "fleet[2].servers"),
    ("fleet.1.price_usd_per_hour=1e308", "fleet[1].price_usd_per_hour"),
    ("fleet.1.price_usd_per_hour=1e-300", "fleet[1].price_usd_per_hour"),
    ("fleet.2.gpu_price_usd=1e308", "fleet[2].gpu_price_usd"),
    ("fleet.2.electricity_usd_per_kwh=1e308", "fleet[2].electricity_usd_per_kwh"),
    ("fleet.2.lifetime_years=1e-300", "fleet[2].lifetime_years"),
    ("fleet.1.min_billed_s=1e308", "fleet[1].min_billed_s"),
    ("fleet.2.cost_of_capital=1e10", "fleet[2].cost_of_capital"),
    ('fleet.1.name=""', "fleet[1].name"),
    ('fleet.1.name="../../etc/x"', "fleet[1].name"),
    ("scenario.seed=1e308", "scenario.seed"),
    ("scenario.price_as_of=2999-01-01", "scenario.price_as_of"),
    ("fleet.1.target=inf", "fleet[1].target"),
    ("fleet.1.target=nan", "fleet[1].target"),
]


@pytest.mark.parametrize(("override", "field"), NAMED_CASES)
def test_named_cases_exit_2_naming_the_field(override, field):
    if field is None:
        code, _, result = check(str(PEAK), "--set", override)
        assert code == 0, result.output
        return
    assert_one_line_exit_2([str(PEAK), "--set", override], contains=f": {field}: ")


GENERATOR = """
[workload]
generator = "{generator}"
rate_per_s = {rate}
duration_s = {duration}
{extra}
prompt_tokens = {{ dist = "const", value = {prompt} }}
output_tokens = {{ dist = "const", value = 100 }}
[model]
name = "llama-3.1-8b"
"""


@pytest.mark.parametrize(
    ("generator", "rate", "duration", "extra", "prompt", "field"),
    [
        ("poisson", "1e12", "60", "", "100", "workload.rate_per_s"),
        ("poisson", "1", "1e15", "", "100", "workload.duration_s"),
        ("poisson", "200", "864000", "", "100", "workload.rate_per_s"),  # 173M > the 100M budget
        ("gamma", "1", "60", "cv = 1e9", "100", "workload.cv"),
        ("poisson", "1", "60", "", "1e20", "workload.prompt_tokens.value"),
    ],
)
def test_generators_are_bounded_before_anything_is_drawn(
    tmp_path, generator, rate, duration, extra, prompt, field
):
    path = tmp_path / "gen.toml"
    text = GENERATOR.format(
        generator=generator, rate=rate, duration=duration, extra=extra, prompt=prompt
    )
    path.write_text(text)
    assert_one_line_exit_2([str(path)], contains=f"{field}: ")


def test_a_prompt_beyond_the_context_window_is_rejected_or_truncated(tmp_path):
    from sim.run import run_replications

    path = tmp_path / "long.toml"
    path.write_text(
        GENERATOR.format(
            generator="poisson", rate="0.05", duration="60", extra="", prompt="2000000"
        )
        + '[[fleet]]\nname = "api"\nkind = "api"\nprice_usd_per_mtok_input = 1\n'
        "price_usd_per_mtok_output = 1\n"
    )
    sc = load_scenario(path)
    with pytest.raises(InputError, match="exceed the model's 131,072-token context"):
        run_replications(sc, n=1, seed=1)
    cut = load_scenario(path, ['model.context_overflow="truncate"'])
    (rep,) = run_replications(cut, n=1, seed=1)
    assert rep.fleets[0].prompt_tokens.max() + 100 <= 131_072


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("[scenario]\nname = 'caf\u00e9'\n".encode("latin-1"), "not UTF-8"),
        ('[scenario]\nname = "x"\n'.encode("utf-16"), "not UTF-8"),
        (gzip.compress(PEAK.read_bytes()), "not UTF-8"),
        (bytes(range(256)) * 4, "not UTF-8"),
        (b"x = " + b"{a = " * 500 + b"1" + b"}" * 500, "nested too deep"),
        (b"x = " + b"[" * 5000 + b"]" * 5000, "nested too deep"),
    ],
)
def test_bad_files_are_one_line(tmp_path, content, reason):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    assert_one_line_exit_2([str(path)], contains=reason)


def test_special_files_are_refused_without_reading_them(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # opening it for reading would block forever
    assert_one_line_exit_2([str(fifo)], contains="not a regular file")
    assert_one_line_exit_2(["/dev/zero"], contains="not a regular file")
    assert_one_line_exit_2(["/dev/null"], contains="not a regular file")
    assert_one_line_exit_2([str(tmp_path)], contains="not a regular file")
    assert_one_line_exit_2([str(tmp_path / "absent.toml")], contains="cannot read scenario")
    big = tmp_path / "big.toml"
    big.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    assert_one_line_exit_2([str(big)], contains="a scenario is at most")


def test_bad_set_paths_are_one_line(tmp_path):
    path = tmp_path / "list.toml"
    path.write_text(PEAK.read_text() + "\n[extra]\n")
    assert_one_line_exit_2([str(PEAK), "--set", "x=" + "[" * 3000 + "]" * 3000])
    odd = tmp_path / "odd.toml"
    odd.write_text("fleet = [1, 2]\n" + PEAK.read_text().split("[[fleet]]")[0])
    assert_one_line_exit_2([str(odd), "--set", "fleet.0.tp=1"], contains="not a table")


def test_an_error_quotes_at_most_200_characters_of_a_value():
    code, lines, _ = check(str(PEAK), "--set", 'fleet.1.term="' + "x" * 5_000_000 + '"')
    assert code == 2 and len(lines[0]) < 600


# ---------------------------------------------------------------------------------------------
# fuzzing: mutate the shipped scenario's parsed TOML at random places with hostile values

BASE = tomllib.loads(PEAK.read_text())
HOSTILE_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e308, -1e308, 1e-300, 2**63, math.inf, -math.inf, math.nan]),
    st.text(max_size=30),
    st.booleans(),
    st.dates(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["api", "cloud", "self_hosted", "lognormal", "const", "spot", "latest"]),
)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i)
            yield from _paths(value, (*prefix, i))


PATHS = list(_paths(BASE))


@st.composite
def mutated(draw):
    raw = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node = raw
        try:
            for part in path[:-1]:
                node = node[part]
        except (KeyError, IndexError, TypeError):
            continue
        action = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
        last = path[-1]
        if not isinstance(node, dict | list):
            continue
        if action == "delete" and isinstance(node, dict):
            node.pop(last, None)
        elif action == "add" and isinstance(node, dict):
            node[draw(st.text(min_size=1, max_size=12))] = draw(HOSTILE_VALUES)
        elif isinstance(node, dict) or (isinstance(last, int) and last < len(node)):
            node[last] = draw(HOSTILE_VALUES)
    return raw


@settings(
    max_examples=300,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=mutated())
def test_fuzzed_scenarios_validate_or_fail_on_one_line(raw):
    try:
        scenario = parse_scenario(raw, PEAK)
    except InputError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith(str(PEAK))
        assert len(text) < 1000
        return
    # Accepted: every number the engine will read is finite and inside its bounds.
    for fleet in scenario.fleets:
        for value in vars(fleet).values():
            if isinstance(value, float):
                assert math.isfinite(value)
    assert scenario.window_s >= 0.001 and math.isfinite(scenario.window_s)
    assert isinstance(scenario.price_as_of, str)
    if scenario.price_as_of != "latest":
        assert dt.date.fromisoformat(scenario.price_as_of) <= dt.date.today()
