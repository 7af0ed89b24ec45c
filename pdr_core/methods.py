"""The methods, as small async stage functions over one engine and one trace format.

- pdr: parallel drafts, distilled into a bounded workspace, refined from it, round by round.
- sr: sequential refinement, the width-1 case.
- single: one long call with the whole per-call budget.
- vote: `width` independent samples and a majority vote (self-consistency).
- rsa, tournament, select: see pdr_core.methods_rsa and pdr_core.selection.

pdr, sr and rsa stop early once a round's answers agree (`stop_when_agree`, see
pdr_core.adaptive).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

from pdr_core.adaptive import converged
from pdr_core.code.executor import execution_allowed
from pdr_core.code.feedback import feedback_workspace
from pdr_core.config import ConfigError, RunConfig
from pdr_core.engine import BudgetExhausted, CallSpec, EventSink, Reuse, RunContext, RunFailed
from pdr_core.events import Event, RunFinished, RunResumed, RunStarted
from pdr_core.method_kit import draft_round, stage_of, user_messages
from pdr_core.methods_rsa import rsa
from pdr_core.operators import (
    Draft,
    answer_tally,
    final_vote,
    format_drafts,
    rank_drafts,
    select_per_sample,
    select_random,
    select_topk,
)
from pdr_core.prompts import PromptSet, code_prompts
from pdr_core.providers.base import Message, Provider
from pdr_core.selection import generative_select, tournament
from pdr_core.tasks import Task, task_from_record
from pdr_core.tokens import estimate_tokens
from pdr_core.trace import Trace, TraceBuilder, gives_answer
from pdr_core.verify import rank_verified, ranking_record, select_final
from pdr_core.workspace import counter_of, extract


async def summarize(ctx: RunContext, drafts: list[Draft], round_: int) -> tuple[str, str]:
    """One summary call over `drafts`: (its node id, the workspace it wrote)."""
    config = ctx.config
    user = config.prompts.summary.format(
        question=ctx.question,
        drafts=format_drafts(drafts, labelled=False),
        answer_tally=answer_tally(drafts, ctx.task.key),
        workspace_tokens=config.workspace_tokens,
    )
    spec = CallSpec("distill", round_, 0, [d.node_id for d in drafts],
                    user_messages(ctx, user), config.distill_budget, config.workspace_tokens)
    [summary] = await ctx.call_round([spec])
    return summary.node_id, summary.text


async def distill(ctx: RunContext, drafts: list[Draft], round_: int,
                  generations: int) -> list[tuple[str, str]]:
    """Workspaces for the next round's generations: (distill node id, workspace text).

    Shared operators return one workspace; per-sample operators one per generation.
    """
    config = ctx.config
    kappa = config.workspace_tokens
    if config.distill == "summary":
        return [await summarize(ctx, drafts, round_)]
    key = ctx.task.key
    ranked, verified, ranking = rank_drafts(drafts, key), [], None
    if config.selection == "verify":  # the model's scores rank the drafts, not consensus
        ranked, scores, verified = await rank_verified(ctx, drafts, round_)
        ranking = ranking_record(ranked, scores)
    if config.distill in ("topk", "feedback"):
        selections = [select_topk(ranked, config.k)]
    elif config.distill == "per-sample-topk":
        selections = select_per_sample(ranked, config.k, generations)
    else:
        selections = select_random(drafts, config.k, generations, config.seed, round_)
    workspaces = []
    for branch, selected in enumerate(selections):
        if config.distill == "feedback":  # the programs with their test results
            assert ctx.task.code is not None  # run() refuses feedback on other tasks
            text, info = await feedback_workspace(selected, ctx.task.code, kappa,
                                                  counter_of(ctx.provider))
        else:
            text, info = await extract(selected, kappa, counter_of(ctx.provider))
        if ranking is not None:
            info = {**info, "ranking": ranking}
        node_id = ctx.record_extract(round_, branch, selected, text, info, verified)
        workspaces.append((node_id, text))
    return workspaces


async def pdr(ctx: RunContext) -> str | None:
    config = ctx.config
    drafts, previous = await draft_round(ctx), []
    for round_ in range(2, config.rounds + 1):
        if ctx.stopped_on_budget or converged(ctx, drafts, previous):
            break
        width = config.schedule[round_ - 1]
        workspaces = await distill(ctx, drafts, round_ - 1, width)
        specs = []
        for branch in range(width):
            distill_id, workspace = workspaces[branch % len(workspaces)]
            user = config.prompts.refine.format(question=ctx.question, workspace=workspace)
            specs.append(CallSpec(stage_of(config, round_), round_, branch, [distill_id],
                                  user_messages(ctx, user), config.max_tokens))
        previous, drafts = drafts, await ctx.call_round(specs)
    return await select_final(ctx, drafts)


async def sr(ctx: RunContext) -> str | None:
    """Refine one answer: round r sees the question and the previous solution (once), plus,
    with `sr_summary`, a summary call's notes on it."""
    config = ctx.config
    [candidate] = await draft_round(ctx)
    previous: list[Draft] = []
    for round_ in range(2, config.rounds + 1):
        if ctx.stopped_on_budget or converged(ctx, [candidate], previous):
            break
        previous = [candidate]
        parents, notes = [candidate.node_id], ""
        if config.sr_summary:
            distill_id, notes = await summarize(ctx, [candidate], round_ - 1)
            parents = [distill_id, candidate.node_id]
        user = config.prompts.sr_refine.format(
            question=ctx.question, draft=candidate.text, workspace=notes
        )
        spec = CallSpec(stage_of(config, round_), round_, 0, parents,
                        user_messages(ctx, user), config.max_tokens)
        [candidate] = await ctx.call_round([spec])
    return candidate.answer


