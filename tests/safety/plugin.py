"""pytest plugin: every control in the hazard log must be proved by a test that passed in this run.

It records the outcome of every test. At the end of a run that should have run everything, it checks each test
id docs/safety/hazards.yaml names: collected, not deselected, run, and passed in every phase (every
parametrisation, for an id without [param]). Any other outcome fails the session with one report naming each
hazard and each missing, skipped, deselected, failed or unrun test.

Enforced when CI=true (or 1) or CALLCENTRE_SAFETY_STRICT=1, and on a whole-suite run (`pytest` / `make test`
with no paths, nothing deselected or ignored). A developer running a subset (`pytest tests/booking_svc`, `-k`)
is not held to the whole log. Registered from tests/conftest.py; `-p tests.safety.plugin` loads it elsewhere."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from _pytest.reports import TestReport

RENDERER = Path(__file__).resolve().parents[2] / "docs" / "safety" / "render.py"
HAZARD_LOG = Path("docs/safety/hazards.yaml")  # relative to the run's rootdir
STRICT_ENV = "CALLCENTRE_SAFETY_STRICT"
REPORT_ID = "docs/safety/hazards.yaml::evidence"

# Worse outcomes win when a test reports several phases (a passed call with a failed teardown failed).
_RANK = {"passed": 0, "xpassed": 1, "skipped": 2, "xfailed": 2, "failed": 3}


def hazard_log_module() -> ModuleType:
    """docs/safety/render.py, which parses the log (docs/ is not a package, so it is loaded by path)."""
    name = "callcentre_hazard_log"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, RENDERER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules[name]


def strict_requested() -> bool:
    return os.environ.get(STRICT_ENV) == "1" or os.environ.get("CI", "").strip().lower() in ("true", "1")


@dataclass
class Outcome:
    result: str
    reason: str = ""


class SafetyEvidence:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.outcomes: dict[str, Outcome] = {}
        self.collected: list[str] = []
        self.deselected: set[str] = set()

    # ------------------------------------------------------------------------------------------ recording

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.update(item.nodeid for item in items)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = [item.nodeid for item in session.items]

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        if report.failed:
            outcome = Outcome("failed", f"failed in {report.when}")
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr or "")
            reason = reason.removeprefix("Skipped: ")
            outcome = Outcome("xfailed" if hasattr(report, "wasxfail") else "skipped", reason)
        elif report.when == "call":
            outcome = Outcome("xpassed" if hasattr(report, "wasxfail") else "passed")
        else:
            return
        current = self.outcomes.get(report.nodeid)
        if current is None or _RANK[outcome.result] > _RANK[current.result]:
            self.outcomes[report.nodeid] = outcome

    # ------------------------------------------------------------------------------------------ judging

    def whole_suite_ran(self) -> bool:
        option = self.config.option
        return (self.config.args_source == pytest.Config.ArgsSource.TESTPATHS and not self.deselected
                and not getattr(option, "ignore", None) and not getattr(option, "ignore_glob", None))

    def enforced(self, session: pytest.Session, exitstatus: int) -> bool:
        if self.config.option.collectonly or session.shouldstop:
            return False  # nothing ran, or the run was cut short (-x) and has failed already
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
                          pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
            return False
        return strict_requested() or self.whole_suite_ran()

    def problems(self) -> list[str]:
        """One line per hazard with unproved controls, then one per test id and what happened to it."""
        path = self.config.rootpath / HAZARD_LOG
        renderer = hazard_log_module()
        try:
            log = renderer.load(path)
        except (OSError, renderer.HazardLogError) as exc:
            return [f"the hazard log cannot be read: {exc}"]
        known = [*self.collected, *sorted(self.deselected)]
        verdicts: dict[str, list[str]] = {}
        for test_id in log.references():
            matching = [n for n in known if n == test_id or ("[" not in test_id and n.startswith(test_id + "["))]
            found = []
            if not matching:
                found.append(f"{test_id}: not collected (no such test, or not in this run)")
            for nodeid in matching:
                outcome = self.outcomes.get(nodeid)
                if nodeid in self.deselected:
                    found.append(f"{nodeid}: deselected")
                elif outcome is None:
                    found.append(f"{nodeid}: not run")
                elif outcome.result != "passed":
                    found.append(f"{nodeid}: {outcome.result}" + (f" ({outcome.reason})" if outcome.reason else ""))
            verdicts[test_id] = found
        lines = []
        for hazard in log.hazards:
            bad = [line for test_id in hazard.tests for line in verdicts[test_id]]
            if bad:
                lines.append(f"{hazard.id} {hazard.title}:")
                lines += [f"    {line}" for line in bad]
        return lines

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.enforced(session, exitstatus):
            return
        problems = self.problems()
        if not problems:
            return
        message = "\n".join([
            f"The hazard log ({HAZARD_LOG}) names controls whose tests did not pass in this run:",
            *(f"  {line}" for line in problems),
            "Every control must be proved by a test that was collected, run and passed (see docs/safety/).",
        ])
        # Reported like a failed test, so the summary counts it, lists it under FAILURES and the run exits 1.
        report = TestReport(nodeid=REPORT_ID, location=(str(HAZARD_LOG), None, "hazard log evidence"),
                            keywords={}, outcome="failed", longrepr=message, when="call")
        session.config.hook.pytest_runtest_logreport(report=report)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("callcentre-safety-evidence"):
        config.pluginmanager.register(SafetyEvidence(config), "callcentre-safety-evidence")
