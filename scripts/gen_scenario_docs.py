"""Rewrite the key reference in docs/scenarios.md from the scenario schema.

Run: python scripts/gen_scenario_docs.py   (tests/scenario/test_schema.py fails when it is stale)
"""

from pathlib import Path

from sim.scenario.reference import replace_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"

if __name__ == "__main__":
    DOC.write_text(replace_reference(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {DOC}")
