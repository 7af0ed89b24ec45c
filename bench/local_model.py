"""Local model: tokens per second of LocalProvider against llama-cpp-python called directly.

Both load the bundled SmolLM2-135M GGUF with the same context size and thread counts and
generate, streaming, from the same chat messages with the same max_tokens, temperature and
seed; each is warmed up once (model load, prompt in the KV cache), then they take turns.
The two outputs must be the same text, so both counts are the provider's completion tokens.

    python -m bench.local_model [--reps 3] [--max-tokens 256]
"""

from __future__ import annotations

import asyncio
import time

from bench.common import Figure, Report, median, note, parse_args
from pdr_core.prompts import DRAFT, SYSTEM
from pdr_core.providers.base import Sampling
from pdr_core.providers.local import LocalProvider, bundled_model_path, default_threads

N_CTX = 8192
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": DRAFT.format(
        question="A train leaves at 9:40 and arrives at 13:05. How many minutes is the trip?")},
]


def direct_generate(llm: object, sampling: Sampling) -> tuple[str, float]:
    """llama-cpp-python's own streaming chat completion: (text, seconds)."""
    start = time.perf_counter()
    pieces = []
    stream = llm.create_chat_completion(  # type: ignore[attr-defined]
        messages=MESSAGES, max_tokens=sampling.max_tokens, temperature=sampling.temperature,
        seed=sampling.seed, stream=True)
    for chunk in stream:
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            pieces.append(text)
    return "".join(pieces), time.perf_counter() - start


async def provider_generate(provider: LocalProvider, sampling: Sampling
                            ) -> tuple[str, int, float]:
    """LocalProvider.complete, as the engine calls it: (text, tokens, seconds)."""
    start = time.perf_counter()
    completion = await provider.complete(MESSAGES, sampling, lambda _text: None)
    return completion.text, completion.usage.completion_tokens, time.perf_counter() - start


async def bench(report: Report, reps: int, max_tokens: int) -> None:
    from llama_cpp import Llama

    threads = default_threads()
    path = bundled_model_path()
    provider = LocalProvider(path, n_ctx=N_CTX, n_threads=threads)
    llm = Llama(model_path=str(path), n_ctx=N_CTX, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    sampling = Sampling(max_tokens=max_tokens, temperature=0.8, seed=7)
    await provider_generate(provider, sampling)
    direct_generate(llm, sampling)
    ours, theirs = [], []
    for _ in range(reps):
        text, tokens, seconds = await provider_generate(provider, sampling)
        direct_text, direct_seconds = direct_generate(llm, sampling)
        if text != direct_text:
            raise RuntimeError("LocalProvider and llama-cpp-python generated different text")
        ours.append(tokens / seconds)
        theirs.append(tokens / direct_seconds)
        note(f"local model: {tokens} tokens, LocalProvider {seconds:.2f}s "
             f"({tokens / seconds:.1f} tok/s), direct {direct_seconds:.2f}s "
             f"({tokens / direct_seconds:.1f} tok/s)")
    report.add(Figure("local_model.tokens_per_s_vs_llama_cpp", median(ours), median(theirs),
                      "tok/s", ">=", 0.9,
                      f"median of {reps}; {threads} thread(s), n_ctx {N_CTX}"))


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], extra=lambda p: (
        p.add_argument("--reps", type=int, default=3),
        p.add_argument("--max-tokens", type=int, default=256),
    ))
    report = Report(args.json)
    asyncio.run(bench(report, args.reps, args.max_tokens))
    return 1 if report.missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
