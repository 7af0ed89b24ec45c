"""The Compare page through AppTest, over runs stored with the fake provider."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import plain
from streamlit.testing.v1 import AppTest

from pdr_core.config import RunConfig
from pdr_core.render.compare import compare_runs
from pdr_core.run.methods import run
from pdr_core.store import Store
from pdr_core.testing import FakeProvider
from pdr_core.trace import Trace

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "compare.py")
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(1)>"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "runs.sqlite"
    monkeypatch.setenv("PDR_DB", str(path))
    return path


def store_run(db: Path, config: RunConfig, provider: FakeProvider | None = None,
              question: str = "What is 6 * 7?", reference: str | None = "42") -> Trace:
    store = Store(db)
    return asyncio.run(run(question, config, provider or FakeProvider(), store.writer(),
                           reference=reference))


def page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=30).run()


def notices(at: AppTest) -> list[str]:
    return [plain(e.value) for e in (*at.success, *at.info, *at.warning, *at.error)]


def test_two_runs_render_with_verdict_tables_and_diff(db):
    older = store_run(db, RunConfig(method="pdr", width=3, depth=2))
    newer = store_run(db, RunConfig(method="sr", depth=2))
    at = page()
    assert not at.exception, at.exception
    assert at.title[0].value == "Compare runs"
    # the newest run is B, the one before it the baseline A
    assert at.selectbox(key="compare_a").value == older.id
    assert at.selectbox(key="compare_b").value == newer.id
    expected = compare_runs(older, newer).verdict
    assert expected.lower in ("A", "B")
    assert expected.text in notices(at)
    assert any("Differ: method, width_schedule" in c.value for c in at.caption)
    aligned = at.dataframe[2].value
    rows = compare_runs(older, newer).rows
    assert list(aligned["A node"]) == [r.a.id if r.a else None for r in rows]
    bodies = [h.proto.body for h in at.get("html")]
    assert len(bodies) == 1 and 'class="pdr-diff"' in bodies[0]
    assert any("r2-final-0 (A) → r2-final-0 (B)" in plain(m.value) for m in at.markdown)
    assert len(at.get("plotly_chart")) == 2


def test_swapping_the_runs_and_picking_one_run_twice(db):
    first = store_run(db, RunConfig(method="single"))
    second = store_run(db, RunConfig(method="vote", width=3))
    at = page()
    at.selectbox(key="compare_a").set_value(second.id).run()
    assert not at.exception
    assert "Pick two different runs." in notices(at)
    at.selectbox(key="compare_b").set_value(first.id).run()
    assert not at.exception
    assert compare_runs(second, first).verdict.text in notices(at)


def test_a_failed_run_says_why_no_verdict(db):
    store_run(db, RunConfig(method="single"))
    store_run(db, RunConfig(method="sr", depth=2),
              FakeProvider(fail=lambda messages, seed: "server <b>down</b>"))
    at = page()
    assert not at.exception, at.exception
    assert any(n.startswith("Can't say") and "run B failed" in n for n in notices(at))
    # B finished no node: its side is empty, so the diff shows A's whole output deleted
    bodies = [h.proto.body for h in at.get("html")]
    assert bodies and "<del" in bodies[0]


def test_hostile_model_text_only_reaches_html_escaped(db):
    store_run(db, RunConfig(method="vote", width=2),
              FakeProvider(answer=lambda messages, seed: HOSTILE))
    store_run(db, RunConfig(method="single"))
    at = page()
    assert not at.exception, at.exception
    bodies = [h.proto.body for h in at.get("html")]
    assert bodies
    for body in bodies:
        assert "<script" not in body and "<img" not in body
    assert any("&lt;script&gt;" in body for body in bodies)
    for element in at.markdown:
        # st.markdown escapes raw HTML unless told not to; model text never tells it to.
        if "alert" in element.value:
            assert not element.proto.allow_html


def test_one_run_asks_for_another(db):
    store_run(db, RunConfig(method="single"))
    at = page()
    assert not at.exception
    assert any("store another run" in n for n in notices(at))
    assert not at.selectbox


def test_no_runs_asks_for_runs(db):
    at = page()
    assert not at.exception
    assert any("there is no run" in n for n in notices(at))


def test_a_cheaper_run_that_was_wrong_is_no_green_success(db):
    store_run(db, RunConfig(method="pdr", width=3, depth=2), reference="41")
    store_run(db, RunConfig(method="single"), reference="41")  # cheaper, and wrong
    at = page()
    verdict = next(plain(w.value) for w in at.warning if "lower B_seq" in plain(w.value))
    assert "It was wrong." in verdict
    assert not [s for s in at.success if "lower B_seq" in plain(s.value)]
