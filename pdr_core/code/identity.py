"""What a program is, as an answer: its behaviour on the tests.

Two programs are the same answer when they behave the same: the same outcome, and on each
test the same pass or fail and the same value returned. A program is correct when every
test passes. `CodeTask.key` is the key `pdr_core.answers.answer_clusters` and
`majority_vote` take for code, so voting, clustering and everything built on them group
programs by behaviour; nothing else compares programs.

With execution switched off there is no behaviour to compare: programs are then the same
answer only when their text is (trailing spaces aside), and correctness is unknown.
"""

from __future__ import annotations

import hashlib
import json

from pdr_core.code.executor import Execution, Executor
from pdr_core.code.problems import CodeProblem


def behaviour(execution: Execution) -> str | None:
    """A key equal for equal behaviour; None when the program never ran (disabled)."""
    if execution.status == "disabled":
        return None
    tests = [[t.index, t.passed, t.output] for t in execution.tests]
    payload = json.dumps([execution.status, tests], separators=(",", ":"))
    return "behaviour:" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def text_key(program: str) -> str:
    text = "\n".join(line.rstrip() for line in program.splitlines()).strip("\n")
    return "text:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def verdict(execution: Execution) -> bool | None:
    """Correct when every test passed; None when it never ran."""
    return None if execution.status == "disabled" else execution.passed


class CodeTask:
    """One code problem with its executor; each distinct program runs once."""

    def __init__(self, problem: CodeProblem, executor: Executor):
        self.problem = problem
        self.executor = executor
        self._runs: dict[str, Execution] = {}

    def execution(self, program: str) -> Execution:
        if program not in self._runs:
            self._runs[program] = self.executor.run(program, self.problem.tests,
                                                    self.problem.entry_point)
        return self._runs[program]

    def key(self, program: str | None) -> str | None:
        """The identity of `program` for answer_clusters; None for no program."""
        if program is None or not program.strip():
            return None
        return behaviour(self.execution(program)) or text_key(program)

    def correct(self, program: str | None) -> bool | None:
        """Whether `program` passes every test: False for no program, None when the tests
        cannot be run."""
        if program is None or not program.strip():
            return False if self.executor.allowed else None
        return verdict(self.execution(program))
