"""The built-in benchmarks: public problem sets shipped as package data (pdr_core/data/).

Only where they are and what they are; reading them is `pdr_core.evals.datasets`. Sources and
licences are in pdr_core/data/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DATA_PACKAGE = "pdr_core"
DATA_FOLDER = "data"


@dataclass(frozen=True)
class Benchmark:
    name: str  # what a person types: `eval aime2024`
    file: str
    title: str
    rows: int
    source: str


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("aime2024", "aime2024.jsonl", "AIME 2024", 30,
              "American Invitational Mathematics Examination 2024 I and II (MAA)"),
    Benchmark("aime2025", "aime2025.jsonl", "AIME 2025", 30,
              "American Invitational Mathematics Examination 2025 I and II (MAA)"),
    Benchmark("math500", "math500.jsonl", "MATH-500", 500,
              "MATH (Hendrycks et al., 2021, MIT), PRM800K's 500-problem test subset"),
    Benchmark("gsm8k", "gsm8k_test.jsonl", "GSM8K (test)", 1319,
              "GSM8K test split (Cobbe et al., 2021, MIT), final numeric answers"),
)
NAMES: tuple[str, ...] = tuple(b.name for b in BENCHMARKS)


def benchmark(name: str) -> Benchmark | None:
    """The built-in benchmark called `name`, or None."""
    return next((b for b in BENCHMARKS if b.name == name), None)


def benchmark_path(name: str) -> Path:
    """The data file of a built-in benchmark, inside the installed package or the clone."""
    found = benchmark(name)
    if found is None:
        raise KeyError(f"no built-in benchmark {name!r}: one of {', '.join(NAMES)}")
    # A real folder in a clone or an installed wheel; the data are never zipped.
    return Path(str(resources.files(DATA_PACKAGE).joinpath(DATA_FOLDER, found.file)))
