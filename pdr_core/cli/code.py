"""The command line's code tasks: which problem a run takes (`--humaneval ID`, or
`--code-problem FILE --id ID`) and whether its programs run (`--execute-code`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pdr_core.config import ConfigError

# The code modules are imported when a code problem is named: a question run never loads them.
if TYPE_CHECKING:
    from pdr_core.code.problems import CodeProblem

NOT_RUN = ("note: no program was run, so whether any is correct is unknown: model-written "
           "code runs only when a person switches it on (--execute-code)")
EXECUTE_HELP = ("run the model's programs against the problem's tests, contained (separate "
                "process, limits, no secrets; see the README); off by default")


def add_code_flags(p: argparse.ArgumentParser, problems: bool = False) -> None:
    """--execute-code, and with `problems` the flags that pick a code problem."""
    if problems:
        p.add_argument("--humaneval", metavar="ID",
                       help="run a HumanEval problem, e.g. HumanEval/3: its prompt is the "
                            "question, its tests grade the programs")
        p.add_argument("--code-problem", metavar="FILE",
                       help="a JSONL file of code problems (id, question, entry_point, "
                            "tests); pick one with --id")
        p.add_argument("--id", dest="problem_id", help="the problem of --code-problem to run")
    p.add_argument("--execute-code", action="store_true", help=EXECUTE_HELP)


def allowed(args: argparse.Namespace) -> bool:
    """Whether programs may run: --execute-code, or the server's environment variable."""
    from pdr_core.code.executor import execution_allowed

    return execution_allowed(bool(getattr(args, "execute_code", False)))


def _pick(problems: list[CodeProblem], wanted: str, source: str) -> CodeProblem:
    for problem in problems:
        if problem.id == wanted:
            return problem
    shown = ", ".join(p.id for p in problems[:5]) + (", ..." if len(problems) > 5 else "")
    raise ConfigError("id", wanted, f"a problem of {source} ({shown})")


def code_problem(args: argparse.Namespace) -> CodeProblem | None:
    """The code problem the flags pick, or None for a question run."""
    if args.humaneval is None and args.code_problem is None:
        if args.problem_id is not None:
            raise ConfigError("id", args.problem_id, "used with --code-problem FILE only")
        return None
    from pdr_core.code.problems import load_humaneval, read_code_jsonl
    from pdr_core.evals.problems import DatasetError

    if args.question is not None or args.question_file is not None or args.answer:
        raise ConfigError("question", args.question or args.question_file or args.answer,
                          "none with a code problem: its prompt is the question and its "
                          "tests grade the programs")
    if args.humaneval is not None:
        if args.code_problem is not None:
            raise ConfigError("humaneval", args.humaneval,
                              "either --humaneval ID or --code-problem FILE, not both")
        return _pick(load_humaneval(), args.humaneval, "HumanEval")
    if args.problem_id is None:
        raise ConfigError("id", None, "the id of the problem of --code-problem to run")
    path = Path(args.code_problem)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("code-problem", args.code_problem,
                          f"a UTF-8 JSONL file this user can read ({exc})") from None
    try:
        problems = read_code_jsonl(text, path.name)
    except DatasetError as exc:
        raise ConfigError("code-problem", args.code_problem, str(exc)) from None
    return _pick(problems, args.problem_id, path.name)