async def single(ctx: RunContext) -> str | None:
    [only] = await draft_round(ctx)
    return only.answer


async def majority(ctx: RunContext) -> str | None:
    return await select_final(ctx, await draft_round(ctx))


METHODS: dict[str, Callable[[RunContext], Awaitable[str | None]]] = {
    "pdr": pdr,
    "sr": sr,
    "single": single,
    "vote": majority,
    "rsa": rsa,
    "tournament": tournament,
    "select": generative_select,
}


# A question past this cannot fit any model's context with room to answer.
MAX_QUESTION_TOKENS = 32_000


def check_question(question: str) -> None:
    """Refuse an empty or oversized question before anything is stored or called."""
    if not question.strip():
        raise ConfigError("question", question,
                          "a non-empty problem statement (the question is empty)")
    tokens = estimate_tokens(question)
    if tokens > MAX_QUESTION_TOKENS:
        raise ConfigError(
            "question", f"{len(question):,} characters (about {tokens:,} tokens)",
            f"at most {MAX_QUESTION_TOKENS:,} tokens: shorten it to the problem itself",
        )


def check_task(config: RunConfig, task: Task | None) -> None:
    """Refuse the feedback operator where there are no tests to feed back."""
    if config.distill == "feedback" and config.method == "pdr" and (
            task is None or task.code is None):
        raise ConfigError("distill", "feedback",
                          "another operator: feedback passes on programs with their test "
                          "results, so it needs a code task (e.g. a HumanEval problem)")


def for_task(config: RunConfig, task: Task | None) -> RunConfig:
    """The configuration as a task runs it: a code task's built-in templates ask for code."""
    check_task(config, task)
    if task is None or task.code is None:
        return config
    return replace(config, prompts=code_prompts(config.prompts))


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _discard(_event: object) -> None:
    pass


async def run(
    question: str,
    config: RunConfig,
    provider: Provider,
    sink: EventSink | None = None,
    reference: str | None = None,
    run_id: str | None = None,
    reuse: Reuse | None = None,
    parent: tuple[str, str] | None = None,
    task: Task | None = None,
) -> Trace:
    """Run `question` with `config` on `provider`, emitting every event to `sink`.

    Returns the folded trace. On cancellation the run is recorded as interrupted (every
    finished node kept) and the CancelledError propagates. `reuse` and `parent` are how a
    fork takes its parent run's unchanged nodes (see `fork`). `task` says what the answers
    are and how they are graded (pdr_core.tasks; a question with one final answer when None):
    a code task's question is its problem's prompt.
    """
    check_question(question)
    config = for_task(config, task)
    builder = TraceBuilder()
    ctx = RunContext(run_id or new_run_id(), question, config, provider, sink or _discard,
                     builder, reuse, task)
    parent_run, parent_node = parent or (None, None)
    ctx.emit(RunStarted(ctx.run_id, question, reference, config.to_dict(),
                        parent_run_id=parent_run, parent_node_id=parent_node,
                        task=ctx.task.record))
    return await _execute(ctx)


async def resume(trace: Trace, events: list[Event], provider: Provider,
                 sink: EventSink | None = None, execute: bool = False) -> Trace:
    """Continue an interrupted or failed run from its stored `events`.

    Every node that finished is taken as it is (no call); the rest is called again, and
    new events are appended to the same run. A code run's new programs run when `execute`
    (or the environment) allows it.
    """
    if trace.status == "completed":
        raise ValueError(f"run {trace.id} is already completed: nothing to resume")
    config = RunConfig.from_dict(trace.config)
    builder = TraceBuilder()
    for event in events:
        builder.apply(event)
    finished = {n.id: n for n in trace.nodes if n.status == "ok"}
    ctx = RunContext(trace.id, trace.question, config, provider, sink or _discard, builder,
                     Reuse(finished, copy=False, same_messages=False),
                     task_from_record(trace.task, execution_allowed(execute)))
    ctx.emit(RunResumed(trace.id))
    return await _execute(ctx)


