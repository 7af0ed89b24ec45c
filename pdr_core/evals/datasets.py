"""Problem sets for evaluations: built-in benchmarks, JSONL files, a generator, Hugging Face.

One entry point, `load_dataset_spec`, takes what a person types:

- a built-in benchmark's name: aime2024, aime2025, math500 or gsm8k (shipped with the
  package, see pdr_core.evals.benchmarks; no network);
- a path to a JSONL file with `id`, `question` and `answer` on every line (extra keys kept,
  see pdr_core.evals.problems);
- `gen:KIND:N[:DIFFICULTY][:seed=S]`: N generated problems whose answers are computed,
  KIND one of arith (multi-step word problems), linear (linear equations), mod (modular
  arithmetic), DIFFICULTY easy, medium (default) or hard, S the seed (default 0;
  see pdr_core.evals.generator);
- `hf:NAME[:SPLIT]` or `hf:NAME:CONFIG:SPLIT`: a Hugging Face dataset, through the optional
  `datasets` package (see pdr_core.evals.huggingface).
"""

from __future__ import annotations

from pathlib import Path

from pdr_core.evals.benchmarks import NAMES as BENCHMARK_NAMES
from pdr_core.evals.benchmarks import benchmark_path
from pdr_core.evals.generator import generate, parse_gen_spec
from pdr_core.evals.huggingface import load_hf, parse_hf_spec
from pdr_core.evals.problems import DatasetError, Problem, load_jsonl, read_jsonl


def load_benchmark(name: str, limit: int | None = None) -> list[Problem]:
    """A built-in benchmark (see pdr_core.evals.benchmarks), or only its first `limit` problems
    (read without parsing the rest: the Run page's examples)."""
    try:
        path = benchmark_path(name)
    except KeyError as exc:
        raise DatasetError(exc.args[0]) from None
    if limit is None:
        return load_jsonl(path)
    with path.open(encoding="utf-8") as lines:
        head = [line for line, _ in zip(lines, range(limit), strict=False)]
    return read_jsonl("".join(head), str(path))


def load_dataset_spec(spec: str) -> list[Problem]:
    """The problems a spec names: a built-in benchmark's name, a JSONL path, `gen:...` or
    `hf:...` (see the module doc)."""
    spec = spec.strip()
    if spec in BENCHMARK_NAMES:
        return load_benchmark(spec)
    if spec.startswith("gen:"):
        kind, n, difficulty, seed = parse_gen_spec(spec)
        return generate(kind, n, difficulty, seed)
    if spec.startswith("hf:"):
        name, config, split = parse_hf_spec(spec)
        return load_hf(name, split, config)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DatasetError(f"{spec!r} is not a file; a dataset is a built-in benchmark "
                           f"({', '.join(BENCHMARK_NAMES)}), a JSONL path, "
                           "gen:KIND:N[:DIFFICULTY][:seed=S] (KIND arith, linear or mod) or "
                           "hf:NAME[:SPLIT]")
    return load_jsonl(path)
