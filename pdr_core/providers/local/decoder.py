"""Batched decoding of many chat completions on one llama.cpp context (worker side only).

Decoding a small model on a CPU is bound by memory bandwidth: a batch that carries one token
of each of eight sequences costs little more than one token of one. So every call in flight
is a sequence of one context, and each step decodes one token of every generating sequence
plus a slice of the prompts still being read (continuous batching: a call that finishes
frees its sequence for a waiting one at the next step).

Calls whose prompts share a prefix (the drafts of round 1, refinements of one workspace)
read it once: a new sequence copies the matching KV cells of a sequence that already holds
them (`llama_memory_seq_cp`) and evaluates only the rest. Each call keeps its own sampler
(temperature, seed), its own stop and length limit, and exact usage: its whole prompt and
the tokens it generated, however much compute was shared.

This module imports llama_cpp and runs only inside the worker process.
"""

from __future__ import annotations

import codecs
import ctypes
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import llama_cpp

__all__ = ["Call", "Decoder", "DecoderSettings", "LoadError"]

# Tokens one llama_decode takes: generating sequences first, then prompt slices.
BATCH_TOKENS = 512
# A waiting call whose prompt shares at least this many tokens with a prompt still being
# read waits for it rather than reading the same tokens again.
SHARE_WAIT_TOKENS = 32
# Fewer matching tokens than this are evaluated again rather than copied.
SHARE_MIN_TOKENS = 8


class LoadError(Exception):
    """The model could not be loaded; the message says what to do."""


@dataclass(frozen=True)
class DecoderSettings:
    path: str
    n_ctx: int  # one call's limit: prompt and completion together
    n_threads: int  # for a step of one token (one call generating)
    n_threads_batch: int  # for a step of several tokens (calls together, prompts)
    parallel: int  # calls decoded together
    kv_tokens: int  # KV cells shared by all sequences


@dataclass
class Call:
    """One completion: its prompt, limits, sampler and progress."""

    id: int
    prompt: list[int]
    max_tokens: int
    temperature: float
    seed: int | None
    seq: int = -1
    cells: int = 0  # positions of this sequence held in the KV cache
    pending: int | None = None  # sampled, not yet evaluated
    generated: int = 0
    sampler: ctypes.c_void_p | None = None
    text: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace"))

    @property
    def reading(self) -> bool:
        return self.cells < len(self.prompt)

    @property
    def reserved(self) -> int:
        return len(self.prompt) + self.max_tokens


# What the decoder reports: (call id, event, payload). Events: "delta" (text), "done"
# ({finish_reason, prompt_tokens, completion_tokens}), "error" ({message, kind}).
Report = Callable[[int, str, object], None]


