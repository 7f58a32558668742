"""The evidence check, proved on a tiny project run by a real pytest in a subprocess: a hazard log naming one
test that passes, one that is skipped and one that does not exist fails the run, naming the hazard and each bad
id; a developer's partial run is not held to it; a whole run whose tests all pass is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TESTS = '''
import pytest

def test_passes():
    assert True

@pytest.mark.skip(reason="no printer attached")
def test_is_skipped():
    pass

@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_on_each_database(dialect):
    assert dialect != "postgresql"
'''

HAZARD = '''
  - id: {id}
    title: {title}
    causes: [something goes wrong]
    effect: the patient is harmed
    before: {{severity: major, likelihood: medium}}
    after: {{severity: major, likelihood: low}}
    residual: none
    controls:
      - control: a control
        tests: {tests}
'''


def project(tmp_path: Path, hazards: list[tuple[str, str, list[str]]]) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_tiny.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\nasyncio_default_fixture_loop_scope = function\n")
    safety = tmp_path / "docs" / "safety"
    safety.mkdir(parents=True)
    body = "".join(HAZARD.format(id=h, title=t, tests=json.dumps(ids)) for h, t, ids in hazards)
    (safety / "hazards.yaml").write_text("hazards:\n" + body)
    return tmp_path


def run(where: Path, *args: str, strict: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CALLCENTRE_SAFETY_STRICT")}
    env["PYTHONPATH"] = str(ROOT)  # the plugin module, imported as tests.safety.plugin from the project
    if strict:
        env["CALLCENTRE_SAFETY_STRICT"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.safety.plugin", "-p", "no:cacheprovider",
                           "-q", "-rA", *args], cwd=where, env=env, capture_output=True, text=True, timeout=120)


def test_skipped_missing_and_failed_evidence_fails_the_run_and_says_which(tmp_path: Path) -> None:
    where = project(tmp_path, [
        ("H01", "Proved", ["tests/test_tiny.py::test_passes"]),
        ("H02", "Skipped evidence", ["tests/test_tiny.py::test_passes", "tests/test_tiny.py::test_is_skipped"]),
        ("H03", "Missing evidence", ["tests/test_tiny.py::test_was_renamed"]),
        ("H04", "One database fails", ["tests/test_tiny.py::test_on_each_database"]),
        ("H05", "The passing parametrisation", ["tests/test_tiny.py::test_on_each_database[sqlite]"]),
    ])
    strict = run(where, "tests/test_tiny.py", strict=True)
    output = strict.stdout + strict.stderr
    assert strict.returncode == 1, output
    assert "names controls whose tests did not pass in this run" in output
    assert "H02 Skipped evidence:" in output
    assert "tests/test_tiny.py::test_is_skipped: skipped (no printer attached)" in output
    assert "H03 Missing evidence:" in output
    assert "tests/test_tiny.py::test_was_renamed: not collected" in output
    assert "H04 One database fails:" in output and "test_on_each_database[postgresql]: failed" in output
    assert "H01 Proved" not in output and "H05 " not in output  # what passed is not blamed
    assert "FAILED docs/safety/hazards.yaml::evidence" in output  # counted and listed like a failed test

    # Deselecting a referenced test does not hide it in a strict run.
    deselected = run(where, "tests/test_tiny.py", "-k", "not test_passes", strict=True)
    assert deselected.returncode == 1
    assert "tests/test_tiny.py::test_passes: deselected" in deselected.stdout

    # A developer's partial run is not held to the log: only the real failure counts.
    partial = run(where, "tests/test_tiny.py", "-k", "test_passes or test_is_skipped", strict=False)
    assert partial.returncode == 0, partial.stdout
    assert "hazard log" not in partial.stdout


def test_a_whole_run_is_checked_without_being_asked_and_passes_when_every_control_is_proved(tmp_path: Path) -> None:
    where = project(tmp_path, [("H01", "Proved", ["tests/test_tiny.py::test_passes",
                                                  "tests/test_tiny.py::test_on_each_database[sqlite]"])])
    proved = run(where, "-k", "test_passes or sqlite", strict=True)
    assert proved.returncode == 0, proved.stdout
    assert "hazard log" not in proved.stdout

    # No paths, nothing deselected: a whole-suite run (as `make test` makes) is checked even without CI=true.
    skipped = json.dumps(["tests/test_tiny.py::test_is_skipped"])
    (where / "docs" / "safety" / "hazards.yaml").write_text(
        "hazards:\n" + HAZARD.format(id="H09", title="Skipped", tests=skipped))
    whole = run(where, strict=False)
    assert whole.returncode == 1
    assert "H09 Skipped:" in whole.stdout and "test_is_skipped: skipped (no printer attached)" in whole.stdout
