"""Runs as jobs: a run executes on its own thread and event loop and writes to the store,
so the page that started it can rerun, change or close without stopping it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from pdr_core.config import RunConfig
from pdr_core.events import Event
from pdr_core.fold import EventSink, Tee
from pdr_core.ids import new_run_id
from pdr_core.providers.base import Message, Provider
from pdr_core.run.baseline import BASELINE_TAG, baseline_config, baseline_name, model_context
from pdr_core.run.methods import fork, resume, run
from pdr_core.store import RunWriter, Store
from pdr_core.tasks import Task
from pdr_core.trace import Trace

# What a job executes: given the event sink, the coroutine of the run.
Action = Callable[[EventSink], Awaitable[Trace]]


class LoopThread:
    """Work on its own thread and event loop: whether it still runs, and how to stop it.

    Subclasses set `_thread` when they start, and `_loop` and `_task` from inside the loop.
    """

    _thread: threading.Thread | None
    _loop: asyncio.AbstractEventLoop | None
    _task: asyncio.Task | None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def cancel(self) -> None:
        """Cancel the work; what finished stays, and runs in flight become interrupted."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


@dataclass
class RunJob(LoopThread):
    """One run in the background. Read progress from the store by `run_id`."""

    store: Store
    question: str
    config: RunConfig
    provider: Provider
    reference: str | None = None
    run_id: str = field(default_factory=new_run_id)
    extra_sink: EventSink | None = None
    task: Task | None = None  # a code problem's task (pdr_core.tasks); None for a question
    # What the key rule reads for a routed call's endpoint (the app's); None: the process's.
    environ: Mapping[str, str] | None = None
    trace: Trace | None = field(default=None, init=False)
    error: BaseException | None = field(default=None, init=False)
    _action: Action | None = field(default=None, init=False, repr=False)
    _writer: Callable[[], RunWriter] | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)
    _ready: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @classmethod
    def resuming(cls, store: Store, trace: Trace, provider: Provider,
                 environ: Mapping[str, str] | None = None) -> RunJob:
        """A job that continues an interrupted or failed stored run."""
        job = cls(store, trace.question, trace.run_config, provider,
                  trace.reference_answer, trace.id)
        events = store.events(trace.id)
        job._writer = lambda: store.resume_writer(trace.id)
        job._action = lambda sink: resume(trace, events, provider, sink, environ=environ)
        return job

    @classmethod
    def forking(cls, store: Store, parent: Trace, node_id: str, provider: Provider,
                config: RunConfig, messages: list[Message] | None = None,
                environ: Mapping[str, str] | None = None) -> RunJob:
        """A job that forks `parent` at `node_id` (see `pdr_core.run.methods.fork`)."""
        job = cls(store, parent.question, config, provider, parent.reference_answer)
        job._writer = lambda: store.writer(name=f"fork of {parent.id} at {node_id}")
        job._action = lambda sink: fork(parent, node_id, provider, sink, config, messages,
                                        job.run_id, environ=environ)
        return job

    @classmethod
    def matched_baseline(cls, store: Store, source: Trace, provider: Provider,
                         context_tokens: int | None = None) -> tuple[RunJob, str | None]:
        """A job that runs a single pass at `source`'s B_seq (pdr_core.run.baseline), capped by
        the model's context (`context_tokens`, else the provider's own); and the note on a
        cap, or None."""
        context = context_tokens or model_context(provider)
        config, note = baseline_config(source, context)
        job = cls(store, source.question, config, provider, source.reference_answer)
        job._writer = lambda: store.writer(name=baseline_name(source.id), tags=(BASELINE_TAG,))
        return job, note

    def start(self) -> RunJob:
        """Start the run on its thread; StoreError at once when the store cannot be
        written (damaged, read-only), before anything is called."""
        self.store.check_writable()
        self._thread = threading.Thread(target=self._main, name=f"pdr-run-{self.run_id}",
                                        daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def _main(self) -> None:
        def ready(_event: Event) -> None:
            # start() returns once the run is in the store, so a reader finds it at once.
            self._ready.set()

        async def main(sink: Tee) -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            if self._action is not None:
                self.trace = await self._action(sink)
            else:
                self.trace = await run(self.question, self.config, self.provider, sink,
                                       reference=self.reference, run_id=self.run_id,
                                       task=self.task, environ=self.environ)

        try:
            # The writer's SQLite connection belongs to this thread.
            writer = self._writer() if self._writer else self.store.writer()
            # The writer's fold is the run's one fold (the engine reads it).
            asyncio.run(main(Tee(writer, self.extra_sink, ready)))
        except asyncio.CancelledError:
            pass  # recorded as interrupted by the engine
        except BaseException as exc:  # noqa: BLE001 - kept and re-raised by wait()
            self.error = exc
        finally:
            self._ready.set()

    def wait(self, timeout: float | None = None) -> Trace | None:
        """Block until the run ends; re-raises an unexpected error from the job thread."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.trace


@dataclass
class JobRegistry:
    """The runs one process runs, by run id, so that any page or session of the app (a
    reloaded tab, History) finds a run started elsewhere: its live state, its Cancel.

    Finished jobs stay for their error (a run that stopped unexpectedly says why), the last
    `keep_finished` of them; running ones always stay."""

    keep_finished: int = 32
    _jobs: dict[str, RunJob] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, job: RunJob) -> RunJob:
        """Start `job` and keep it (StoreError, and nothing kept, when the store cannot be
        written)."""
        job.start()
        with self._lock:
            self._jobs[job.run_id] = job
            # The job just started is never pruned, even if it has already finished.
            finished = [k for k, j in self._jobs.items()
                        if not j.running and k != job.run_id]
            for run_id in finished[:max(0, len(finished) - self.keep_finished)]:
                del self._jobs[run_id]
        return job

    def get(self, run_id: str) -> RunJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def running(self) -> list[RunJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.running]
