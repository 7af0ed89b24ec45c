"""Running a method: a run, its resumption and its forks, over one engine and one trace
format.

The methods themselves are async stage functions declared through the method API
(pdr_core.run.api; the built-ins in pdr_core.run.registry: pdr and its baselines in
pdr_core.run.pdr, rsa in pdr_core.run.rsa, tournament and select in
pdr_core.run.selection) or by a plugin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

from pdr_core.config import CODE_ONLY_DISTILLS, ConfigError, RunConfig, default_concurrency
from pdr_core.events import Event, RunFinished, RunResumed, RunStarted
from pdr_core.fold import EventSink, folding
from pdr_core.ids import new_run_id
from pdr_core.prompts import PromptSet, code_prompts
from pdr_core.providers.base import Message, Provider
from pdr_core.providers.routes import Routes
from pdr_core.run.engine import BudgetExhausted, Reuse, RunContext, RunFailed
from pdr_core.run.operators import Draft, final_vote
from pdr_core.run.registry import get_method
from pdr_core.tasks import Task, task_from_record
from pdr_core.tokens import estimate_tokens
from pdr_core.trace import Trace, gives_answer

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
    if task is not None and task.code is not None:
        return
    if config.distill in CODE_ONLY_DISTILLS and config.method == "pdr":
        raise ConfigError("distill", config.distill,
                          "another operator: feedback passes on programs with their test "
                          "results, so it needs a code task (e.g. a HumanEval problem)")
    if config.sr_feedback and config.method == "sr":
        raise ConfigError("sr_feedback", True,
                          "false: it passes on the previous program's test results, so it "
                          "needs a code task (e.g. a HumanEval problem)")


def for_task(config: RunConfig, task: Task | None) -> RunConfig:
    """The configuration as a task runs it: a code task's built-in templates ask for code."""
    check_task(config, task)
    if task is None or task.code is None:
        return config
    return replace(config, prompts=code_prompts(config.prompts))


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
    environ: Mapping[str, str] | None = None,
) -> Trace:
    """Run `question` with `config` on `provider`, emitting every event to `sink`.

    Returns the folded trace (the sink's own fold when it keeps one: pdr_core.fold). On
    cancellation the run is recorded as interrupted (every finished node kept) and the
    CancelledError propagates. `reuse` and `parent` are how a fork takes its parent run's
    unchanged nodes (see `fork`). `task` says what the answers are and how they are graded
    (pdr_core.tasks; a question with one final answer when None): a code task's question
    is its problem's prompt. `environ`: what the key rule reads for a routed call's endpoint
    (the app's, with its secrets); None: the process's.
    """
    check_question(question)
    config = get_method(config.method).prepare(for_task(config, task))
    ctx = RunContext(run_id or new_run_id(), question, config, provider, sink, reuse, task,
                     _routes(provider, environ))
    parent_run, parent_node = parent or (None, None)
    ctx.emit(RunStarted(ctx.run_id, question, reference, config.to_dict(),
                        parent_run_id=parent_run, parent_node_id=parent_node,
                        task=ctx.task.record))
    return await _execute(ctx)


def _routes(provider: Provider, environ: Mapping[str, str] | None) -> Routes | None:
    return None if environ is None else Routes(provider, environ)


async def resume(trace: Trace, events: list[Event], provider: Provider,
                 sink: EventSink | None = None, execute: bool = False,
                 environ: Mapping[str, str] | None = None) -> Trace:
    """Continue an interrupted or failed run from its stored `events`.

    Every node that finished is taken as it is (no call); the rest is called again, and
    new events are appended to the same run. A code run's new programs run when `execute`
    (or the environment) allows it.
    """
    if trace.status == "completed":
        raise ValueError(f"run {trace.id} is already completed: nothing to resume")
    config = trace.run_config
    get_method(config.method)  # a plugin's module that cannot be imported stops it here
    sink = folding(sink)
    if sink.fold.trace is None:  # the store's resume writer has folded them already
        for event in events:
            sink.fold.apply(event)
    finished = {n.id: n for n in trace.nodes if n.status == "ok"}
    ctx = RunContext(trace.id, trace.question, config, provider, sink,
                     Reuse(finished, copy=False, same_messages=False),
                     task_from_record(trace.task, execute),
                     _routes(provider, environ))
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
    environ: Mapping[str, str] | None = None,
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
    config = config or parent.run_config
    task = task_from_record(parent.task, execute)
    return await run(parent.question, config, provider, sink, parent.reference_answer,
                     run_id, reuse, (parent.id, node_id), task, environ)


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
    fields = parent.run_config.to_dict()
    if (width is not None or depth is not None) and fields.get("concurrency") == (
            default_concurrency(fields.get("width_schedule") or [1])):
        fields.pop("concurrency")  # the default follows the new widths
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
    method = get_method(ctx.config.method)
    try:
        answer = await method.run(ctx)
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
