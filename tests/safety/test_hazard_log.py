"""The hazard log itself: the markdown is what the YAML renders to, it covers the hazards a booking centre must
consider, its ratings follow the DCB0129 matrix, and every test it names exists (found by reading the test
files, so a renamed or deleted test fails here at once, even in a partial run)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from tests.safety.plugin import hazard_log_module

ROOT = Path(__file__).resolve().parents[2]
renderer = hazard_log_module()

# What the log must cover (issue 9), each with the hazard that covers it and a word its title must keep.
REQUIRED = {
    "wrong patient booked (identity)": ("H01", "wrong patient"),
    "unregistered patient booked": ("H02", "unregistered"),
    "double booking": ("H03", "double booking"),
    "lost booking (event or write lost)": ("H04", "lost booking"),
    "embargoed or wrong slot type": ("H05", "embargoed"),
    "displaced appointment never followed up": ("H06", "displaced"),
    "urgent symptoms booked as routine (red flags)": ("H07", "red flags"),
    "time shown wrong across clock changes": ("H08", "clock changes"),
    "a practice's change not reaching the centre": ("H09", "not reach the centre"),
    "a centre booking not reaching the practice": ("H10", "not reach the practice"),
    "stale availability shown": ("H11", "stale availability"),
    "an agent seeing patients without cause": ("H12", "without cause"),
    "patient data in logs": ("H13", "logs"),
    "service down at 8am": ("H14", "8am"),
    "a practice key leaked": ("H15", "key is leaked"),
}


@pytest.fixture(scope="module")
def log():
    return renderer.load(renderer.SOURCE)


def test_the_markdown_is_rendered_from_the_current_yaml(log) -> None:
    rendered = renderer.render(log)
    assert renderer.TARGET.read_text(encoding="utf-8") == rendered, (
        "docs/safety/hazard-log.md is out of date: run `python docs/safety/render.py`")
    assert renderer.main(["--check"]) == 0


def test_the_log_covers_what_a_booking_centre_must_consider(log) -> None:
    by_id = {h.id: h for h in log.hazards}
    assert len(by_id) >= 15
    for topic, (hazard_id, word) in REQUIRED.items():
        assert hazard_id in by_id and word in by_id[hazard_id].title.lower(), topic
    for hazard in log.hazards:
        assert hazard.causes and hazard.effect and hazard.controls and hazard.residual, hazard.id
        assert all(control.tests for control in hazard.controls), hazard.id
        assert hazard.after.rating <= hazard.before.rating and hazard.after.rating <= 3, hazard.id


def test_ratings_are_looked_up_in_the_dcb0129_matrix() -> None:
    risk = renderer.Risk
    assert risk("major", "low").rating == 3 and risk("catastrophic", "very high").rating == 5
    assert risk("minor", "very low").rating == 1 and risk("considerable", "medium").rating == 3
    # Worse severity or likelihood never lowers the rating.
    for i, likelihood in enumerate(renderer.LIKELIHOODS):
        row = renderer.MATRIX[likelihood]
        assert list(row) == sorted(row)
        if i:
            assert all(a >= b for a, b in zip(row, renderer.MATRIX[renderer.LIKELIHOODS[i - 1]], strict=True))


def test_a_malformed_log_is_refused_naming_each_problem(tmp_path: Path) -> None:
    bad = tmp_path / "hazards.yaml"
    bad.write_text("""
hazards:
  - id: H01
    title: Fine title
    causes: [a cause]
    effect: an effect
    before: {severity: minor, likelihood: low}
    after: {severity: major, likelihood: very high}
    residual: none
    controls:
      - control: a control
        tests: [tests/x/test_a.py::test_a]
  - id: H01
    title: Same id
    causes: [a cause]
    effect: an effect
    before: {severity: dreadful, likelihood: low}
    after: {severity: minor, likelihood: low}
    residual: none
    controls: [{control: c, tests: [tests/x/test_a.py::test_a]}]
  - id: H03
    title: No evidence
    causes: [a cause]
    effect: an effect
    before: {severity: minor, likelihood: low}
    after: {severity: minor, likelihood: low}
    residual: none
    controls: [{control: trust me, tests: []}]
  - id: H04
    title: Not a node id
    causes: [a cause]
    effect: an effect
    before: {severity: minor, likelihood: low}
    after: {severity: minor, likelihood: low}
    residual: none
    controls: [{control: c, tests: [test_a]}]
""")
    with pytest.raises(renderer.HazardLogError) as refused:
        renderer.load(bad)
    message = str(refused.value)
    assert "H01: the risk after the controls (5) is higher than before (1)" in message
    assert "H01: before.severity must be one of" in message
    assert "H03: control 1 names no test that proves it" in message
    assert "H04: control 1: not a pytest node id: ['test_a']" in message


@cache
def _definitions(path: Path) -> dict[str, set[str]]:
    """Module-level test functions, and the test methods of each Test class, found by reading the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            found[""].add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found[node.name] = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                                and n.name.startswith("test_")}
    return found


def test_every_test_the_log_names_exists(log) -> None:
    missing = []
    for test_id, hazards in log.references().items():
        file_part, *names = test_id.split("[", 1)[0].split("::")
        path = ROOT / file_part
        if not (path.is_file() and path.name.startswith("test_")):
            missing.append(f"{', '.join(hazards)}: {test_id} (no test file {file_part})")
            continue
        scope, function = ("", names[0]) if len(names) == 1 else (names[0], names[1])
        if function not in _definitions(path).get(scope, set()):
            missing.append(f"{', '.join(hazards)}: {test_id} (no such test in {file_part})")
    assert not missing, "the hazard log names tests that do not exist:\n" + "\n".join(missing)
