"""LocalProvider: a GGUF chat model (by default the bundled SmolLM2) in a worker process."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from pdr_core.providers.base import (
    Completion,
    DeltaCallback,
    Message,
    ProviderError,
    Sampling,
    Usage,
)
from pdr_core.providers.local.client import Handler, WorkerDied, WorkerProcess, WorkerSpec
from pdr_core.providers.local.files import model_file

__all__ = ["LOCAL_MODEL_NOTE", "LocalProvider", "default_batch_threads", "default_threads",
           "shared_local_provider"]

LOCAL_MODEL_NOTE = (
    "a small demo model, quick and not clever; point PDR Inspector at a real endpoint for "
    "real reasoning"
)
STALL_TIMEOUT_ENV = "PDR_LOCAL_STALL_TIMEOUT"


BATCH_THREADS_ENV = "PDR_LOCAL_BATCH_THREADS"


def default_threads() -> int:
    """Threads the local model uses unless told otherwise: half the cores, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


def default_batch_threads() -> int:
    """Threads for steps of several tokens (calls decoded together, prompts): every core,
    llama.cpp's own default, unless PDR_LOCAL_BATCH_THREADS says otherwise. Such a step is
    compute-bound, where one call's step is bound by memory; on a machine whose cores are
    busy with other work, fewer threads are faster (llama.cpp's threads wait spinning)."""
    text = os.environ.get(BATCH_THREADS_ENV, "").strip()
    if not text:
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise ProviderError(f"{BATCH_THREADS_ENV} must be a whole number of threads, 1 or "
                            f"more, not {text!r}.", kind="bad_request")
    return int(text)


class LocalProvider:
    """A Provider backed by a GGUF model run in a worker process this provider owns.

    The worker starts on the first call, decodes up to `parallel` calls together and is
    started again after it dies. A prompt longer than `n_ctx` raises a `context_length`
    ProviderError; a completion that reaches the end of `n_ctx` stops with finish_reason
    "length". A dead worker fails the calls in flight with kind "crashed".
    """

    def __init__(
        self,
        model_path: Path | str | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        parallel: int = 16,
        n_threads_batch: int | None = None,
        kv_tokens: int | None = None,
        stall_timeout: float | None = None,
        worker_env: Mapping[str, str] | None = None,
    ):
        if n_ctx < 16:
            raise ProviderError(f"n_ctx must be at least 16 tokens, not {n_ctx!r}.",
                                kind="bad_request")
        for name, value in (("n_threads", n_threads), ("parallel", parallel),
                            ("n_threads_batch", n_threads_batch)):
            if value is not None and value < 1:
                raise ProviderError(f"{name} must be 1 or more, not {value!r}.",
                                    kind="bad_request")
        self.file = model_file(model_path)
        self.model_path = self.file.path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.spec = WorkerSpec(
            path=str(self.file.path), n_ctx=n_ctx, n_threads=self.n_threads,
            n_threads_batch=n_threads_batch or default_batch_threads(), parallel=parallel,
            kv_tokens=max(kv_tokens or 2 * n_ctx, n_ctx),
            stall_timeout=stall_timeout or _stall_timeout(),
            env=tuple(sorted((worker_env or {}).items())),
        )
        self._lock = threading.Lock()
        self._worker: WorkerProcess | None = None

    def __repr__(self) -> str:
        return f"LocalProvider(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    @property
    def model(self) -> str:
        return self.file.name

    @property
    def base_url(self) -> str:
        """"local" for the bundled model, else "local:" and the file, so a resume finds it."""
        return "local" if self.file.bundled else f"local:{self.model_path}"

    def describe(self) -> str:
        """One line for the app and the command line: which model, and what to expect."""
        if self.file.bundled:
            return f"{self.model}: {LOCAL_MODEL_NOTE}"
        return f"{self.model}: {self.model_path.name}, run by llama.cpp on this machine"

    @property
    def worker(self) -> WorkerProcess:
        """The running worker, started now if there is none or the last one died."""
        with self._lock:
            if self._worker is None or not self._worker.alive:
                self._worker = WorkerProcess(self.spec)
            return self._worker

    def close(self) -> None:
        """End the worker (a later call starts a new one)."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    async def count_tokens(self, text: str) -> int | None:
        """Tokens of `text` by the model's own tokenizer (in the worker); None when the
        worker died meanwhile, so the caller falls back to the estimate."""
        return await _count(self.worker, text)

    async def complete(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        on_delta: DeltaCallback | None = None,
    ) -> Completion:
        """Complete `messages` in the worker; `on_delta` is called on this event loop."""
        if sampling.max_tokens < 1:
            raise ProviderError(f"max_tokens must be at least 1, not {sampling.max_tokens}.",
                                kind="bad_request")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[dict] = loop.create_future()
        pieces: list[str] = []

        def deliver(event: str, payload: object) -> None:  # on the loop
            if done.done():
                return
            if event == "delta":
                pieces.append(str(payload))
                if on_delta is not None:
                    on_delta(str(payload))
            elif event == "done":
                done.set_result(payload)  # type: ignore[arg-type]
            else:
                error = payload if isinstance(payload, dict) else {}
                done.set_exception(ProviderError(str(error.get("message")),
                                                 kind=str(error.get("kind", "other"))))

        request = {"messages": [dict(m) for m in messages], "max_tokens": sampling.max_tokens,
                   "temperature": sampling.temperature, "seed": sampling.seed}
        worker = self.worker
        try:
            call_id = worker.submit(request, _on_loop(loop, deliver))
        except WorkerDied as died:
            raise ProviderError(str(died), kind="crashed") from died
        try:
            result = await done
        except asyncio.CancelledError:
            worker.cancel(call_id)
            raise
        return Completion(
            text="".join(pieces),
            usage=Usage(prompt_tokens=int(result["prompt_tokens"]),
                        completion_tokens=int(result["completion_tokens"])),
            finish_reason=result["finish_reason"],
            model=self.model,
        )


def _on_loop(loop: asyncio.AbstractEventLoop, deliver: Handler) -> Handler:
    """A worker handler (called on its reader thread) that runs `deliver` on `loop`."""
    def handler(event: str, payload: object) -> None:
        try:
            loop.call_soon_threadsafe(deliver, event, payload)
        except RuntimeError:
            pass  # the loop has closed: nobody awaits this call any more
    return handler


async def _count(worker: WorkerProcess, text: str) -> int | None:
    loop = asyncio.get_running_loop()
    counted: asyncio.Future[int | None] = loop.create_future()

    def settle(event: str, payload: object) -> None:  # on the loop
        if not counted.done():
            counted.set_result(int(payload) if event == "count" else None)  # type: ignore[arg-type]

    try:
        worker.submit({"text": text}, _on_loop(loop, settle), op="count")
    except WorkerDied:
        return None
    return await counted


def _stall_timeout() -> float:
    text = os.environ.get(STALL_TIMEOUT_ENV, "").strip()
    if not text:
        return 300.0
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ProviderError(f"{STALL_TIMEOUT_ENV} must be a number of seconds above 0, not "
                            f"{text!r}.", kind="bad_request")
    return value


@functools.lru_cache(maxsize=4)
def shared_local_provider(model_path: str | None = None) -> LocalProvider:
    """One provider (so one worker) per model file for the whole process: every browser
    session and run of the app shares it, and its batching."""
    return LocalProvider(model_path)