async def fork(
    parent: Trace,
    node_id: str,
    provider: Provider,
    sink: EventSink | None = None,
    config: RunConfig | None = None,
    messages: list[Message] | None = None,
    run_id: str | None = None,
    execute: bool = False,
) -> Trace:
    """A new run from `parent` that calls `node_id` again (with edited `messages`, or the
    templates and settings of `config`) and everything that depended on it; every other
    node of the parent is reused as it was, without a call. A code run's new programs run
    when `execute` (or the environment) allows it."""
    if node_id not in {n.id for n in parent.nodes}:
        raise KeyError(f"run {parent.id} has no node {node_id!r}")
    stale = descendants(parent, node_id) | {node_id}
    reuse = Reuse(
        nodes={n.id: n for n in parent.nodes if n.status == "ok"},
        stale=frozenset(stale),
        messages={node_id: messages} if messages is not None else None,
        same_messages=False,
    )
    config = config or RunConfig.from_dict(parent.config)
    task = task_from_record(parent.task, execution_allowed(execute))
    return await run(parent.question, config, provider, sink, parent.reference_answer,
                     run_id, reuse, (parent.id, node_id), task)


def fork_config(
    parent: Trace,
    node_id: str,
    width: int | None = None,
    depth: int | None = None,
    max_tokens: int | None = None,
    prompts: PromptSet | None = None,
) -> RunConfig:
    """The parent's configuration with new settings for the rounds after `node_id`.

    Rounds up to the fork node's keep their widths (their nodes are reused); a new width
    applies to the remaining rounds but the last, which stays 1.
    """
    fields = dict(parent.config)
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    if prompts is not None:
        fields["prompts"] = prompts
    if fields.get("method") == "pdr" and (width is not None or depth is not None):
        old = list(fields["width_schedule"])
        keep = parent.node(node_id).round
        depth = depth if depth is not None else len(old)
        rest = width if width is not None else (old[keep] if keep < len(old) - 1 else old[0])
        schedule = old[:min(keep, depth)] + [rest] * max(depth - keep - 1, 0)
        if depth > keep:
            schedule.append(1)
        fields.update(width_schedule=schedule, depth=depth)
    elif width is not None or depth is not None:
        fields.update({k: v for k, v in (("width", width), ("depth", depth)) if v is not None})
    return RunConfig.from_dict(fields)


def descendants(trace: Trace, node_id: str) -> set[str]:
    """Ids of every node that depended, directly or not, on `node_id`."""
    children: dict[str, list[str]] = {}
    for node in trace.nodes:
        for parent_id in node.parent_ids:
            children.setdefault(parent_id, []).append(node.id)
    found: set[str] = set()
    todo = [node_id]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


async def _execute(ctx: RunContext) -> Trace:
    method = METHODS[ctx.config.method]
    try:
        answer = await method(ctx)
    except asyncio.CancelledError:
        ctx.emit(RunFinished(ctx.run_id, "interrupted", error="cancelled"))
        raise
    except BudgetExhausted as exc:
        ctx.emit(_budget_finish(ctx, str(exc)))
    except RunFailed as exc:
        ctx.emit(RunFinished(ctx.run_id, "failed", error=str(exc)))
    else:
        stop = ("budget" if ctx.stopped_on_budget
                else "converged" if ctx.converged else None)
        ctx.emit(RunFinished(ctx.run_id, "completed", final_answer=answer, stop_reason=stop,
                             selection=ctx.selection))
    assert ctx.builder.trace is not None
    return ctx.builder.trace


def _budget_finish(ctx: RunContext, reason: str) -> RunFinished:
    """A run the budget stopped: the vote of the last round that produced answers."""
    trace = ctx.builder.trace
    generated = [n for n in trace.nodes if gives_answer(n.stage) and n.status == "ok"]
    if not generated:
        return RunFinished(ctx.run_id, "failed", error=f"{reason}; no call fitted the budget",
                           stop_reason="budget")
    last = max(n.round for n in generated)
    drafts = [Draft(n.id, n.branch, n.text, n.answer) for n in generated if n.round == last]
    answer, selection = final_vote(drafts, last, ctx.task.key)
    return RunFinished(ctx.run_id, "completed", final_answer=answer, stop_reason="budget",
                       selection=selection)
