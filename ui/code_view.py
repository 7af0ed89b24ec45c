"""Code tasks in the app: a node's program and test results, line diffs of programs, the
Settings switch that lets model-written code run, and the Run page's problem picker.

Model output is untrusted: programs and messages are shown through st.code (escaped, with
syntax highlighting) and markdown through `inert`; nothing here runs a program.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pdr_core.code.executor import ENV_VAR, execution_allowed
from pdr_core.code.problems import CodeProblem, load_humaneval, problem_from_row
from pdr_core.evals.problems import DatasetError
from pdr_core.render.diffs import line_diff
from pdr_core.render.textfmt import inert
from pdr_core.tasks import ProgramTask, code_task
from pdr_core.trace import Node, Trace
from ui.state import kept, kept_value, set_kept

ALLOW = "allow_code_execution"  # the Settings toggle's key; this session only, never saved
PROBLEM = "code_problem"  # the Run page's code problem picker
ENTRY_POINT = "code_entry_point"  # a typed-in problem's function name
TESTS = "code_tests"  # a typed-in problem's tests
NONE = "—"
OWN = "Your own (type the prompt, entry point and tests)"
OWN_ID = "typed-in"
TESTS_PLACEHOLDER = "def check(candidate):\n    assert candidate(3) == 9\n"
STDERR_CHARS = 1_500
ICONS = {True: "✓ passed", False: "✗ failed"}


def render_tests(trace: Trace, node: Node) -> None:
    """The node's program (highlighted) and its test results; nothing for other nodes."""
    tests = node.tests
    if not isinstance(tests, dict):
        return
    if node.answer is not None:
        st.markdown("**Program** (as tested: the code taken from the output, with the "
                    "problem's signature)")
        st.code(node.answer, language="python")
    results = [t for t in tests.get("tests") or [] if isinstance(t, dict)]
    status = str(tests.get("status", ""))
    if status == "disabled":
        st.info(inert(f"Not run: {tests.get('error') or 'code execution is off'}. "
                      "Whether this program is correct is unknown."))
        return
    passed = sum(1 for t in results if t.get("passed") is True)
    facts = [f"status {status}", f"{passed} of {len(results)} tests passed"]
    if isinstance(tests.get("seconds"), (int, float)):
        facts.append(f"{tests['seconds']:.2f}s")
    if tests.get("limit"):
        facts.append(f"limit hit: {tests['limit']}")
    st.markdown("**Tests** · " + inert(" · ".join(facts)))
    if tests.get("error") and status not in ("passed", "failed"):
        (st.warning if status == "no program" else st.error)(inert(str(tests["error"])))
    if results:
        st.dataframe([_row(i, t) for i, t in enumerate(results)], hide_index=True,
                     key=f"tests_{node.id}_{trace.id}")
    stderr = str(tests.get("stderr") or "")
    if stderr:
        with st.expander("stderr"):
            st.code(stderr[-STDERR_CHARS:], language=None)
    if tests.get("isolation"):
        st.caption(inert(f"Contained by: {tests['isolation']}"))


def render_final_program(trace: Trace) -> None:
    """A code run's final program, highlighted; nothing for other runs."""
    if trace.task is not None and trace.final_answer is not None:
        with st.expander("Final program"):
            st.code(trace.final_answer, language="python")


def _row(index: int, test: dict[str, Any]) -> dict[str, str]:
    return {"#": str(index + 1), "result": ICONS.get(test.get("passed"), "?"),
            "test": str(test.get("name") or ""), "message": str(test.get("error") or "")}


def code_diff_block(title: str, old: str, new: str) -> None:
    """A line-level diff of two programs, highlighted as a diff."""
    lines, added, removed = line_diff(old, new)
    st.markdown(f"**{inert(title)}** · :green[+{added}] :red[−{removed}] lines")
    st.code("\n".join(lines) or "(the same program)", language="diff")


def render_execution_toggle() -> None:
    """The Settings switch: off unless a person turns it on, for this session only."""
    st.subheader("Code execution")
    env_on = execution_allowed()
    st.toggle("Allow executing model-written code", **kept(ALLOW, False),
              disabled=env_on,
              help="Runs the programs of code problems (HumanEval) against their tests.")
    st.caption("Programs run **on the server running this app**, each in a separate "
               "process with time, memory and process limits, a temporary directory and no "
               "secrets in its environment; it is not a virtual machine (see the README). "
               "Off by default; this switch lasts for this browser session and is never "
               "saved.")
    if env_on:
        st.info(f"This deployment switched execution on for everyone ({ENV_VAR}=1).")


def execution_on() -> bool:
    """Whether this session may run model code: the toggle, or the server's variable."""
    return execution_allowed(bool(kept_value(ALLOW, False)))


def _use_problem() -> None:
    picked = st.session_state.get(PROBLEM)
    problem = next((p for p in load_humaneval() if p.id == picked), None)
    if problem is not None:
        set_kept("question", problem.question)
    if picked != NONE:  # its tests grade it, not a reference answer
        set_kept("reference", "")


def pick_code_problem() -> str:
    """The Run page's code problem picker: NONE, OWN, or a HumanEval problem's id."""
    problems = load_humaneval()
    picked = st.selectbox("Code problem (HumanEval, or your own)",
                          [NONE, OWN, *(p.id for p in problems)],
                          **kept(PROBLEM, NONE, then=_use_problem),
                          help="Its prompt becomes the question; its tests grade the "
                               "programs.")
    if picked != NONE and not execution_on():
        st.caption("Code execution is off (Settings): the programs will not be run, and "
                   "whether they are correct stays unknown.")
    return str(picked)


def code_problem_for(picked: str, question: str) -> tuple[CodeProblem | None, str | None]:
    """The problem `picked` names, with the question as its prompt: (problem, None), or
    (None, what is wrong) for a typed-in one that is incomplete; (None, None) for none.
    A typed-in problem's entry point and tests are asked for here."""
    if picked == NONE:
        return None, None
    if picked != OWN:
        return next((p for p in load_humaneval() if p.id == picked), None), None
    entry = st.text_input("Entry point (the function the tests call)", **kept(ENTRY_POINT),
                          placeholder="square")
    tests = st.text_area("Tests (Python defining check(candidate), as HumanEval's do)",
                         **kept(TESTS), height=140, placeholder=TESTS_PLACEHOLDER,
                         help="Each statement of check(candidate) holding an assert is one "
                              "test; the program's own names are visible to them.")
    row = {"id": OWN_ID, "question": question or "", "entry_point": entry or "",
           "tests": tests or ""}
    try:
        return problem_from_row(row, "your code problem"), None
    except DatasetError as exc:
        return None, str(exc)


def run_task(problem: CodeProblem | None) -> ProgramTask | None:
    """The task of a run on `problem` with this session's execution switch."""
    return code_task(problem, execution_on()) if problem is not None else None
