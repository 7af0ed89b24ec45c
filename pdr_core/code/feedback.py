"""The `feedback` workspace: the selected programs with what their tests said.

PDR for debugging: the next round refines against real failures (SR's `sr_feedback`
gives its one program's report, `report_workspace`). Each selected program
becomes one item, its test report first (how many passed, each failed test with its
assertion or trimmed traceback, the limit it hit, the tail of its stderr) and the program
after it, so that when kappa cuts an item (head and tail kept, as every extractive
workspace is cut, see `pdr_core.run.workspace.extract`) the failures survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pdr_core.code.executor import Execution
from pdr_core.code.identity import CodeTask
from pdr_core.run.operators import Draft
from pdr_core.run.workspace import Counter, bound, extract

MAX_FAILURES = 5  # failed tests listed per program; the rest are counted
MAX_ERROR = 400  # characters of one failure's message
MAX_STDERR = 400  # characters of the stderr tail


def _trim(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def outcome(execution: Execution) -> str:
    """One line: 'passes 5 of 7 tests', 'timeout (wall clock 10s)', 'not run'."""
    if execution.status == "disabled":
        return "tests not run"
    total = len(execution.tests)
    passed = sum(t.passed for t in execution.tests)
    if execution.status in ("passed", "failed"):
        return f"passes {passed} of {total} tests"
    limit = f" ({execution.limit})" if execution.limit else ""
    if not total:
        return f"{execution.status}{limit} before any test finished"
    return f"{execution.status}{limit} after {passed} of {total} finished tests passed"


def report(execution: Execution) -> str:
    """What the tests said about one program, for a prompt."""
    if execution.status == "disabled":
        return f"Tests not run: {execution.error}"
    lines = [f"Tests: {outcome(execution)}."]
    if execution.error and execution.status not in ("passed", "failed"):
        lines.append(f"Stopped: {_trim(execution.error, MAX_ERROR)}")
    failed = [t for t in execution.tests if not t.passed]
    for test in failed[:MAX_FAILURES]:
        lines.append(f"- failed `{test.name}`: {_trim(test.error or 'failed', MAX_ERROR)}")
    if len(failed) > MAX_FAILURES:
        lines.append(f"- and {len(failed) - MAX_FAILURES} more failed tests")
    if execution.stderr.strip() and execution.status != "passed":
        lines.append(f"stderr (end):\n{_trim(execution.stderr, MAX_STDERR)}")
    return "\n".join(lines)


def feedback_drafts(selected: Sequence[Draft], task: CodeTask) -> list[Draft]:
    """The selected drafts as workspace items: report, then program; their label the
    outcome. A draft without a program is reported as such."""
    items = []
    for draft in selected:
        if draft.answer is None:
            text, label = "No program was found in this attempt.", "no program"
        else:
            execution = task.execution(draft.answer)
            text = f"{report(execution)}\n\nProgram:\n```python\n{draft.answer.rstrip()}\n```"
            label = outcome(execution)
        items.append(Draft(draft.node_id, draft.branch, text, label))
    return items


async def report_workspace(draft: Draft, task: CodeTask, kappa: int,
                           counter: Counter | None) -> tuple[str, dict[str, Any]]:
    """SR's feedback: what the tests said about one draft's program (the program itself is
    already in SR's prompt), cut to kappa tokens as a workspace is, and its record."""
    if draft.answer is None:
        text = "No program was found in this attempt."
    else:
        text = report(task.execution(draft.answer))
    kept = await bound(text, kappa, counter)
    row = {"node_id": draft.node_id, "kept": kept.tokens, "cut": kept.dropped}
    return kept.text, {**kept.info(kappa, keep_text=False), "drafts": [row]}


async def feedback_workspace(selected: Sequence[Draft], task: CodeTask, kappa: int,
                             counter: Counter | None) -> tuple[str, dict[str, Any]]:
    """The feedback workspace of `selected` within kappa tokens, and its record."""
    return await extract(feedback_drafts(selected, task), kappa, counter)
