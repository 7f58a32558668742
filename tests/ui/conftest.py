"""The agent UI in real headless Chromium (Debian's, driven by Playwright) against the whole stack started as
processes (`callcentre up` with a seeded demo region). Playwright's own browser download does not work here:
never run `playwright install`; a missing /usr/bin/chromium fails these tests with a clear message."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
VIEWPORT = {"width": 1440, "height": 900}


def require_chromium(path: Path) -> Path:
    """Fail (never skip) when the browser is missing: a skipped UI suite looks green and tests nothing."""
    if not path.exists():
        pytest.fail(f"Chromium is missing at {path}. The UI tests drive Debian's Chromium: install it with "
                    "`apt-get install chromium` (do not run `playwright install`; its download does not work here).",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def chromium() -> Path:
    return require_chromium(CHROMIUM)


@pytest.fixture(scope="session")
def stack(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("ui") / "var", seed=True) as running:
        yield running


@pytest.fixture(scope="session")
def demo(stack: RunningStack) -> dict[str, Any]:
    return json.loads((stack.data_dir / "demo.json").read_text())


@pytest.fixture(scope="session")
def browser(chromium: Path):
    from playwright.sync_api import expect, sync_playwright

    # Generous waits for a busy CI machine; the one real deadline (2 s for a taken slot) sets its own.
    expect.set_options(timeout=10_000)

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Staff:
    """Signs people in, each in a browser context of their own (own cookies, like separate desks)."""

    browser: Any
    stack: RunningStack
    demo: dict[str, Any]
    contexts: list[Any] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)

    def sign_in(self, who: str, *, password: str | None = None, expect_path: str | None = None,
                login_screenshot: str | None = None):
        from playwright.sync_api import expect

        context = self.browser.new_context(viewport=VIEWPORT, base_url=self.stack.url, locale="en-GB",
                                           timezone_id="Europe/London")
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.script_errors.append(f"{who}: {error}"))
        page.goto("/")
        expect(page).to_have_url(f"{self.stack.url}/login")
        if login_screenshot:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{login_screenshot}.png"), full_page=True)
        username, default_password = self.demo["logins"].get(who, (who, None))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password or default_password)
        page.get_by_label("Password").press("Enter")  # Enter submits
        if expect_path is not None:
            expect(page).to_have_url(f"{self.stack.url}{expect_path}")
        return page

    def api(self, who: str = "admin") -> httpx.Client:
        username, password = self.demo["logins"][who]
        token = httpx.post(f"{self.stack.url}/api/v1/auth/token", json={"username": username, "password": password},
                           timeout=20).json()["access_token"]
        return httpx.Client(base_url=self.stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.ui_failed = report.failed  # type: ignore[attr-defined]


@pytest.fixture
def staff(request: pytest.FixtureRequest, browser, stack: RunningStack,
          demo: dict[str, Any]) -> Iterator[Staff]:
    people = Staff(browser, stack, demo)
    yield people
    if getattr(request.node, "ui_failed", False):  # what each person was looking at when the test failed
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(people.contexts):
            for page in context.pages:
                page.screenshot(path=str(SCREENSHOTS / f"failed-{request.node.name}-{i}.png"), full_page=True)
    for context in people.contexts:
        context.close()
    assert not people.script_errors, f"the pages raised script errors: {people.script_errors}"


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Any, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
