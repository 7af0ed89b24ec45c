"""What a fork changed against its original, and one-call forks from the playground."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from pdr_core.events import NodeFinished, NodeStarted, RunFinished, RunStarted
from pdr_core.extraction import extract_answer
from pdr_core.fold import EventSink, folding
from pdr_core.ids import new_run_id
from pdr_core.providers.base import Completion, Message, Provider
from pdr_core.providers.routes import Route, Routes
from pdr_core.run.engine import reused_events
from pdr_core.run.methods import descendants
from pdr_core.run.operators import Draft, final_vote
from pdr_core.tasks import answer_text, trace_key
from pdr_core.trace import Node, Trace


@dataclass(frozen=True)
class RoundAnswers:
    round: int
    # normalised answer (a program: what its tests said) -> how many generations gave it
    original: dict[str, int]
    fork: dict[str, int]


@dataclass(frozen=True)
class ForkComparison:
    changed: list[str]  # nodes the fork called again (or new ones)
    reused: list[str]
    dropped: list[str]  # nodes of the original the fork does not have
    rounds: list[RoundAnswers]
    original_answer: str | None
    fork_answer: str | None
    answer_changed: bool
    original_correct: bool | None
    fork_correct: bool | None

    @property
    def verdict(self) -> str:
        """One sentence on what happened to the final answer."""
        if not self.answer_changed:
            return f"The final answer did not change ({self.fork_answer})."
        moved = f"The final answer changed from {self.original_answer} to {self.fork_answer}"
        if self.original_correct is None or self.fork_correct is None:
            return moved + "."
        if self.fork_correct and not self.original_correct:
            return moved + ": it became right."
        if self.original_correct and not self.fork_correct:
            return moved + ": it became wrong."
        return moved + f": still {'right' if self.fork_correct else 'wrong'}."


def _answers(trace: Trace, round_: int) -> dict[str, int]:
    """How many of the round's generations gave each answer, grouped by the run's key (a
    code run's programs by behaviour), each group named by its first member."""
    key = trace_key(trace)
    counts: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for node in trace.nodes:
        if node.round != round_ or node.stage == "distill" or node.status != "ok":
            continue
        group = key(node.answer) or "no answer"
        counts[group] += 1
        if group not in labels:
            label = (answer_text(node.answer, node.tests)
                     if trace.task is not None and group != "no answer" else group)
            while label in labels.values():  # two behaviours, one description
                label += "′"
            labels[group] = label
    return {labels[group]: count for group, count in counts.most_common()}


def fork_comparison(original: Trace, fork: Trace) -> ForkComparison:
    """A fork against its original, aligned by node id (ids follow the run's structure)."""
    fork_ids = {n.id for n in fork.nodes}
    rounds = sorted({n.round for n in original.nodes} | {n.round for n in fork.nodes})
    return ForkComparison(
        changed=[n.id for n in fork.nodes if not n.reused],
        reused=[n.id for n in fork.nodes if n.reused],
        dropped=[n.id for n in original.nodes if n.id not in fork_ids],
        rounds=[RoundAnswers(r, _answers(original, r), _answers(fork, r)) for r in rounds],
        original_answer=original.final_answer,
        fork_answer=fork.final_answer,
        answer_changed=trace_key(original)(original.final_answer)
        != trace_key(fork)(fork.final_answer),
        original_correct=original.correct,
        fork_correct=fork.correct,
    )


def call_provider(node: Node, routes: Routes) -> Provider:
    """Who a one-call fork (the playground) of `node` calls: the model and endpoint the node
    recorded (a mixture of agents' proposer or aggregator), chosen by `routes` under the
    one key rule; the run's provider (`routes.default`) for a node that recorded none."""
    if node.model is None:
        return routes.default
    return routes.provider(Route(node.model, node.endpoint))


def keep_call(
    parent: Trace,
    node_id: str,
    messages: list[Message],
    completion: Completion,
    sink: EventSink,
) -> Trace:
    """Store a playground call as a fork of one node: every node that did not depend on it
    is reused, the node takes the new output, and what depended on it is left out; the
    fork is then interrupted there, so Resume calls the rest."""
    old = parent.node(node_id)
    stale = descendants(parent, node_id)
    run_id = new_run_id()
    emit = folding(sink)
    builder = emit.fold

    emit(RunStarted(run_id, parent.question, parent.reference_answer, parent.config,
                    parent_run_id=parent.id, parent_node_id=node_id))
    for node in parent.nodes:
        if node.id in stale or (node.status != "ok" and node.id != node_id):
            continue
        if node.id == node_id:
            answer = extract_answer(completion.text) if old.stage != "distill" else None
            # The call went where `call_provider` sent it: the node's own model and endpoint.
            emit(NodeStarted(run_id, node.id, node.stage, node.round, node.branch,
                             list(node.parent_ids), [dict(m) for m in messages],
                             model=node.model, endpoint=node.endpoint))
            emit(NodeFinished(run_id, node.id, completion.text, answer,
                              completion.usage.to_dict(), completion.reasoning,
                              completion.finish_reason))
            continue
        for event in reused_events(run_id, node):
            emit(event)
    trace = builder.trace
    last_round = parent.run_config.rounds
    if stale:
        emit(RunFinished(run_id, "interrupted",
                         error=f"one-call fork at {node_id}: resume it to call what follows"))
    else:
        last = [Draft(n.id, n.branch, n.text, n.answer) for n in trace.nodes
                if n.round == last_round and n.stage != "distill" and n.status == "ok"]
        answer, selection = final_vote(last, last_round)
        emit(RunFinished(run_id, "completed", final_answer=answer, selection=selection))
    return builder.trace
