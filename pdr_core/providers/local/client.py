"""The parent's side of the local-model worker: start it, talk to it, survive its death.

The worker is a child process speaking JSON lines (see `worker.py`). Three threads per
worker keep the parent responsive whatever the child does: one reads replies and hands each
to the call it belongs to, one keeps the last lines the child wrote to stderr (for the
message when it dies), and a watchdog kills a worker that has sent nothing for too long.
When the worker dies, every call in flight fails with a message that says which signal,
what it likely means and what to do; the next call starts a new worker.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["Handler", "WorkerDied", "WorkerProcess", "WorkerSpec", "crash_message"]

# Called on the reader thread with (event, payload): "delta" (text), "done" (a dict of the
# finish reason and usage), "count" (tokens of a text) or "error" (a dict of message and kind).
Handler = Callable[[str, object], None]
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


@dataclass(frozen=True)
class WorkerSpec:
    """What the worker loads and how long it may stay silent."""

    path: str
    n_ctx: int
    n_threads: int
    n_threads_batch: int
    parallel: int
    kv_tokens: int
    stall_timeout: float = 300.0
    load_timeout: float = 600.0
    env: tuple[tuple[str, str], ...] = ()

    def load_request(self) -> dict:
        return {"op": "load", "path": self.path, "n_ctx": self.n_ctx,
                "n_threads": self.n_threads, "n_threads_batch": self.n_threads_batch,
                "parallel": self.parallel,
                "kv_tokens": self.kv_tokens}


class WorkerDied(Exception):
    """The worker is gone; its message is what `crash_message` said."""


class WorkerProcess:
    """One running worker and the calls it is serving."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        env = {**os.environ, **dict(spec.env)}
        # The worker imports this package wherever the parent was started from.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pdr_core.providers.local.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, text=True, encoding="utf-8", errors="replace",
            # Its own session: a terminal's Ctrl-C goes to the parent, which ends the calls.
            start_new_session=True,
        )
        self._lock = threading.Lock()
        self._handlers: dict[int, Handler] = {}
        self._next_id = 0
        self._ready = False
        self._heard = time.monotonic()
        self._stderr: deque[str] = deque(maxlen=12)
        self._ended_why: str | None = None
        self.death: str | None = None
        self._status: queue.Queue[dict] = queue.Queue()
        self._write(spec.load_request())
        for target in (self._read_replies, self._read_stderr, self._watch):
            threading.Thread(target=target, daemon=True,
                             name=f"pdr-local-{target.__name__.strip('_')}").start()
        # Closing stdin ends the worker when this object is collected.
        weakref.finalize(self, _close_pipe, self.process.stdin)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.death is None

    def submit(self, request: dict, handler: Handler, op: str = "complete") -> int:
        """Send a request (a completion, or a token count); `handler` gets its events.
        Raises WorkerDied."""
        with self._lock:
            if self.death is not None:
                raise WorkerDied(self.death)
            self._next_id += 1
            call_id = self._next_id
            if not self._handlers:
                self._heard = time.monotonic()  # the silence that counts starts now
            self._handlers[call_id] = handler
        self._write({**request, "op": op, "id": call_id})
        return call_id

    def cancel(self, call_id: int) -> None:
        """Stop a call at its next token; nothing more reaches its handler."""
        with self._lock:
            if self._handlers.pop(call_id, None) is None:
                return
        self._write({"op": "cancel", "id": call_id})

    def status(self, timeout: float = 30.0) -> dict[str, int]:
        """The worker's counts: calls active and waiting, prompt tokens read and copied."""
        self._write({"op": "status"})
        try:
            return self._status.get(timeout=timeout)
        except queue.Empty:
            raise WorkerDied(self.death or f"no status from the worker in {timeout:g} s") from None

    def close(self, wait: float = 5.0) -> None:
        """End the worker: close its stdin, then kill it if it has not exited in `wait` s."""
        _close_pipe(self.process.stdin)
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            self.kill("closed")

    def kill(self, why: str) -> None:
        self._ended_why = why
        if self.process.poll() is None:
            self.process.kill()

    # ----- threads ------------------------------------------------------------------------

    def _write(self, message: dict) -> None:
        line = json.dumps(message, ensure_ascii=False) + "\n"
        try:
            with self._lock:
                self.process.stdin.write(line)  # type: ignore[union-attr]
                self.process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError, OSError):
            # The worker is gone: the reply reader reports it to every call in flight.
            pass

    def _read_replies(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self._heard = time.monotonic()
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._dispatch(message)
        status = self.process.wait()
        time.sleep(0.05)  # let the stderr reader take the last lines
        self._die(crash_message(status, self._ended_why, self.spec, list(self._stderr)))

    def _dispatch(self, message: dict) -> None:
        if "ready" in message:
            self._ready = True
            return
        if "status" in message:
            self._status.put(message["status"])
            return
        if "fatal" in message:
            self._ended_why = "fatal:" + message["fatal"]["message"]
            return
        call_id = message.get("id")
        for event in ("delta", "done", "error", "count"):
            if event in message:
                with self._lock:
                    handler = (self._handlers.get(call_id) if event == "delta"
                               else self._handlers.pop(call_id, None))
                if handler is not None:
                    handler(event, message[event])
                return

    def _die(self, why: str) -> None:
        with self._lock:
            self.death = why
            handlers, self._handlers = self._handlers, {}
        kind = "bad_request" if (self._ended_why or "").startswith("fatal:") else "crashed"
        for handler in handlers.values():
            handler("error", {"message": why, "kind": kind})

    def _read_stderr(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            if line.strip():
                self._stderr.append(line.rstrip())

    def _watch(self) -> None:
        while self.process.poll() is None:
            time.sleep(0.5)
            with self._lock:
                waiting = bool(self._handlers)
            limit = self.spec.stall_timeout if self._ready else self.spec.load_timeout
            if waiting and time.monotonic() - self._heard > limit:
                self.kill(f"stalled:{limit:g}")


def _close_pipe(pipe: IO[str] | None) -> None:
    if pipe is None:
        return
    try:
        pipe.close()
    except (BrokenPipeError, OSError):
        pass


_SIGNAL_MEANING = {
    "SIGILL": "the llama.cpp library uses CPU instructions this CPU cannot run (it was "
              "built for another CPU, or natively on a machine whose VM hides instructions "
              "its CPU advertises). Rebuild it for the portable baseline: `make clean && make "
              "run` (see the README's section on the build)",
    "SIGSEGV": "llama.cpp crashed on a memory fault: often a damaged or unsupported GGUF file, "
               "or too little memory. Check the model file, or try a smaller n_ctx",
    "SIGBUS": "llama.cpp could not read the model file (it changed or its disk went away "
              "while in use). Check the file and try again",
    "SIGABRT": "llama.cpp stopped on a failed internal check (its last message is below). "
               "Check the model file and settings",
    "SIGKILL": "it was killed from outside, most often by the out-of-memory killer: free "
               "memory, or use a smaller model or n_ctx",
    "SIGTERM": "it was asked to stop by another program (or a shutdown)",
}


def crash_message(status: int, why: str | None, spec: WorkerSpec, stderr: list[str],
                  avx2: bool | None = None) -> str:
    """What a person reads when the worker ends: what happened, what it means, what to do.
    `avx2`: whether this CPU has AVX2 (read from the CPU when None)."""
    model = Path(spec.path).name
    after = ("The calls in flight failed; the run can be resumed, and the next call starts "
             "a new worker.")
    if why and why.startswith("fatal:"):
        return why.removeprefix("fatal:")
    if why and why.startswith("stalled:"):
        text = (f"The local model worker ({model}) sent nothing for {why.split(':')[1]} s and "
                "was ended: it was stuck, or a step took far longer than it should on this "
                f"machine (set PDR_LOCAL_STALL_TIMEOUT to allow more). {after}")
    elif status < 0:
        name = _signal_name(-status)
        meaning = _SIGNAL_MEANING.get(name, "it crashed")
        if name == "SIGILL" and not (cpu_has_avx2() if avx2 is None else avx2):
            meaning = ("this CPU has no AVX2, which the default build needs. Rebuild without "
                       "it: `make clean && make run LLAMA_CMAKE_ARGS=\"-DGGML_NATIVE=OFF "
                       "-DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF\"` "
                       "(see the README's section on the build)")
        text = f"The local model worker ({model}) died of {name}: {meaning}. {after}"
    else:
        text = f"The local model worker ({model}) exited unexpectedly (status {status}). {after}"
    if stderr:
        text += f" Its last message: {stderr[-1][:300]}"
    return text


def cpu_has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU advertises AVX2 (True where it cannot be read: not Linux)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return True
    flags = next((line for line in text.splitlines() if line.startswith("flags")), None)
    return flags is None or "avx2" in flags.split()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
