"""Scenarios: the one schema of a scenario file, its loader, and the typed `Scenario` it yields."""

from sim.scenario.load import (
    Scenario,
    Slo,
    apply_override,
    check_models_fit,
    load_scenario,
    make_profile_factory,
    parse_scenario,
    parse_value,
    read_scenario_text,
)
from sim.scenario.schema import SLO_KEYS, ModelSpec, ScenarioFile, json_schema

__all__ = [
    "SLO_KEYS",
    "ModelSpec",
    "Scenario",
    "ScenarioFile",
    "Slo",
    "apply_override",
    "check_models_fit",
    "json_schema",
    "load_scenario",
    "make_profile_factory",
    "parse_scenario",
    "parse_value",
    "read_scenario_text",
]
