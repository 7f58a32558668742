"""The hazard log: read hazards.yaml (the source of truth), check it, and write hazard-log.md from it.

    python docs/safety/render.py           # rewrite hazard-log.md
    python docs/safety/render.py --check   # exit 1 when hazard-log.md is not what hazards.yaml renders to

The pytest plugin in tests/safety/ loads this file too (by path: docs/ is not a package), so the log is parsed
in one place: which tests a hazard names is decided here and nowhere else."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "hazards.yaml"
TARGET = HERE / "hazard-log.md"

# DCB0129's 5x5 matrix: a lookup to a risk rating of 1-5 (not a product of two scores).
SEVERITIES = ("minor", "significant", "considerable", "major", "catastrophic")
LIKELIHOODS = ("very low", "low", "medium", "high", "very high")
MATRIX = {
    "very high": (3, 4, 4, 5, 5),
    "high": (2, 3, 3, 4, 5),
    "medium": (2, 2, 3, 3, 4),
    "low": (1, 2, 2, 3, 4),
    "very low": (1, 1, 2, 2, 3),
}
ACCEPTABILITY = {
    1: "Acceptable, no further action required.",
    2: "Acceptable where the cost of further reduction outweighs the benefit gained, or where further risk "
       "reduction is impractical.",
    3: "Undesirable. Attempts should be made to eliminate the hazard or add controls to reduce the risk to an "
       "acceptable level; acceptable only when further risk reduction is impractical.",
    4: "Mandatory elimination of the hazard or addition of controls to reduce the risk to an acceptable level.",
    5: "Unacceptable.",
}
SEVERITY_MEANING = {
    "minor": "Minor injury or inconvenience, short-term recovery; minor psychological upset.",
    "significant": "Minor injury with long-term recovery; significant psychological trauma (one patient); or "
                   "minor injury to several patients.",
    "considerable": "Severe injury or incapacity from which recovery is expected (one patient); significant "
                    "psychological trauma to several.",
    "major": "Death, or permanent life-changing injury or incapacity, of one patient.",
    "catastrophic": "Death, or permanent life-changing injury or incapacity, of several patients.",
}
LIKELIHOOD_MEANING = {
    "very high": "Certain or almost certain; highly likely to occur.",
    "high": "Not certain but very possible; reasonably expected to occur in the majority of cases.",
    "medium": "Possible.",
    "low": "Could occur, but in the great majority of cases will not.",
    "very low": "Negligible or nearly negligible possibility of occurring.",
}

# A pytest node id: a test file, then one or two names (class and method), optionally one parametrisation.
# Without the [param] part an id means every parametrisation of that test.
TEST_ID = re.compile(r"^tests/[\w/]+\.py::(?:[A-Za-z_]\w*::)?test_\w+(?:\[[^\]]+\])?$")
HAZARD_ID = re.compile(r"^H\d{2}$")


class HazardLogError(ValueError):
    pass


@dataclass(frozen=True)
class Risk:
    severity: str
    likelihood: str

    @property
    def rating(self) -> int:
        return MATRIX[self.likelihood][SEVERITIES.index(self.severity)]


@dataclass(frozen=True)
class Control:
    description: str
    tests: tuple[str, ...]
    added: str | None  # the change that built this control, when the hazard log asked for it


@dataclass(frozen=True)
class Hazard:
    id: str
    title: str
    causes: tuple[str, ...]
    effect: str
    before: Risk
    after: Risk
    controls: tuple[Control, ...]
    residual: str

    @property
    def tests(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for c in self.controls for t in c.tests))


@dataclass(frozen=True)
class HazardLog:
    title: str
    version: str
    scope: str
    hazards: tuple[Hazard, ...]

    def references(self) -> dict[str, list[str]]:
        """Every test id the log names, with the hazards that rely on it."""
        found: dict[str, list[str]] = {}
        for hazard in self.hazards:
            for test in hazard.tests:
                found.setdefault(test, []).append(hazard.id)
        return found


# ---------------------------------------------------------------------------------------------- reading

def load(path: Path = SOURCE) -> HazardLog:
    """Read and check the YAML; every problem is reported at once."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise HazardLogError(f"{path} is not valid YAML: {exc}") from exc
    problems: list[str] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("hazards"), list):
        raise HazardLogError(f"{path}: expected a mapping with a list under 'hazards'")
    hazards = []
    seen: set[str] = set()
    for index, entry in enumerate(raw["hazards"]):
        where = f"hazard #{index + 1}"
        try:
            hazard = _hazard(entry, where)
        except HazardLogError as exc:
            problems.append(str(exc))
            continue
        if hazard.id in seen:
            problems.append(f"{hazard.id}: the id is used twice")
        seen.add(hazard.id)
        if hazard.after.rating > hazard.before.rating:
            problems.append(f"{hazard.id}: the risk after the controls ({hazard.after.rating}) is higher than before "
                            f"({hazard.before.rating})")
        hazards.append(hazard)
    if problems:
        raise HazardLogError(f"{path}:\n  " + "\n  ".join(problems))
    return HazardLog(title=str(raw.get("title", "Hazard log")), version=str(raw.get("version", "")),
                     scope=str(raw.get("scope", "")).strip(), hazards=tuple(hazards))


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise HazardLogError(f"{where}: '{key}' must be non-empty text")
    return " ".join(value.split())


