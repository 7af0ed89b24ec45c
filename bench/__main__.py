"""Run every benchmark, each in its own process, and print one line per figure.

    python -m bench [--markdown FILE] [--only engine store ...]

Each line is `name, value, limit, ratio, target, pass|miss`. Diagnostics of each benchmark
go to stderr. `--markdown FILE` also writes the table for BENCHMARKS.md. The exit status is
1 when a figure missed its target or a benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Figure

# Module, and how long it may take before it is stopped (seconds, on two cores).
BENCHMARKS: dict[str, int] = {
    "engine": 180,
    "store": 180,
    "view": 180,
    "local_model": 480,
    "scale": 300,
    "first_run": 120,
    "startup": 120,
}


def markdown(figures: list[Figure], command: str) -> str:
    rows = ["| figure | value | limit | ratio | target | result | how |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for f in figures:
        value, limit, _ratio, _target, _result = f.line().split(", ")[1:]
        rows.append(f"| `{f.name}` | {value} | {limit} | {f.ratio:.3f} | {f.target} | "
                    f"{'pass' if f.passed else '**miss**'} | {f.note} |")
    return f"`{command}`\n\n" + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table of figures to this file")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    args = parser.parse_args(argv)
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "figures.jsonl"
        results.touch()
        for name in args.only:
            start = time.monotonic()
            print(f"# bench.{name}", file=sys.stderr, flush=True)
            try:
                done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--json",
                                       str(results)], cwd=ROOT, timeout=BENCHMARKS[name],
                                      check=False)
            except subprocess.TimeoutExpired:
                failed.append(f"{name} (stopped after {BENCHMARKS[name]} s)")
                continue
            # 1 means a figure missed (its line says which); anything else is a failure.
            if done.returncode not in (0, 1):
                failed.append(f"{name} (exit status {done.returncode})")
            print(f"# bench.{name}: {time.monotonic() - start:.0f} s", file=sys.stderr,
                  flush=True)
        figures = [Figure(**json.loads(line)) for line in results.read_text().splitlines()]
    missed = [f.name for f in figures if not f.passed]
    print(f"# {len(figures) - len(missed)} pass, {len(missed)} miss"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    if args.markdown:
        command = "python -m bench" + (f" --only {' '.join(args.only)}"
                                       if args.only != list(BENCHMARKS) else "")
        Path(args.markdown).write_text(markdown(figures, command), encoding="utf-8")
    return 1 if missed or failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
