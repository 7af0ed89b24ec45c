"""An evaluation's records in the run store (tables `eval_evaluations` and
`eval_attempts`, made by the store's migrations): its spec, its problems, and which run was
made for which cell."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass

from pdr_core.evals.problems import Problem, fingerprint
from pdr_core.evals.spec import (
    CellKey,
    EvalError,
    EvalSpec,
    Evaluation,
    Setting,
    cell_key,
)
from pdr_core.events import now_iso
from pdr_core.store import Store
from pdr_core.trace import Trace

_EVAL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def new_eval_id() -> str:
    return uuid.uuid4().hex[:10]


def create_evaluation(store: Store, spec: EvalSpec, problems: Sequence[Problem],
                      eval_id: str | None = None) -> Evaluation:
    """Record a new evaluation, or return the stored one with this id when it is the same
    evaluation (same problems, methods, grid, model); raises EvalError when it differs."""
    if not problems:
        raise EvalError("the dataset has no problems")
    store.check_writable()
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise EvalError("problem ids must be unique within an evaluation")
    eval_id = eval_id or new_eval_id()
    if not _EVAL_ID_RE.match(eval_id):
        raise EvalError(f"evaluation id {eval_id!r}: use letters, digits, '.', '_' or '-' "
                        "(at most 64)")
    digest = fingerprint(problems)
    try:
        existing = load_evaluation(store, eval_id)
    except KeyError:
        existing = None
    if existing is not None:
        if existing.dataset_hash != digest:
            raise EvalError(f"evaluation {eval_id} was made on other problems (content hash "
                            f"{existing.dataset_hash}, this dataset {digest}); use a new id")
        old, new = existing.spec.identity(), spec.identity()
        changed = [key for key in new if old.get(key) != new[key] and key != "dataset"]
        if changed:
            detail = ", ".join(f"{k} {old.get(k)!r} -> {new[k]!r}" for k in changed)
            raise EvalError(f"evaluation {eval_id} has other settings ({detail}); resume it "
                            "with the same ones or use a new id")
        return existing
    evaluation = Evaluation(eval_id, spec, list(problems), now_iso(), digest)
    with closing(store.connect()) as conn:
        conn.execute(
            "INSERT INTO eval_evaluations (id, name, created_at, spec, dataset_hash, problems)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (eval_id, spec.name, evaluation.created_at, json.dumps(spec.to_dict()), digest,
             json.dumps([p.to_dict() for p in problems], ensure_ascii=False)),
        )
    return evaluation


def load_evaluation(store: Store, eval_id: str) -> Evaluation:
    """The stored evaluation; KeyError when there is none with this id."""
    with closing(store.connect()) as conn:
        row = conn.execute(
            "SELECT spec, problems, created_at, dataset_hash FROM eval_evaluations"
            " WHERE id = ?", (eval_id,),
        ).fetchone()
    if row is None:
        raise KeyError(f"no evaluation {eval_id!r} in {store.path}")
    spec = EvalSpec.from_dict(json.loads(row[0]))
    problems = [Problem.from_dict(p) for p in json.loads(row[1])]
    return Evaluation(eval_id, spec, problems, row[2], row[3])


@dataclass(frozen=True)
class EvalSummary:
    id: str
    name: str
    created_at: str
    dataset: str
    problems: int


def list_evaluations(store: Store) -> list[EvalSummary]:
    """Stored evaluations, newest first."""
    with closing(store.connect()) as conn:
        rows = conn.execute(
            "SELECT id, name, created_at, spec, json_array_length(problems)"
            " FROM eval_evaluations ORDER BY created_at DESC"
        ).fetchall()
    return [EvalSummary(r[0], r[1], r[2], json.loads(r[3]).get("dataset", ""), r[4])
            for r in rows]


@dataclass
class Attempt:
    run_id: str
    oracle: bool | None
    decided_by: str | None


def latest_attempts(store: Store, eval_id: str) -> dict[CellKey, Attempt]:
    with closing(store.connect()) as conn:
        rows = conn.execute(
            "SELECT problem_id, method, width, depth, max_tokens, run_id, oracle, decided_by"
            " FROM eval_attempts WHERE eval_id = ? ORDER BY started_at, rowid", (eval_id,)
        ).fetchall()
    # Later attempts of a cell replace earlier ones: the retry of a failed run wins.
    return {tuple(r[:5]): Attempt(r[5], None if r[6] is None else bool(r[6]), r[7])
            for r in rows}


def source_run(store: Store, evaluation: Evaluation, problem: Problem, setting: Setting
                ) -> Trace | None:
    """The completed run of the arm a matched single pass matches, on `problem`; None
    while there is none."""
    attempt = latest_attempts(store, evaluation.id).get(cell_key(problem.id, setting.source))
    if attempt is None:
        return None
    summary = store.summaries([attempt.run_id]).get(attempt.run_id)
    if summary is None or summary.status != "completed":
        return None
    return store.get_trace(attempt.run_id)


def cell_runs(store: Store, evaluation: Evaluation):
    """Every cell with its latest attempt and that attempt's run (None where none)."""
    attempts = latest_attempts(store, evaluation.id)
    runs = store.summaries(a.run_id for a in attempts.values())
    for problem, setting in evaluation.cells():
        attempt = attempts.get(cell_key(problem.id, setting))
        yield problem, setting, attempt, runs.get(attempt.run_id) if attempt else None
