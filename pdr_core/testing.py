"""Test doubles shipped with the package: a fake provider that answers from the prompt.

The reply is a pure function of the messages and the seed, so concurrent calls stay
deterministic whatever order they finish in. The project's OpenAI-protocol test server
answers with the same function.
"""

from __future__ import annotations

import ast
import asyncio
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from pdr_core.providers.base import (
    Completion,
    DeltaCallback,
    Known,
    Message,
    ProviderError,
    Sampling,
    Usage,
)
from pdr_core.tokens import CHARS_PER_TOKEN, estimate_prompt_tokens, estimate_tokens

# "What is 17 * 23 + 4?" -> the expression; only digits, operators and brackets.
_EXPRESSION = re.compile(r"[Ww]hat is ([0-9+\-*/() ]+[0-9)])")

AnswerRule = Callable[[Sequence[Message], "int | None"], str]
FailRule = Callable[[Sequence[Message], "int | None"], "str | None"]


_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _evaluate(expression: str) -> float | None:
    """Value of + - * / arithmetic, or None; no eval, no powers (they could hang)."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError("unsupported expression")

    try:
        return walk(ast.parse(expression.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def question_value(messages: Sequence[Message]) -> str:
    """The right answer to the arithmetic question in the first user message, if any."""
    user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    match = _EXPRESSION.search(user)
    if match:
        value = _evaluate(match.group(1))
        if value is not None:
            return str(int(value)) if float(value).is_integer() else f"{value:.4g}"
    return str(sum(len(w) for w in user.split()) % 97)


def default_answer(messages: Sequence[Message], seed: int | None) -> str:
    """Right for three seeds in four, one more than right for the fourth."""
    value = question_value(messages)
    if seed is not None and seed % 4 == 3 and value.lstrip("-").isdigit():
        return str(int(value) + 1)
    return value


def fake_reply(
    messages: Sequence[Message], seed: int | None, answer: AnswerRule = default_answer
) -> str:
    """The fake model's full reply to `messages` with `seed`."""
    prompt = "\n".join(m.get("content") or "" for m in messages)
    seen = prompt.count("\\boxed{")
    value = answer(messages, seed)
    return (
        f"Let me work through this carefully (seed {seed}).\n"
        f"I read {len(prompt.split())} words of context and {seen} earlier answer(s).\n"
        f"Step 1: restate the problem.\nStep 2: compute.\n"
        f"The answer is \\boxed{{{value}}}."
    )


def split_chunks(text: str, chunks: int) -> list[str]:
    """`text` in `chunks` roughly equal pieces (for streaming)."""
    size = max(1, -(-len(text) // max(chunks, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@dataclass
class FakeProvider:
    """A Provider that answers from the prompt, with optional failures and latency.

    `fail` returns an error message for calls that should fail. `calls` records every
    call made, so tests can count them.
    """

    answer: AnswerRule = default_answer
    fail: FailRule | None = None
    delay: float = 0.0
    chunks: int = 3
    model_name: str = "fake-model"
    # An exact tokenizer to offer as `count_tokens`; None counts nothing (the estimate is used).
    tokenizer: Callable[[str], int] | None = None
    calls: list[tuple[list[Message], Sampling]] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.model_name

    @property
    def base_url(self) -> str:
        return "fake://"

    def with_model(self, model: str) -> FakeProvider:
        """The same fake answering as `model`, recording its calls in the same list."""
        return replace(self, model_name=model)

    async def count_tokens(self, text: str) -> int | None:
        """The optional provider method: `text`'s token count by the model's tokenizer."""
        return self.tokenizer(text) if self.tokenizer is not None else None

    async def complete(
        self,
        messages: Sequence[Message],
        sampling: Sampling,
        on_delta: DeltaCallback | None = None,
    ) -> Completion:
        self.calls.append(([dict(m) for m in messages], sampling))
        error = self.fail(messages, sampling.seed) if self.fail else None
        text = fake_reply(messages, sampling.seed, self.answer)
        finish = "stop"
        if len(text) > sampling.max_tokens * CHARS_PER_TOKEN:
            text, finish = text[: sampling.max_tokens * CHARS_PER_TOKEN], "length"
        pieces = split_chunks(text, self.chunks)
        for i, piece in enumerate(pieces):
            if self.delay:
                await asyncio.sleep(self.delay / len(pieces))
            else:
                await asyncio.sleep(0)  # let other calls interleave, as real I/O would
            if error and i == len(pieces) // 2:
                raise ProviderError(error, kind="server")
            if on_delta:
                on_delta(piece)
        usage = Usage(estimate_prompt_tokens(messages), estimate_tokens(text))
        return Completion(text=text, usage=usage, finish_reason=finish, model=self.model_name)


class KnownCapabilities:
    """A CapabilityMemory held in this process only, told what an endpoint does: for tests
    that need a provider to know it from its first call (the run store keeps it on disk)."""

    def __init__(self, base_url: str, model: str, **values: bool):
        self.values = {(base_url, model, name): value for name, value in values.items()}

    def recall(self, base_url: str, model: str, name: str) -> Known | None:
        value = self.values.get((base_url, model, name))
        return None if value is None else Known(value, 0.0)

    def remember(self, base_url: str, model: str, name: str, value: bool) -> None:
        self.values[(base_url, model, name)] = value