class Decoder:
    """A loaded model and one context whose sequences are the calls in flight."""

    def __init__(self, settings: DecoderSettings):
        self.settings = settings
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(settings.path.encode(), model_params)
        if not self.model:
            raise LoadError(f"llama.cpp could not load {settings.path}. Check that it is a GGUF "
                            "model file this llama-cpp-python version can read.")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = max(settings.kv_tokens, settings.n_ctx)
        params.n_batch = params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = settings.parallel
        params.kv_unified = True  # every sequence may use the whole context
        params.n_threads = settings.n_threads
        params.n_threads_batch = settings.n_threads_batch
        # Flash attention skips the cells of other sequences in the shared cache, which
        # plain attention computes and masks: a 10-15 % shorter step with 8 calls at once.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED

        self.ctx = llama_cpp.llama_init_from_model(self.model, params)
        if not self.ctx:
            raise LoadError(f"llama.cpp could not make a {params.n_ctx}-token context for "
                            f"{settings.path}: lower n_ctx or the calls decoded together.")
        self.capacity = llama_cpp.llama_n_ctx(self.ctx)
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(BATCH_TOKENS, 0, 1)
        self.free_seqs = list(range(settings.parallel - 1, -1, -1))
        self.waiting: deque[Call] = deque()
        self.active: dict[int, Call] = {}
        # Prompt tokens evaluated, and those copied from another sequence instead.
        self.counts = {"prompt_read": 0, "prompt_copied": 0, "generated": 0, "steps": 0}

    def status(self) -> dict[str, int]:
        """What the worker is doing and has done, for tests and diagnostics."""
        return {"active": len(self.active), "waiting": len(self.waiting), **self.counts}

    # ----- tokens -------------------------------------------------------------------------

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 16
        while True:
            buffer = (llama_cpp.llama_token * size)()
            count = llama_cpp.llama_tokenize(self.vocab, data, len(data), buffer, size,
                                             add_special, True)
            if count >= 0:
                return list(buffer[:count])
            size = -count

    def piece(self, token: int, special: bool = False) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, 64, 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    # ----- calls --------------------------------------------------------------------------

    def add(self, call: Call) -> None:
        self.waiting.append(call)

    def cancel(self, call_id: int) -> None:
        """Drop a call at once, waiting or generating; nothing more is reported for it."""
        self.waiting = deque(c for c in self.waiting if c.id != call_id)
        call = self.active.get(call_id)
        if call is not None:
            self._release(call)

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.active)

    def step(self, report: Report) -> None:
        """Admit what fits, then decode one batch and sample every sequence that is due."""
        self._admit()
        due = self._fill_batch()
        if not due:
            return
        self.counts["steps"] += 1
        status = llama_cpp.llama_decode(self.ctx, self.batch)
        if status != 0:
            for call, _ in due:
                report(call.id, "error", {
                    "message": f"llama.cpp could not decode (status {status}); the call was "
                               "stopped. Try again, with fewer calls at once or a smaller n_ctx.",
                    "kind": "other"})
                self._release(call)
            return
        for call, index in due:
            self._sample(call, index, report)

    # ----- inside a step ------------------------------------------------------------------

    def _admit(self) -> None:
        reserved = sum(c.reserved for c in self.active.values())
        kept: deque[Call] = deque()
        while self.waiting:
            call = self.waiting.popleft()
            fits = not self.active or reserved + call.reserved <= self.capacity
            if not self.free_seqs or not fits or self._should_wait(call):
                kept.append(call)
                continue
            call.seq = self.free_seqs.pop()
            call.sampler = _sampler(call.temperature, call.seed)
            self._share_prefix(call)
            self.active[call.id] = call
            reserved += call.reserved
        self.waiting = kept

    def _should_wait(self, call: Call) -> bool:
        """Whether a prompt being read shares enough with this one to wait and copy it."""
        for other in self.active.values():
            if other.reading and _common(other.prompt, call.prompt) >= SHARE_WAIT_TOKENS:
                return True
        return False

    def _share_prefix(self, call: Call) -> None:
        best, donor = 0, None
        for other in self.active.values():
            # Only prompt cells are shared; the last prompt token is evaluated again, so the
            # new sequence has logits of its own to sample its first token from.
            shared = min(_common(other.prompt, call.prompt), other.cells,
                         len(call.prompt) - 1)
            if shared > best:
                best, donor = shared, other
        if donor is not None and best >= SHARE_MIN_TOKENS:
            llama_cpp.llama_memory_seq_cp(self.memory, donor.seq, call.seq, 0, best)
            call.cells = best
            self.counts["prompt_copied"] += best

    def _fill_batch(self) -> list[tuple[Call, int]]:
        batch, due = self.batch, []
        batch.n_tokens = 0
        for call in self.active.values():
            if call.pending is not None:
                due.append((call, self._put(call, call.pending, True)))
                call.pending = None
        for call in self.active.values():
            while call.reading and batch.n_tokens < BATCH_TOKENS:
                last = call.cells == len(call.prompt) - 1
                index = self._put(call, call.prompt[call.cells], last)
                self.counts["prompt_read"] += 1
                if last:
                    due.append((call, index))
        return due

    def _put(self, call: Call, token: int, logits: bool) -> int:
        batch, index = self.batch, self.batch.n_tokens
        batch.token[index] = token
        batch.pos[index] = call.cells
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = call.seq
        batch.logits[index] = logits
        batch.n_tokens = index + 1
        call.cells += 1
        return index

    def _sample(self, call: Call, index: int, report: Report) -> None:
        token = llama_cpp.llama_sampler_sample(call.sampler, self.ctx, index)
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            self._finish(call, "stop", report)
            return
        call.generated += 1
        self.counts["generated"] += 1
        text = call.text.decode(self.piece(token))
        if text:
            report(call.id, "delta", text)
        if call.generated >= call.max_tokens:
            self._finish(call, "length", report)
        else:
            call.pending = token

    def _finish(self, call: Call, reason: str, report: Report) -> None:
        tail = call.text.decode(b"", final=True)
        if tail:
            report(call.id, "delta", tail)
        report(call.id, "done", {"finish_reason": reason, "prompt_tokens": len(call.prompt),
                                 "completion_tokens": call.generated})
        self._release(call)

    def _release(self, call: Call) -> None:
        self.active.pop(call.id, None)
        llama_cpp.llama_memory_seq_rm(self.memory, call.seq, -1, -1)
        if call.sampler is not None:
            llama_cpp.llama_sampler_free(call.sampler)
            call.sampler = None
        self.free_seqs.append(call.seq)


def _common(a: list[int], b: list[int]) -> int:
    size = min(len(a), len(b))
    for i in range(size):
        if a[i] != b[i]:
            return i
    return size


def _sampler(temperature: float, seed: int | None) -> ctypes.c_void_p:
    """llama-cpp-python's default chain for a chat completion, one per call."""
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    if temperature <= 0:
        llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        return chain
    for stage in (llama_cpp.llama_sampler_init_top_k(40),
                  llama_cpp.llama_sampler_init_typical(1.0, 1),
                  llama_cpp.llama_sampler_init_top_p(0.95, 1),
                  llama_cpp.llama_sampler_init_min_p(0.05, 1),
                  llama_cpp.llama_sampler_init_temp(temperature),
                  llama_cpp.llama_sampler_init_dist(
                      llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed & 0xFFFFFFFF)):
        llama_cpp.llama_sampler_chain_add(chain, stage)
    return chain
