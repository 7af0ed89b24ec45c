"""In a real Chromium: the local model's worker is killed (kill -9) during a live run. The
run fails with a message that names the signal, the app keeps serving, and the next run in
the same browser session succeeds on a new worker."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, require_browser, serving_app, set_slider

from pdr_core.store import Store

require_browser()
from playwright.sync_api import expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.local_model
WORKER = b"pdr_core.providers.local.worker"
# The first steps of the two token sliders (pages/run.py).
LOWEST = {"max_tokens": "64", "workspace_tokens": "16"}


def app_workers(db: Path) -> list[int]:
    """Local-model workers of the app serving the store `db` (found by their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if WORKER in (entry / "cmdline").read_bytes() and \
                    f"PDR_DB={db}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return found


def wait_for_streaming_worker(db: Path, timeout: float = 90) -> int:
    """The worker's pid once the store shows a call of the newest run streaming text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = app_workers(db)
        runs = Store(db).list_runs() if db.exists() else []
        if workers and runs:
            trace = Store(db).get_trace(runs[0].id)
            if any(n.status == "running" and len(n.text) > 20 for n in trace.nodes):
                return workers[0]
        time.sleep(0.2)
    pytest.fail("no local-model worker streamed a call in time")


def lowest(page, key: str) -> None:
    """Move a select slider to its first step (Home), as a person would with the keyboard."""
    thumb = page.locator(f".st-key-{key} input[type=range]")
    shown = page.locator(f".st-key-{key} [data-testid=stSliderThumbValue]")
    for _ in range(5):
        thumb.focus()
        thumb.press("Home")
        try:
            expect(shown).to_have_text(LOWEST[key], timeout=5_000)
            return
        except AssertionError:
            page.wait_for_timeout(1_000)
    expect(shown).to_have_text(LOWEST[key])


def test_a_worker_killed_mid_run_fails_that_run_only(tmp_path):
    db = tmp_path / "runs.sqlite"
    with serving_app(db, tmp_path / "streamlit.log") as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(url)
        expect(page.get_by_role("heading", name="Run")).to_be_visible(timeout=30_000)
        box = page.locator(".st-key-question textarea")
        box.fill("Count from 1 to 500, one number per line.")
        box.press("Control+Enter")
        set_slider(page, "width", "2", [str(n) for n in range(1, 17)])
        expect(page.locator(".st-key-max_tokens [data-testid=stSliderThumbValue]")).to_have_text(
            "1024")  # the default: drafts long enough to be killed mid-way
        page.locator(".st-key-run_button button").click()

        worker = wait_for_streaming_worker(db)
        os.kill(worker, signal.SIGKILL)
        expect(page.get_by_text(re.compile(r"died of SIGKILL")).first).to_be_visible(
            timeout=60_000)
        expect(page.locator(".st-key-cancel_button")).to_have_count(0, timeout=30_000)
        page.screenshot(path=tmp_path / "1-killed.png", full_page=True)
        [first] = Store(db).list_runs()
        killed = Store(db).get_trace(first.id)
        assert killed.status == "failed"
        failed = [n for n in killed.nodes if n.status == "failed"]
        assert failed and all("SIGKILL" in (n.error or "") for n in failed)

        # The same browser session runs again, on a new worker.
        for key in ("max_tokens", "workspace_tokens"):
            lowest(page, key)
        page.locator(".st-key-run_button button").click()
        expect(page.get_by_text("Final answer:")).to_be_visible(timeout=180_000)
        page.screenshot(path=tmp_path / "2-next.png", full_page=True)
        browser.close()
        runs = Store(db).list_runs()
        assert len(runs) == 2
        newest = Store(db).get_trace(runs[0].id)
        assert newest.id != first.id and newest.status == "completed"
        assert worker not in app_workers(db)
