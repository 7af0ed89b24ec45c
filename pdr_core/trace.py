"""Runs and nodes as plain dataclasses, and their pdr-trace/1 JSON export.

A trace is the fold of a run's events (pdr_core.fold); its budgets are pdr_core.budgets'
rule; reading a pdr-trace/1 document back is pdr_core.trace_import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pdr_core.budgets import Budget, compute_budget
from pdr_core.config import RunConfig

FORMAT = "pdr-trace/1"
# The built-in stages, in pipeline order; stage names are open: any name matching
# STAGE_NAME is a stage.
STAGES = ("draft", "verify", "distill", "refine", "aggregate", "judge", "select", "final")
STAGE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# Stages whose output is not an answer to the question: a workspace, a choice among
# candidates, or a draft's score. Every other stage is a generation, with an answer marked
# right or wrong.
ANSWERLESS_STAGES = frozenset({"distill", "judge", "select", "verify"})
STATUSES = ("running", "completed", "failed", "interrupted")


def gives_answer(stage: str) -> bool:
    """Whether a node of `stage` answers the question (see ANSWERLESS_STAGES)."""
    return stage not in ANSWERLESS_STAGES


class TraceError(ValueError):
    """A trace that cannot be read; the message says what is wrong with it."""


@dataclass
class Node:
    id: str
    stage: str
    round: int
    branch: int
    parent_ids: list[str]
    messages: list[dict[str, str]]
    started_at: str
    text: str = ""
    answer: str | None = None
    correct: bool | None = None
    usage: dict[str, Any] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0}
    )
    finished_at: str | None = None
    status: str = "running"  # running | ok | failed
    error: str | None = None
    error_kind: str | None = None
    reasoning: str = ""
    finish_reason: str | None = None
    call: bool = True
    reused: bool = False
    # Distill nodes: how the workspace passed on was bounded (pdr_core.run.workspace).
    workspace: dict[str, Any] | None = None
    # Code tasks: the program's test results (pdr_core.tasks.test_record).
    tests: dict[str, Any] | None = None
    # A call routed to its own model or endpoint (mixture of agents); None: the run's.
    model: str | None = None
    endpoint: str | None = None

    @property
    def tokens(self) -> int:
        return int(self.usage.get("prompt_tokens", 0)) + int(
            self.usage.get("completion_tokens", 0)
        )


@dataclass(frozen=True)
class RunOutcome:
    """What a run came to: what the run list (pdr_core.store.RunSummary) and a comparison
    of two runs (pdr_core.render.compare.RunResult) both show of it."""

    method: str
    status: str
    final_answer: str | None
    correct: bool | None
    b_seq: int
    b_total: int
    calls: int


@dataclass
class Trace:
    id: str
    question: str
    reference_answer: str | None
    config: dict[str, Any]
    created_at: str
    status: str = "running"
    nodes: list[Node] = field(default_factory=list)
    final_answer: str | None = None
    correct: bool | None = None
    error: str | None = None
    stop_reason: str | None = None
    finished_at: str | None = None
    parent_run_id: str | None = None
    parent_node_id: str | None = None
    # How the final answer was selected when the last round left several (RunFinished).
    final_selection: str | None = None
    # A code task's problem and whether its programs ran (pdr_core.tasks); None for math.
    task: dict[str, Any] | None = None
    # The user's label for the run (the store's name and tags), kept in exports and reports.
    name: str | None = None
    tags: list[str] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def budget(self) -> Budget:
        return compute_budget(self.nodes)

    @property
    def outcome(self) -> RunOutcome:
        """What the run came to, as far as it has gone."""
        budget = self.budget
        return RunOutcome(
            method=str(self.config.get("method", "")), status=self.status,
            final_answer=self.final_answer, correct=self.correct, b_seq=budget.b_seq,
            b_total=budget.b_total, calls=budget.calls,
        )

    @cached_property
    def run_config(self) -> RunConfig:
        """The recorded `config` as typed settings, worked out once (the dict is what is
        serialised; a plugin method's own settings are `method_settings`). Raises what
        `RunConfig.from_dict` raises when the record is not a run this version can make:
        an imported trace's odd settings."""
        return RunConfig.from_dict(self.config)

    @property
    def known_config(self) -> RunConfig | None:
        """`run_config`, or None where the record is not a run this version can make."""
        try:
            return self.run_config
        except (TypeError, ValueError):  # ConfigError and TemplateError are ValueErrors
            return None

    def to_dict(self) -> dict[str, Any]:
        budget = self.budget
        return {
            "format": FORMAT,
            "id": self.id,
            "created_at": self.created_at,
            "question": self.question,
            "reference_answer": self.reference_answer,
            "config": self.config,
            "status": self.status,
            "nodes": [_node_to_dict(n) for n in self.nodes],
            "final_answer": self.final_answer,
            "correct": self.correct,
            "budget": {"b_seq": budget.b_seq, "b_total": budget.b_total, "calls": budget.calls},
            "error": self.error,
            "stop_reason": self.stop_reason,
            "finished_at": self.finished_at,
            "parent_run_id": self.parent_run_id,
            "parent_node_id": self.parent_node_id,
            "final_selection": self.final_selection,
            "task": self.task,
            "name": self.name,
            "tags": list(self.tags),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def _node_to_dict(n: Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "stage": n.stage,
        "round": n.round,
        "branch": n.branch,
        "parent_ids": n.parent_ids,
        "messages": n.messages,
        "text": n.text,
        "answer": n.answer,
        "correct": n.correct,
        "usage": n.usage,
        "started_at": n.started_at,
        "finished_at": n.finished_at,
        "status": "ok" if n.status == "ok" else "failed" if n.status == "failed" else "running",
        "error": n.error,
        "error_kind": n.error_kind,
        "reasoning": n.reasoning,
        "finish_reason": n.finish_reason,
        "call": n.call,
        "reused": n.reused,
        "workspace": n.workspace,
        "tests": n.tests,
        # Only routed calls have them: other traces keep their shape.
        **({"model": n.model, "endpoint": n.endpoint} if n.model or n.endpoint else {}),
    }
