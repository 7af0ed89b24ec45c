"""What a run's answers are and how they are graded: math by default, code when the run
carries a code problem.

The engine asks its task for each generation's answer and record (`grade`), and the methods
for the key that says which answers are the same (`key`); views of a stored trace rebuild
that key from what its nodes recorded (`trace_key`). For code the answer is the program,
the record is its test results (see `test_record`), the key its behaviour on the tests and
"correct" means every test passed (`pdr_core.code.identity`).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Protocol

from pdr_core.answer_forms import normalize_answer
from pdr_core.answers import AnswerKey
from pdr_core.extraction import extract_answer

# The code modules (the executor, its runner, the problem files) are imported by the
# functions that make or read a code task: a question run never loads them.
if TYPE_CHECKING:
    from pdr_core.code.executor import Execution, Executor
    from pdr_core.code.identity import CodeTask
    from pdr_core.code.problems import CodeProblem
    from pdr_core.evals.problems import Problem
    from pdr_core.trace import Trace

MAX_MESSAGE = 600  # characters of one failure message, of the error and of stderr kept
NO_PROGRAM = "no program"


class Task(Protocol):
    """How a run reads and grades its answers."""

    kind: str
    code: CodeTask | None

    @property
    def record(self) -> dict[str, Any] | None: ...

    def key(self, answer: str | None) -> str | None: ...

    async def grade(self, text: str) -> tuple[str | None, dict[str, Any] | None]: ...


class MathTask:
    """A question with one final answer, graded against the run's reference answer."""

    kind = "math"
    code: CodeTask | None = None

    @property
    def record(self) -> None:
        return None

    def key(self, answer: str | None) -> str | None:
        return normalize_answer(answer)

    async def grade(self, text: str) -> tuple[str | None, None]:
        return extract_answer(text), None


class ProgramTask:
    """A code problem: the answer is the program in the output, graded by its tests.

    Programs run one at a time (a width-16 round does not start 16 processes at once) and
    each distinct program once (`CodeTask` keeps its result).
    """

    kind = "code"

    def __init__(self, problem: CodeProblem, executor: Executor):
        from pdr_core.code.identity import CodeTask

        self.code: CodeTask = CodeTask(problem, executor)
        self._lock = threading.Lock()

    @property
    def record(self) -> dict[str, Any]:
        """The trace's `task`: the problem, and whether its programs were executed."""
        return {"kind": self.kind, "executed": self.code.executor.allowed,
                **self.code.problem.to_dict()}

    def key(self, answer: str | None) -> str | None:
        with self._lock:
            return self.code.key(answer)

    def _tests(self, program: str | None) -> dict[str, Any]:
        with self._lock:
            if program is None:
                return test_record(None, None, self.code.correct(None))
            execution = self.code.execution(program)
            return test_record(execution, self.code.key(program), self.code.correct(program))

    async def grade(self, text: str) -> tuple[str | None, dict[str, Any]]:
        from pdr_core.code.extract import extract_program

        program = extract_program(text, self.code.problem)
        # Running the tests blocks for up to the wall-clock limit: off the event loop.
        return program, await asyncio.to_thread(self._tests, program)


def _trim(text: str | None, limit: int = MAX_MESSAGE, tail: bool = False) -> str | None:
    if not text:
        return text
    if len(text) <= limit:
        return text
    return "..." + text[-limit:] if tail else text[:limit] + "..."


def test_record(execution: Execution | None, key: str | None,
                correct: bool | None) -> dict[str, Any]:
    """A node's compact test results: status, each test passed or failed with its trimmed
    message, the limit hit, stderr's tail, the time, and the verdict and identity."""
    if execution is None:
        return {"status": NO_PROGRAM, "correct": correct, "key": None, "tests": [],
                "error": "no program was found in the output"}
    return {
        "status": execution.status,
        "correct": correct,
        "key": key,
        "tests": [{"name": t.name, "passed": t.passed, "error": _trim(t.error)}
                  for t in execution.tests],
        "error": _trim(execution.error),
        "limit": execution.limit,
        "stderr": _trim(execution.stderr.strip(), tail=True),
        "truncated": execution.truncated,
        "seconds": execution.seconds,
        "isolation": execution.isolation,
    }


def task_from_record(record: dict[str, Any] | None, execute: bool) -> Task:
    """The task a trace's `task` record describes; its programs run when `execute` or the
    environment switches execution on now (a resumed or forked run asks again)."""
    if record is None or record.get("kind") != ProgramTask.kind:
        return MathTask()
    from pdr_core.code.executor import execution_allowed
    from pdr_core.code.problems import problem_from_row

    problem = problem_from_row(record, "the run's code task")
    return code_task(problem, execution_allowed(execute))


def code_task(problem: CodeProblem, allowed: bool) -> ProgramTask:
    """The task of a run on `problem`; its programs run only when `allowed`."""
    from pdr_core.code.executor import Executor

    return ProgramTask(problem, Executor(allowed))


def trace_key(trace: Trace) -> AnswerKey:
    """The key that says which of a stored trace's answers are the same: the normal form,
    or for code the behaviour its nodes recorded (the text where none was)."""
    if trace.task is None:
        return normalize_answer
    from pdr_core.code.identity import text_key
    # An imported trace's records are untrusted: only text keys count.
    keys = {n.answer: n.tests.get("key") for n in trace.nodes
            if n.answer is not None and isinstance(n.tests, dict)
            and isinstance(n.tests.get("key"), str)}

    def key(answer: str | None) -> str | None:
        if answer is None or not answer.strip():
            return None
        return keys.get(answer) or text_key(answer)

    return key


def final_tests(trace: Trace) -> dict[str, Any] | None:
    """The test record of the generation that wrote the final program (code runs)."""
    if trace.task is None or trace.final_answer is None:
        return None
    return next((n.tests for n in trace.nodes
                 if n.tests is not None and n.answer == trace.final_answer), None)


def answer_text(answer: str | None, tests: dict[str, Any] | None) -> str:
    """An answer as a short label: the answer itself, or for a program what its tests said
    ('passes 5 of 7 tests', 'timeout', 'tests not run')."""
    if not isinstance(tests, dict):
        return answer or ""
    status = str(tests.get("status", ""))
    results = tests.get("tests") if isinstance(tests.get("tests"), list) else []
    if status == "disabled":
        return "program (tests not run)"
    if status in ("passed", "failed"):
        passed = sum(1 for t in results if isinstance(t, dict) and t.get("passed") is True)
        return f"program passing {passed} of {len(results)} tests"
    return f"program: {status}"


def task_for_problem(problem: Problem, allowed: bool) -> ProgramTask | None:
    """The code task of an evaluation row made by `as_eval_problem`; None for a question
    with a reference answer."""
    from pdr_core.code.problems import is_code_problem, problem_from_row

    if not is_code_problem(problem):
        return None
    row = {**problem.extra, "id": problem.id, "question": problem.question}
    return code_task(problem_from_row(row, f"problem {problem.id}"), allowed)