def _risk(entry: dict, key: str, where: str) -> Risk:
    value = entry.get(key)
    if not isinstance(value, dict):
        raise HazardLogError(f"{where}: '{key}' must give severity and likelihood")
    severity, likelihood = value.get("severity"), value.get("likelihood")
    if severity not in SEVERITIES:
        raise HazardLogError(f"{where}: {key}.severity must be one of {', '.join(SEVERITIES)}")
    if likelihood not in LIKELIHOODS:
        raise HazardLogError(f"{where}: {key}.likelihood must be one of {', '.join(LIKELIHOODS)}")
    return Risk(severity, likelihood)


def _hazard(entry: object, where: str) -> Hazard:
    if not isinstance(entry, dict):
        raise HazardLogError(f"{where}: expected a mapping")
    hazard_id = entry.get("id")
    if not isinstance(hazard_id, str) or not HAZARD_ID.match(hazard_id):
        raise HazardLogError(f"{where}: 'id' must look like H01")
    where = hazard_id
    causes = entry.get("causes")
    if not isinstance(causes, list) or not causes or not all(isinstance(c, str) and c.strip() for c in causes):
        raise HazardLogError(f"{where}: 'causes' must be a non-empty list of text")
    controls = []
    for number, control in enumerate(entry.get("controls") or [], start=1):
        if not isinstance(control, dict):
            raise HazardLogError(f"{where}: control {number} must be a mapping")
        tests = control.get("tests")
        if not isinstance(tests, list) or not tests:
            raise HazardLogError(f"{where}: control {number} names no test that proves it")
        bad = [t for t in tests if not isinstance(t, str) or not TEST_ID.match(t)]
        if bad:
            raise HazardLogError(f"{where}: control {number}: not a pytest node id: {bad}")
        added = control.get("added")
        controls.append(Control(_text(control, "control", f"{where} control {number}"), tuple(tests),
                                " ".join(added.split()) if isinstance(added, str) else None))
    if not controls:
        raise HazardLogError(f"{where}: no controls")
    return Hazard(id=hazard_id, title=_text(entry, "title", where),
                  causes=tuple(" ".join(c.split()) for c in causes), effect=_text(entry, "effect", where),
                  before=_risk(entry, "before", where), after=_risk(entry, "after", where),
                  controls=tuple(controls), residual=_text(entry, "residual", where))


# ---------------------------------------------------------------------------------------------- writing

def _risk_cell(risk: Risk) -> str:
    return f"{risk.rating} ({risk.severity} × {risk.likelihood})"


def render(log: HazardLog) -> str:
    lines = [
        f"# {log.title}",
        "",
        "<!-- Generated from hazards.yaml by render.py: edit the YAML and run `python docs/safety/render.py`. -->",
        "",
        f"Version {log.version}. {log.scope}",
        "",
        "Every control names the automated tests that prove it. A full test run (and every CI run, `CI=true`) "
        "fails when any of those tests is missing, skipped, deselected or failed: see `tests/safety/plugin.py`. "
        "Node ids without a `[parameter]` part stand for every parametrisation (for example SQLite and "
        "PostgreSQL).",
        "",
        "## Risk matrix",
        "",
        "The DCB0129 5×5 matrix: severity and likelihood give a risk rating from 1 to 5 by lookup.",
        "",
        "| Likelihood ↓ / Severity → | " + " | ".join(s.capitalize() for s in SEVERITIES) + " |",
        "|---|" + ":---:|" * len(SEVERITIES),
    ]
    for likelihood in reversed(LIKELIHOODS):
        lines.append(f"| **{likelihood.capitalize()}** | " + " | ".join(str(r) for r in MATRIX[likelihood]) + " |")
    lines += ["", "| Rating | Acceptability |", "|:---:|---|"]
    lines += [f"| {rating} | {text} |" for rating, text in sorted(ACCEPTABILITY.items(), reverse=True)]
    lines += ["", "| Severity | Meaning (for a patient) |", "|---|---|"]
    lines += [f"| {s.capitalize()} | {SEVERITY_MEANING[s]} |" for s in SEVERITIES]
    lines += ["", "| Likelihood | Meaning |", "|---|---|"]
    lines += [f"| {lk.capitalize()} | {LIKELIHOOD_MEANING[lk]} |" for lk in reversed(LIKELIHOODS)]
    lines += ["", "## Summary", "", "| Id | Hazard | Risk before | Risk after | Controls | Tests |",
              "|---|---|:---:|:---:|:---:|:---:|"]
    for h in log.hazards:
        lines.append(f"| [{h.id}](#{h.id.lower()}) | {h.title} | {_risk_cell(h.before)} | {_risk_cell(h.after)} | "
                     f"{len(h.controls)} | {len(h.tests)} |")
    lines += ["", "## Hazards"]
    for h in log.hazards:
        lines += ["", f"### {h.id}", "", f"**{h.title}**", "", "Causes:", ""]
        lines += [f"- {cause}" for cause in h.causes]
        lines += ["", f"Effect on the patient: {h.effect}", "",
                  f"Risk before the controls: **{h.before.rating}** — severity {h.before.severity}, likelihood "
                  f"{h.before.likelihood}.", "", "Controls, and the tests that prove them:", ""]
        for number, control in enumerate(h.controls, start=1):
            added = f" *(Added by this log: {control.added})*" if control.added else ""
            lines.append(f"{number}. {control.description}{added}")
            lines += [f"   - `{test}`" for test in control.tests]
        lines += ["", f"Risk after the controls: **{h.after.rating}** — severity {h.after.severity}, likelihood "
                      f"{h.after.likelihood}. {ACCEPTABILITY[h.after.rating]}", "",
                  f"Residual risk: {h.residual}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    try:
        text = render(load(SOURCE))
    except HazardLogError as exc:
        print(exc, file=sys.stderr)
        return 2
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python docs/safety/render.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
