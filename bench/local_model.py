"""Local model: the worker's single-call speed against llama.cpp called directly, and what
decoding calls together buys.

Three figures, each measured in one run on the bundled SmolLM2-135M GGUF:
1. one streamed call through LocalProvider (its worker process) against llama-cpp-python's
   own streamed chat completion in this process, same n_ctx, threads, prompt and sampling,
   taking turns;
2. 8 concurrent 256-token completions of one prompt against the same 8 one after another,
   both through the provider: aggregate tokens per second;
3. a width-8 depth-3 PDR run (256 tokens a call) on a provider that decodes one call at a
   time (parallel=1, as the provider did before it batched) against the batching default.

    python -m bench.local_model [--reps 3] [--max-tokens 256] [--skip-run]
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Figure, Report, median, note, parse_args
from pdr_core.config import RunConfig
from pdr_core.prompts import DRAFT, SYSTEM
from pdr_core.providers.base import Sampling
from pdr_core.providers.local import LocalProvider, bundled_model_path, default_threads
from pdr_core.run.methods import run

N_CTX = 8192
CONCURRENT = 8
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": DRAFT.format(
        question="A train leaves at 9:40 and arrives at 13:05. How many minutes is the trip?")},
]
QUESTION = "What is 17 * 3 + 4? Put the final answer in \\boxed{}."


def direct_generate(llm: object, sampling: Sampling) -> tuple[int, float]:
    """llama-cpp-python's own streaming chat completion: (tokens, seconds)."""
    start = time.perf_counter()
    tokens = 0
    stream = llm.create_chat_completion(  # type: ignore[attr-defined]
        messages=MESSAGES, max_tokens=sampling.max_tokens, temperature=sampling.temperature,
        seed=sampling.seed, stream=True)
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1  # one streamed chunk a token
    return tokens, time.perf_counter() - start


async def provider_generate(provider: LocalProvider, sampling: Sampling) -> tuple[int, float]:
    """LocalProvider.complete, as the engine calls it: (tokens, seconds)."""
    start = time.perf_counter()
    completion = await provider.complete(MESSAGES, sampling, lambda _text: None)
    return completion.usage.completion_tokens, time.perf_counter() - start


async def single_call(report: Report, provider: LocalProvider, reps: int,
                      max_tokens: int) -> None:
    from llama_cpp import Llama

    threads = provider.n_threads
    llm = Llama(model_path=str(bundled_model_path()), n_ctx=N_CTX, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    ours, theirs = [], []
    for rep in range(reps + 1):
        sampling = Sampling(max_tokens=max_tokens, temperature=0.8, seed=7 + rep)
        tokens, seconds = await provider_generate(provider, sampling)
        direct_tokens, direct_seconds = direct_generate(llm, sampling)
        if rep == 0:
            continue  # warm-up: model load, caches
        ours.append(tokens / seconds)
        theirs.append(direct_tokens / direct_seconds)
        note(f"single call: provider {tokens} tokens {tokens / seconds:.1f} tok/s, direct "
             f"{direct_tokens} tokens {direct_tokens / direct_seconds:.1f} tok/s")
    llm.close()
    report.add(Figure("local_model.tokens_per_s_vs_llama_cpp", median(ours), median(theirs),
                      "tok/s", ">=", 0.9,
                      f"median of {reps}; {threads} thread(s), n_ctx {N_CTX}"))


async def batched(report: Report, provider: LocalProvider, reps: int, max_tokens: int) -> None:
    serial, together = [], []
    for rep in range(reps):
        seeds = [100 * rep + i for i in range(CONCURRENT)]
        start, tokens = time.perf_counter(), 0
        for seed in seeds:
            done, _ = await provider_generate(provider, Sampling(max_tokens, 0.8, seed))
            tokens += done
        serial.append(tokens / (time.perf_counter() - start))
        start = time.perf_counter()
        results = await asyncio.gather(*(provider_generate(provider, Sampling(
            max_tokens, 0.8, seed)) for seed in seeds))
        together.append(sum(t for t, _ in results) / (time.perf_counter() - start))
        note(f"{CONCURRENT} calls: one after another {serial[-1]:.1f} tok/s, together "
             f"{together[-1]:.1f} tok/s")
    report.add(Figure(f"local_model.{CONCURRENT}_concurrent_vs_serial_tokens_per_s",
                      median(together), median(serial), "tok/s", ">=", 3,
                      f"median of {reps}; {max_tokens} max tokens, one prompt, "
                      f"{provider.n_threads} thread(s), {provider.spec.n_threads_batch} for "
                      "batches"))


async def pdr_run(report: Report, max_tokens: int) -> None:
    config = RunConfig(method="pdr", width=8, depth=3, max_tokens=max_tokens,
                       workspace_tokens=max_tokens, seed=11)
    walls = {}
    for parallel in (1, 16):
        provider = LocalProvider(n_ctx=N_CTX, parallel=parallel)
        await provider.complete(MESSAGES, Sampling(max_tokens=1))
        start = time.perf_counter()
        trace = await run(QUESTION, config, provider)
        walls[parallel] = time.perf_counter() - start
        provider.close()
        tokens = sum(n.usage.get("completion_tokens", 0) for n in trace.nodes)
        note(f"PDR w8 d3, {parallel} call(s) at a time: {walls[parallel]:.1f} s, "
             f"{len(trace.nodes)} calls, {tokens} completion tokens, {trace.status}")
    report.add(Figure("local_model.pdr_w8d3_wall_vs_one_call_at_a_time", walls[16], walls[1],
                      "s", "<=", 0.5, f"one run each; {max_tokens} tokens a call"))


async def bench(report: Report, reps: int, max_tokens: int, skip_run: bool) -> None:
    provider = LocalProvider(n_ctx=N_CTX, n_threads=default_threads())
    try:
        await single_call(report, provider, reps, max_tokens)
        await batched(report, provider, reps, max_tokens)
    finally:
        provider.close()
    if not skip_run:
        await pdr_run(report, max_tokens)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], extra=lambda p: (
        p.add_argument("--reps", type=int, default=3),
        p.add_argument("--max-tokens", type=int, default=256),
        p.add_argument("--skip-run", action="store_true",
                       help="leave out the width-8 depth-3 PDR run (about 3 minutes)"),
    ))
    report = Report(args.json)
    asyncio.run(bench(report, args.reps, args.max_tokens, args.skip_run))
    return 1 if report.missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
