"""The built-in benchmarks: shipped inside the package, loaded by name with no network, found
from a copy of the package with nothing beside it, offered as examples, credited."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import OpenAIServer

import pdr_core
from pdr_core.evals.benchmarks import BENCHMARKS, NAMES, benchmark_path
from pdr_core.evals.datasets import load_benchmark, load_dataset_spec
from pdr_core.evals.examples import SMALL, benchmark_examples, examples
from pdr_core.evals.problems import DatasetError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(pdr_core.__file__).resolve().parent


def test_the_four_benchmarks_are_named():
    assert NAMES == ("aime2024", "aime2025", "math500", "gsm8k")


@pytest.mark.parametrize("bench", BENCHMARKS, ids=NAMES)
def test_each_benchmark_loads_by_name_from_inside_the_package(bench):
    path = benchmark_path(bench.name)
    assert path.is_file() and path.parent == PACKAGE / "data"
    problems = load_dataset_spec(bench.name)
    assert len(problems) == bench.rows
    assert len({p.id for p in problems}) == bench.rows
    assert all(p.question.strip() and p.answer.strip() for p in problems)
    assert [p.id for p in load_benchmark(bench.name, 2)] == [p.id for p in problems[:2]]


def test_integer_answers_where_the_benchmark_has_them():
    for name in ("aime2024", "aime2025", "gsm8k"):
        assert all(re.fullmatch(r"-?\d+", p.answer) for p in load_benchmark(name)), name
    math500 = load_benchmark("math500")
    assert {p.extra["level"] for p in math500} == {1, 2, 3, 4, 5}


def test_an_unknown_name_lists_the_built_in_ones():
    with pytest.raises(DatasetError, match="aime2024, aime2025, math500, gsm8k"):
        load_dataset_spec("aime2023")
    with pytest.raises(DatasetError, match="no built-in benchmark 'aime2023'"):
        load_benchmark("aime2023")


def test_the_attribution_ships_with_the_data_and_is_in_the_readme():
    shipped = (PACKAGE / "data" / "README.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for text in (shipped, readme):
        for needle in ("MAA", "Hendrycks et al., 2021", "PRM800K", "Cobbe et al., 2021",
                       "MIT"):
            assert needle in text, needle
    for bench in BENCHMARKS:
        assert bench.file in shipped and f"`{bench.name}`" in shipped


def test_run_page_examples_include_the_first_problems_of_every_benchmark():
    found = benchmark_examples(2)
    assert len(found) == 2 * len(BENCHMARKS)
    aime = load_benchmark("aime2024", 1)[0]
    first = found[0]
    assert first.title.startswith("AIME 2024 · aime2024-01: ")
    assert (first.question, first.answer) == (aime.question, aime.answer)
    every = examples()
    assert every[: len(SMALL)] == list(SMALL)
    assert len({e.title for e in every}) == len(every)


def test_nothing_in_the_project_reads_a_folder_beside_the_clone():
    # The sibling folder the data came from exists on one machine only, never in a clone.
    pattern = re.compile(r"\.\./" + "shared" + r"|[\"']" + "shared" + r"[\"']\s*[/,)]")
    sources = [path for path in ROOT.rglob("*")
               if path.is_file() and ".venv" not in path.parts
               and (path.suffix in (".py", ".toml", ".cfg", ".txt") or path.name == "Makefile")]
    assert len(sources) > 50
    offenders = [str(path.relative_to(ROOT)) for path in sources
                 if pattern.search(path.read_text(encoding="utf-8", errors="replace"))]
    assert offenders == []


def test_eval_on_a_built_in_benchmark_from_a_bare_copy_of_the_package(tmp_path):
    """`eval aime2024 --limit 3` in a folder holding only the package: the data travel with
    it, and the only endpoint is the loopback test server."""
    clone = tmp_path / "clone"
    shutil.copytree(PACKAGE, clone / "pdr_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PDR_"))}
    env["PYTHONPATH"] = str(clone)
    with OpenAIServer(models=["fake-model"]) as server:
        result = subprocess.run(
            [sys.executable, "-m", "pdr_core", "--db", str(tmp_path / "runs.sqlite"), "eval",
             "aime2024", "--limit", "3", "--methods", "single", "--max-tokens", "128",
             "--base-url", server.base_url, "--model", "fake-model",
             "--out", str(tmp_path / "out")],
            capture_output=True, text=True, env=env, cwd=clone, timeout=120)
        assert result.returncode == 0, result.stderr
        assert len(server.chat_requests) == 3
    with (tmp_path / "out" / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["problem_id"] for r in rows] == ["aime2024-01", "aime2024-02", "aime2024-03"]
    assert {r["status"] for r in rows} == {"completed"}
