"""Async orchestration: runs calls as nodes, emits events, enforces budgets.

The engine never blocks on a consumer: events go to a synchronous sink that folds them
(the store's writer, or pdr_core.fold.Folded), and calls run concurrently up to the
configured limit. The engine reads that one fold: no event is folded twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from pdr_core.config import RunConfig
from pdr_core.events import Event, NodeDelta, NodeFailed, NodeFinished, NodeStarted
from pdr_core.fold import EventSink, FoldingSink, folding
from pdr_core.providers.base import (
    CompletesN,
    Completion,
    Message,
    Provider,
    ProviderError,
    Sampling,
)
from pdr_core.providers.routes import Route, Routes
from pdr_core.run.operators import Draft
from pdr_core.run.workspace import bound, counter_of, workspace_text
from pdr_core.tasks import MathTask, Task
from pdr_core.tokens import estimate_prompt_tokens
from pdr_core.trace import Node, gives_answer


class BudgetExhausted(Exception):
    """The total budget cannot pay for the next call in the worst case."""


class RunFailed(Exception):
    """The run cannot go on; the message is the reason recorded on the run."""


def reused_events(run_id: str, node: Node) -> tuple[NodeStarted, NodeFinished]:
    """A finished node of another run, recorded in `run_id` as reused (no call made)."""
    return (
        NodeStarted(run_id, node.id, node.stage, node.round, node.branch,
                    list(node.parent_ids), [dict(m) for m in node.messages], node.started_at,
                    node.model, node.endpoint),
        NodeFinished(run_id, node.id, node.text, node.answer, dict(node.usage), node.reasoning,
                     node.finish_reason, node.finished_at or node.started_at, node.call,
                     reused=True, workspace=node.workspace, tests=node.tests),
    )


@dataclass(frozen=True)
class Reuse:
    """Finished nodes a run may take instead of calling again (resume and fork).

    A node is reused when its id is in `nodes`, it finished ok and it is not in `stale`
    (the fork node and everything that depended on it). With `same_messages`, the call must
    also send exactly the messages the node was sent. Forks and resumes take finished nodes
    as they were, even where edited templates or a person's edit of that one node would
    word the prompt differently now. `copy` says whether to write the node into this run's
    log: a fork copies its parent's nodes, a resumed run already holds them.
    """

    nodes: dict[str, Node]
    stale: frozenset[str] = frozenset()
    messages: dict[str, list[Message]] | None = None  # edited messages, by node id
    copy: bool = True
    same_messages: bool = True


@dataclass(frozen=True)
class CallSpec:
    """One call a stage wants to make, and what it was conditioned on."""

    stage: str
    round: int
    branch: int
    parent_ids: list[str]
    messages: list[Message]
    max_tokens: int
    # A summary call's output is a workspace: cut to this many tokens before it is passed on.
    workspace_tokens: int | None = None
    # Another model or endpoint than the run's (a mixture of agents' proposer).
    route: Route | None = None


class RunContext:
    """Everything a method needs to make calls as nodes of one run."""

    def __init__(
        self,
        run_id: str,
        question: str,
        config: RunConfig,
        provider: Provider,
        sink: EventSink | None,
        reuse: Reuse | None = None,
        task: Task | None = None,
        routes: Routes | None = None,
    ):
        self.run_id = run_id
        # The provider of each routed call (CallSpec.route), under the one key rule.
        self.routes = routes or Routes(provider)
        # What the answers are and how they are graded and grouped (math unless a code task).
        self.task: Task = task or MathTask()
        self.reuse = reuse
        self.question = question
        self.config = config
        self.provider = provider
        # The run's one fold: the sink's own when it keeps one (the store's writer).
        self._sink: FoldingSink = folding(sink)
        self.builder = self._sink.fold
        self._limit = asyncio.Semaphore(config.concurrency)
        # Tokens spent by finished calls, and worst cases reserved by calls in flight.
        self._spent = 0
        self._reserved = 0
        self.stopped_on_budget = False
        # Set by a method that stopped early because a round's answers agreed.
        self.converged = False
        # How the final answer was selected from a last round wider than 1 (the trace keeps it).
        self.selection: str | None = None

    def emit(self, event: Event) -> None:
        self._sink(event)  # folds it into `builder`, then stores or forwards it

    def seed_for(self, round_: int, branch: int) -> int:
        """Per-call seed: distinct per branch, reproducible for resume and fork."""
        return self.config.seed + 1000 * (round_ - 1) + branch

    def _reserve(self, messages: Sequence[Message], max_tokens: int) -> int:
        worst = estimate_prompt_tokens(messages) + max_tokens
        budget = self.config.total_budget
        if budget is not None and self._spent + self._reserved + worst > budget:
            self.stopped_on_budget = True
            raise BudgetExhausted(
                f"total budget {budget} reached: {self._spent} tokens spent, "
                f"{self._reserved} reserved in flight, next call needs up to {worst}"
            )
        self._reserved += worst
        return worst

    async def grade(self, stage: str, text: str) -> tuple[str | None, dict | None]:
        """A generation's answer and test record, by the run's task; a workspace has none."""
        if not gives_answer(stage):
            return None, None
        return await self.task.grade(text)

    def node_id(self, stage: str, round_: int, branch: int) -> str:
        return f"r{round_}-{stage}-{branch}"

    def edited(self, spec: CallSpec) -> CallSpec:
        """The spec with a person's edited messages for its node, if any."""
        node_id = self.node_id(spec.stage, spec.round, spec.branch)
        edits = self.reuse.messages if self.reuse else None
        if edits and node_id in edits:
            return CallSpec(spec.stage, spec.round, spec.branch, spec.parent_ids,
                            edits[node_id], spec.max_tokens, spec.workspace_tokens, spec.route)
        return spec

    def reused(self, node_id: str, messages: Sequence[Message], text: str | None = None
               ) -> Draft | None:
        """A finished node to take instead of a call, recorded as reused; else None."""
        reuse = self.reuse
        if reuse is None or node_id in reuse.stale:
            return None
        node = reuse.nodes.get(node_id)
        if node is None or node.status != "ok":
            return None
        if reuse.same_messages and (node.messages != list(messages)
                                    or (text is not None and node.text != text)):
            return None
        if reuse.copy:
            for event in reused_events(self.run_id, node):
                self.emit(event)
        if node.call:
            self._spent += node.tokens
        return Draft(node.id, node.branch, workspace_text(node), node.answer)

    async def call(self, spec: CallSpec) -> Draft | None:
        """Make one call as a node; None when it failed or the budget forbade it."""
        spec = self.edited(spec)
        cached = self.reused(self.node_id(spec.stage, spec.round, spec.branch), spec.messages)
        if cached is not None:
            return cached
        async with self._limit:
            try:
                worst = self._reserve(spec.messages, spec.max_tokens)
            except BudgetExhausted:
                return None
            node_id = self.node_id(spec.stage, spec.round, spec.branch)
            provider = self.routes.provider(spec.route)
            routed = (provider.model, provider.base_url) if spec.route else (None, None)
            self.emit(NodeStarted(self.run_id, node_id, spec.stage, spec.round, spec.branch,
                                  list(spec.parent_ids), [dict(m) for m in spec.messages],
                                  model=routed[0], endpoint=routed[1]))
            sampling = Sampling(
                max_tokens=spec.max_tokens,
                temperature=self.config.temperature,
                seed=self.seed_for(spec.round, spec.branch),
            )

            def on_delta(text: str) -> None:
                self.emit(NodeDelta(self.run_id, node_id, text))

            try:
                completion = await provider.complete(spec.messages, sampling, on_delta)
            except ProviderError as exc:
                self._reserved -= worst
                self.emit(NodeFailed(self.run_id, node_id, str(exc), exc.kind,
                                     text=self.builder.partial.get(node_id, "")))
                return None
            except asyncio.CancelledError:
                self._reserved -= worst
                self.emit(NodeFailed(self.run_id, node_id, "cancelled before it finished",
                                     "cancelled", text=self.builder.partial.get(node_id, "")))
                raise
            self._reserved -= worst
            self._spent += completion.usage.total
            answer, tests = await self.grade(spec.stage, completion.text)
            text, info = completion.text, None
            if spec.workspace_tokens is not None:
                kappa = spec.workspace_tokens
                bounded = await bound(text, kappa, counter_of(self.provider))
                text, info = bounded.text, bounded.info(kappa, keep_text=True)
            self.emit(NodeFinished(self.run_id, node_id, completion.text, answer,
                                   completion.usage.to_dict(), completion.reasoning,
                                   completion.finish_reason, workspace=info, tests=tests))
            return Draft(node_id, spec.branch, text, answer)

    def _batcher(self, specs: Sequence[CallSpec]) -> CompletesN | None:
        """The provider, when identical prompts (round-1 drafts) can be one request with `n`
        choices through it: one prefill instead of M."""
        provider = self.provider
        if (
            len(specs) > 1
            and isinstance(provider, CompletesN)
            and all(s.route is None for s in specs)
            # Once the endpoint is known to ignore n, separate calls fail separately.
            and provider.supports_n is not False
            and all(s.messages == specs[0].messages for s in specs[1:])
        ):
            return provider
        return None

    async def call_shared(self, batcher: CompletesN, specs: Sequence[CallSpec]
                          ) -> list[Draft | None]:
        """Make identical calls as one `n`-choice request; each choice is its own node."""
        async with self._limit:
            reserved: list[tuple[CallSpec, str, int]] = []
            for spec in specs:
                try:
                    worst = self._reserve(spec.messages, spec.max_tokens)
                except BudgetExhausted:
                    break
                node_id = self.node_id(spec.stage, spec.round, spec.branch)
                reserved.append((spec, node_id, worst))
            if not reserved:
                return [None] * len(specs)
            for spec, node_id, _ in reserved:
                self.emit(NodeStarted(self.run_id, node_id, spec.stage, spec.round,
                                      spec.branch, list(spec.parent_ids),
                                      [dict(m) for m in spec.messages]))
            first = reserved[0][0]
            sampling = Sampling(max_tokens=first.max_tokens, temperature=self.config.temperature,
                                seed=self.seed_for(first.round, first.branch))
            ids = [node_id for _, node_id, _ in reserved]

            def on_delta(index: int, text: str) -> None:
                if index < len(ids):
                    self.emit(NodeDelta(self.run_id, ids[index], text))

            released = sum(worst for _, _, worst in reserved)
            try:
                # An endpoint that ignores n gets the choices as separate calls: at most
                # the run's concurrency of them at once.
                completions = await batcher.complete_n(
                    first.messages, sampling, len(reserved), on_delta,
                    max_parallel=self.config.concurrency)
            except ProviderError as exc:
                self._reserved -= released
                completions = self._shared_failed(exc, ids)
                if not any(completions):
                    return [None] * len(specs)
            except asyncio.CancelledError:
                self._reserved -= released
                for node_id in ids:
                    self.emit(NodeFailed(self.run_id, node_id, "cancelled before it finished",
                                         "cancelled", text=self.builder.partial.get(node_id, "")))
                raise
            else:
                self._reserved -= released
            drafts: list[Draft | None] = []
            for (spec, node_id, _), completion in zip(reserved, completions, strict=True):
                if completion is None:  # failed above
                    drafts.append(None)
                    continue
                self._spent += completion.usage.total
                answer, tests = await self.grade(spec.stage, completion.text)
                self.emit(NodeFinished(self.run_id, node_id, completion.text, answer,
                                       completion.usage.to_dict(), completion.reasoning,
                                       completion.finish_reason, tests=tests))
                drafts.append(Draft(node_id, spec.branch, completion.text, answer))
            return drafts + [None] * (len(specs) - len(drafts))

    def _shared_failed(self, exc: ProviderError, ids: list[str]) -> list[Completion | None]:
        """The choices of a failed shared request that did come back (None for the others,
        each recorded as failed with its own cause)."""
        partial = exc.partial or []
        completions = [partial[i] if i < len(partial) else None for i in range(len(ids))]
        for index, (node_id, completion) in enumerate(zip(ids, completions, strict=True)):
            if completion is None:
                cause = exc.causes.get(index, exc)
                self.emit(NodeFailed(self.run_id, node_id, str(cause), cause.kind,
                                     text=self.builder.partial.get(node_id, "")))
        return completions

    async def call_round(self, specs: Sequence[CallSpec]) -> list[Draft]:
        """Run a stage's calls concurrently; the survivors, in branch order.

        Raises RunFailed when every call failed, naming the first error.
        """
        specs = [self.edited(spec) for spec in specs]
        batcher = self._batcher(specs)
        if batcher is not None:
            # Resumed or forked runs may hold some of the choices already.
            cached = [self.reused(self.node_id(s.stage, s.round, s.branch), s.messages)
                      for s in specs]
            fresh = [s for s, c in zip(specs, cached, strict=True) if c is None]
            called = iter(await self.call_shared(batcher, fresh) if len(fresh) > 1 else
                          [await self.call(s) for s in fresh])
            results = [c if c is not None else next(called) for c in cached]
        else:
            results = await asyncio.gather(*(self.call(spec) for spec in specs))
        survivors = [r for r in results if r is not None]
        if not survivors and specs:
            if self.stopped_on_budget:
                raise BudgetExhausted(f"total budget {self.config.total_budget} reached")
            first = specs[0]
            errors = [
                n.error for n in self.builder.trace.nodes
                if n.round == first.round and n.stage == first.stage and n.error
            ]
            reason = errors[0] if errors else "no call could be made"
            raise RunFailed(
                f"round {first.round} {first.stage}: all {len(specs)} call(s) failed: {reason}"
            )
        return survivors

    def record_extract(self, round_: int, branch: int, selected: Sequence[Draft],
                       workspace: str, info: dict | None = None,
                       verified: Sequence[str] = ()) -> str:
        """An extractive workspace as a distill node: no call, parents = its drafts, then
        the `verified` nodes whose scores chose them (a verify selection)."""
        node_id = self.node_id("distill", round_, branch)
        if self.reused(node_id, [], workspace) is not None:
            return node_id
        self.emit(NodeStarted(self.run_id, node_id, "distill", round_, branch,
                              [d.node_id for d in selected] + list(verified), []))
        self.emit(NodeFinished(self.run_id, node_id, workspace, None,
                               {"prompt_tokens": 0, "completion_tokens": 0}, call=False,
                               workspace=info))
        return node_id
