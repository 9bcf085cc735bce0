"""Browser tests: Playwright for Python driving Debian's Chromium (never a downloaded browser), headless.

Each test gets a fresh page in a Russian-speaking browser (the city's language) whose requests may reach only
the live test server: anything else is aborted and recorded, and a test fails if its page tried any other host
than the base-map tiles' (which the tests never need). JavaScript errors on the page fail the test too, and so
does anything the page's Content-Security-Policy refused (a `securitypolicyviolation` event).
Screenshots of each step go to test-output/browser/<test name>/ (git-ignored).
"""
import os
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = os.environ.get("OURCITY_CHROMIUM", "/usr/bin/chromium")
# Quiet on a closed network: no GPU, no QUIC, no background or component traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
VIEWPORT = {"width": 1280, "height": 800}
# Reports every Content-Security-Policy violation of every page (before any of the page's own scripts runs).
CSP_PREFIX = "CSP violation:"
CSP_WATCH = """document.addEventListener("securitypolicyviolation", function (e) {
  console.error("%s " + JSON.stringify({directive: e.violatedDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample, page: document.location.pathname}));
});""" % CSP_PREFIX


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: `apt-get install chromium` (scripts/system-deps.sh) "
                    "or set OURCITY_CHROMIUM")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; Django would refuse the tests' own (synchronous)
    # database queries next to it. They are not async code, so allow them while the browser runs.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class PageWatch:
    """What a page tried to load from elsewhere, and its JavaScript errors."""

    def __init__(self, allowed_netloc):
        self.allowed_netloc = allowed_netloc
        self.blocked = []
        self.errors = []
        self.csp_violations = []

    def console(self, message):
        if message.text.startswith(CSP_PREFIX):
            self.csp_violations.append(message.text)

    def route(self, route):
        if urlsplit(route.request.url).netloc == self.allowed_netloc:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


def watched_page(browser, base_url, viewport=None):
    """A fresh page in a context of its own (its own cookies: one person), Russian-speaking, watched as described
    above; `page_checks(page)` after closing it says what it saw. For tests with several people at once."""
    context = browser.new_context(locale="ru-RU", viewport=viewport or VIEWPORT, base_url=base_url)
    context.set_default_timeout(10_000)
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    watch = PageWatch(urlsplit(base_url).netloc)
    page.route("**/*", watch.route)
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    page.on("console", watch.console)
    page.watch = watch
    return page


def page_checks(page):
    watch = page.watch
    assert not watch.errors, f"JavaScript errors on the page: {watch.errors}"
    assert not watch.csp_violations, f"the Content-Security-Policy refused: {watch.csp_violations}"
    tile_host = urlsplit(settings.TILE_URL.replace("{s}", "a")).netloc
    elsewhere = [u for u in watch.blocked if urlsplit(u).netloc.replace("a.", "", 1) not in
                 (tile_host, tile_host.replace("a.", "", 1))]
    assert not elsewhere, f"the page tried to load from other hosts than the tiles': {elsewhere}"


@pytest.fixture
def page(browser, live_server):
    page = watched_page(browser, live_server.url)
    yield page
    page.context.close()
    page_checks(page)


@pytest.fixture
def shots(request, page):
    """shots("step") saves a screenshot of the page as test-output/browser/<test>/<NN>-step.png."""
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken = []

    def take(name):
        path = folder / f"{len(taken) + 1:02d}-{name}.png"
        # A screenshot is a record for people, not a check: Chromium now and then can't capture one ("Unable to
        # capture screenshot") while the page is fine. Try twice; then say so and go on with the test.
        for attempt in range(2):
            try:
                page.screenshot(path=str(path))
                break
            except PlaywrightError as exc:
                if attempt:
                    warnings.warn(f"no screenshot {path.name}: {exc}", stacklevel=2)
                    return None
        taken.append(path)
        return path

    return take
