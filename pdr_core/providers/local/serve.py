"""The worker's serving loop: chat requests in, decoded completions out (worker side only)."""

from __future__ import annotations

import queue
import sys
from dataclasses import dataclass
from typing import Protocol

import llama_cpp
from jinja2 import TemplateError
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from pdr_core.providers.local.decoder import Call, Decoder, DecoderSettings, LoadError

__all__ = ["Server"]

_LOG_ERROR = 3  # ggml_log_level GGML_LOG_LEVEL_ERROR


class Writer(Protocol):
    def send(self, message: dict) -> None: ...

    def flush(self) -> None: ...


@dataclass
class Server:
    decoder: Decoder
    formatter: Jinja2ChatFormatter
    writer: Writer

    @classmethod
    def load(cls, spec: dict, writer: Writer) -> Server | None:
        """Load the model `spec` names; on failure report it (`fatal`) and return None."""
        try:
            llama_cpp.llama_log_set(_QUIET, None)
            settings = DecoderSettings(**{k: spec[k] for k in DecoderSettings.__annotations__})
            decoder = Decoder(settings)
            server = cls(decoder, _formatter(decoder, settings.path), writer)
        except LoadError as error:
            writer.send({"fatal": {"message": str(error), "kind": "bad_request"}})
            writer.flush()
            return None
        writer.send({"ready": {"kv_tokens": decoder.capacity}})
        writer.flush()
        return server

    def serve(self, requests: queue.Queue[dict | None]) -> int:
        """Decode until stdin ends; between steps take every request that has arrived."""
        decoder = self.decoder
        while True:
            try:
                request = requests.get(block=not decoder.busy)
                while True:
                    if request is None:
                        return 0
                    self.handle(request)
                    request = requests.get_nowait()
            except queue.Empty:
                pass
            decoder.step(self.report)
            self.writer.flush()

    def handle(self, request: dict) -> None:
        if request.get("op") == "cancel":
            self.decoder.cancel(int(request["id"]))
            return
        if request.get("op") == "status":
            self.writer.send({"status": self.decoder.status()})
            return
        if request.get("op") == "count":
            tokens = self.decoder.tokenize(str(request["text"]), add_special=False)
            self.report(int(request["id"]), "count", len(tokens))
            return
        call_id = int(request["id"])
        try:
            formatted = self.formatter(messages=request["messages"])
        except TemplateError as error:
            self.report(call_id, "error", {
                "message": f"The model's chat template refused these messages: {error}",
                "kind": "bad_request"})
            return
        prompt = self.decoder.tokenize(formatted.prompt, add_special=not formatted.added_special)
        n_ctx = self.decoder.settings.n_ctx
        if len(prompt) >= n_ctx:
            self.report(call_id, "error", {
                "message": f"The prompt is {len(prompt)} tokens, but the local model's context "
                           f"holds {n_ctx} tokens in all, prompt and answer together. Lower "
                           "workspace_tokens or max_tokens (drafts are folded into later "
                           "prompts), shorten the question or prompt templates, or raise n_ctx.",
                "kind": "context_length"})
            return
        # Stop at the end of the context: prompt and completion together fit n_ctx.
        limit = min(int(request["max_tokens"]), n_ctx - len(prompt))
        self.decoder.add(Call(call_id, prompt, limit, float(request["temperature"]),
                              request.get("seed")))

    def report(self, call_id: int, event: str, payload: object) -> None:
        self.writer.send({"id": call_id, event: payload})


def _formatter(decoder: Decoder, path: str) -> Jinja2ChatFormatter:
    """The chat formatter llama-cpp-python builds from the model's own template."""
    template = llama_cpp.llama_model_chat_template(decoder.model, None)
    if not template:
        raise LoadError(f"{path} has no chat template in its metadata, so chat messages cannot "
                        "be formatted for it. Use a chat (instruct) GGUF model.")
    vocab = decoder.vocab
    eos, bos = llama_cpp.llama_vocab_eos(vocab), llama_cpp.llama_vocab_bos(vocab)

    def text(token: int) -> str:
        return "" if token == -1 else decoder.piece(token, special=True).decode(
            "utf-8", errors="replace")

    return Jinja2ChatFormatter(template=template.decode("utf-8"), eos_token=text(eos),
                               bos_token=text(bos), stop_token_ids=[eos])


@llama_cpp.llama_log_callback
def _QUIET(level: int, text: bytes, _user_data: object) -> None:  # noqa: N802
    """llama.cpp's log: errors only, to stderr (where the parent keeps the last lines)."""
    if level == _LOG_ERROR and text:
        sys.stderr.write(text.decode("utf-8", errors="replace"))
