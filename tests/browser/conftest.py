"""Browser fixtures: Debian's chromium driven by Playwright, against Harbour and the sandbox
started as real servers (tests/servers.py), one pair per test module.

- `servers`: (harbour, sandbox) for the module, with the clinic "Clinique Soleil" and its
  administrator created by Harbour's `create_clinic` command (everything else is clicked).
- `browser`: one headless chromium per module (Playwright's sync API runs an event loop in
  this thread; keeping it to our modules keeps it away from the ORM tests of other modules).
- `new_context(locale)`: a fresh browser profile that may read and write the clipboard on both
  servers (copy buttons are really used, and what they copied is really pasted).
- `shot(page, "step")`: a full-page screenshot in test-output/screenshots/<test>/<nn-step>.png;
  `shot(page, "step", doc="name")` also refreshes docs/screenshots/name.png when
  HARBOUR_UPDATE_DOCS_SCREENSHOTS=1 (the README's pictures).
On failure, each open page is screenshotted (nn-failure-*.png) and both servers' logs printed.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, pytest_runtest_makereport, start_harbour, start_sandbox, start_together  # noqa: F401

ADMIN = "admin-soleil"
PASSWORD = "Browser-tests-Harbour-2024"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ROOT / "test-output" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# A step that takes longer than this is a failure, not something to wait for.
STEP_TIMEOUT_MS = 15_000
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    # Time scale 1: a refused delivery is retried after a minute, long after the module is done
    # (its retries would otherwise count towards Harbour's block of the sandbox's address).
    harbour, sandbox = start_together(lambda: start_harbour(root / "harbour"), lambda: start_sandbox(root / "sandbox"))
    try:
        harbour.manage("create_clinic", "Clinique Soleil", "--admin", ADMIN, "--password", PASSWORD)
    except Exception:
        harbour.stop()
        sandbox.stop()
        raise
    yield harbour, sandbox
    harbour.stop()
    sandbox.stop()


@pytest.fixture(scope="module")
def browser(servers):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser, servers, request):
    """Make a browser context (a separate person's browser) in the given locale."""
    contexts = []

    def make(locale: str = "fr-CA"):
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(STEP_TIMEOUT_MS)
        for server in servers:
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
        contexts.append(context)
        return context

    yield make
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for c, context in enumerate(contexts):
            for p, page in enumerate(context.pages):
                try:
                    page.screenshot(path=str(_test_dir(request.node) / f"99-failure-{c}-{p}.png"), full_page=True)
                except Exception:  # noqa: BLE001 - a page that cannot be captured must not hide the failure
                    pass
        for server in servers:
            sys.stderr.write("\n" + server.logs() + "\n")
    for context in contexts:
        context.close()


def _test_dir(node) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", node.name).strip("-")
    path = SCREENSHOTS / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def shot(request):
    folder = _test_dir(request.node)
    for old in folder.glob("*.png"):
        old.unlink()
    counter = iter(range(1, 100))
    update_docs = os.environ.get("HARBOUR_UPDATE_DOCS_SCREENSHOTS") == "1"

    def take(page, step: str, *, doc: str | None = None) -> Path:
        path = folder / f"{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        if doc and update_docs:
            _save_for_docs(path, DOCS_SCREENSHOTS / f"{doc}.png")
        return path

    return take


def _save_for_docs(source: Path, target: Path) -> None:
    """A 256-colour copy (a third of the size; the pages are flat colours and text) for the README."""
    from PIL import Image  # installed with fpdf2

    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        flat = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        flat.save(target, optimize=True)
