"""What the browser tests share: the Chromium guard, the app on a loopback port, sliders.

Chromium comes from Debian's package (`make test` installs it as root); Playwright drives it
with `executable_path`, since its own browser download is not available. Without Chromium
the browser tests skip, unless PDR_REQUIRE_BROWSER=1 (CI) makes them required.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("PDR_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def require_browser() -> None:
    """Skip the calling test module without Chromium or Playwright; fail it in CI."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed"
    else:
        reason = None if CHROMIUM else "Chromium not found (apt-get install chromium)"
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"browser tests are required here but {reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving_app(db: Path, log_path: Path, env_extra: dict[str, str] | None = None
                ) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port with the store `db` (and `env_extra`,
    e.g. an endpoint; else the bundled model); yields its URL. Its config folder (saved
    settings) is an empty folder beside `db`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_MODEL"))}
    env["PDR_DB"] = str(db)
    env["XDG_CONFIG_HOME"] = str(db.parent / "config")
    env.update(env_extra or {})
    with log_path.open("wb") as log:
        # No file watcher: edits elsewhere in the working tree must not reload the app.
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("streamlit did not start: "
                                + log_path.read_text(errors="replace")[-2000:])
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# Marks every point of the plotly chart whose key starts with KEY (widgets that show a run
# end with its id) with its node id (customdata) as `data-node`, so a test clicks a node by
# id, not by where plotly drew it: the points' order follows the answer clusters, which
# follow what the model wrote.
_MARK_POINTS = """(key) => {
  const plot = document.querySelector(`[class*="st-key-${key}"] .js-plotly-plot`);
  let marked = 0;
  for (const group of plot.querySelectorAll('.scatterlayer .trace')) {
    const trace = group.__data__[0].trace;
    for (const point of group.querySelectorAll('.points path')) {
      const id = (trace.customdata || [])[point.__data__.i];
      if (typeof id === 'string') { point.setAttribute('data-node', id); marked++; }
    }
  }
  return marked;
}"""


def keyed(key_start: str) -> str:
    """A CSS selector for the element of the widget whose key starts with `key_start`."""
    return f'[class*="st-key-{key_start}"]'


def click_node(page, chart_key: str, node_id: str) -> None:
    """Click the point of node `node_id` in the tree chart whose key starts `chart_key`."""
    marked = page.evaluate(_MARK_POINTS, chart_key)
    assert marked, f"no points with node ids in the chart {chart_key}"
    page.locator(f'{keyed(chart_key)} path[data-node="{node_id}"]').click(force=True)


def set_slider(page, key: str, target: str, options: list[str]) -> None:
    """Move a slider with the keyboard, as a person would, until it shows `target`."""
    thumb = page.locator(f".st-key-{key} input[type=range]")
    shown = page.locator(f".st-key-{key} [data-testid=stSliderThumbValue]")
    for _ in range(2 * len(options)):
        current = shown.inner_text().strip()
        if current == target:
            return
        thumb.focus()
        before = options.index(current) > options.index(target)
        thumb.press("ArrowLeft" if before else "ArrowRight")
        page.wait_for_timeout(300)  # each change reruns the page
    raise AssertionError(f"slider {key} stuck at {shown.inner_text()!r}, wanted {target}")


def open_tab(page, name: str, shows) -> None:
    """Open a tab and wait for what it shows; a rerun landing meanwhile resets the tabs."""
    from playwright.sync_api import expect

    tab = page.get_by_role("tab", name=name)
    for _ in range(3):
        # While a rerun redraws the page, the old tab row and the new one are both there.
        expect(tab).to_have_count(1, timeout=15_000)
        tab.click()
        try:
            expect(shows).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            page.wait_for_timeout(1_000)
    expect(shows).to_be_visible()


def go_to(page, name: str) -> None:
    """Change page through the sidebar, as a person would (a reload would end the session)."""
    from playwright.sync_api import expect

    page.get_by_role("link", name=re.compile(name)).first.click()
    expect(page.get_by_role("heading", name=re.compile(name)).first).to_be_visible(
        timeout=20_000)


def settle(page, timeout: float = 20_000) -> None:
    """Wait until the app has finished its rerun: no status widget running and no element
    left over from the run before (Streamlit marks those stale until the rerun ends)."""
    from playwright.sync_api import expect

    page.wait_for_timeout(300)
    expect(page.locator("[data-testid=stStatusWidgetRunningIcon]")).to_have_count(
        0, timeout=timeout)
    expect(page.locator("[data-stale=true]")).to_have_count(0, timeout=timeout)


def click_redrawn(locator, tries: int = 10) -> None:
    """Click a button that a live fragment keeps redrawing: on a loaded machine the element a
    click resolved can be replaced before it is stable, so a click that found it detached is
    tried again on the new one (as a person clicks again)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        try:
            locator.click(timeout=5_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
