"""A first run through the command line: a width-16 depth-4 PDR in a fresh process and a
fresh store, against a server that ignores `n` and one that honours it.

The command line runs against the project's test server (`bench.server`, 300 ms a call plus
2 ms an output token) with the default concurrency. Its wall time is the server's: from the
first request read to the last byte written. The limit is the critical path of the same
waves from the same log: the sum over waves of the slowest call, what a bare client sending
those waves, each all at once, would take. The one-token request that learns whether the
endpoint honours `n` is in the wall time but in no wave: nothing waits on it.

    python -m bench.first_run [--reps 3]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import (
    ROOT,
    Figure,
    Report,
    ServerProcess,
    cli_env,
    ideal_time,
    note,
    run_reps,
    waves,
)

QUESTION = "What is 17 * 3 + 1?"
MAX_TOKENS = 256
WORKSPACE_TOKENS = 128  # the summary calls ask for this many: the log tells them apart


def cli_run(server: ServerProcess, db: Path) -> tuple[float, float, int]:
    """(wall time, critical path, probes) of one command-line run, from the server's log."""
    server.clear()
    done = subprocess.run(
        [sys.executable, "-m", "pdr_core", "run", QUESTION, "--width", "16", "--depth", "4",
         "--max-tokens", str(MAX_TOKENS), "--workspace-tokens", str(WORKSPACE_TOKENS),
         "--distill-max-tokens", str(WORKSPACE_TOKENS), "--base-url", server.base_url,
         "--model", "fake-model", "--db", str(db)],
        cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the command line failed: {done.stderr[-500:]}")
    requests = server.requests()
    calls = [r for r in requests if r["max_tokens"] != 1]
    wall = max(r["end"] for r in requests) - min(r["start"] for r in requests)
    return wall, ideal_time(waves(calls, WORKSPACE_TOKENS), 10**6), len(requests) - len(calls)


def bench(report: Report, reps: int) -> None:
    for support_n in (False, True):
        label = "honours_n" if support_n else "ignores_n"
        runs = []
        with ServerProcess(support_n=support_n) as server, \
                tempfile.TemporaryDirectory() as folder:
            for rep in range(reps):
                runs.append(cli_run(server, Path(folder) / f"runs{rep}.sqlite"))
                wall, path, probes = runs[-1]
                note(f"first_run {label} rep {rep}: wall {wall:.3f}s critical path "
                     f"{path:.3f}s, {probes} probe(s)")
        wall, path, probes = sorted(runs, key=lambda r: r[0] / r[1])[len(runs) // 2]
        report.add(Figure(
            f"first_run.cli_w16d4.{label}.wall_over_critical_path", wall, path, "s", "<=",
            1.03, f"median of {reps} fresh processes, each with a fresh store; {probes} "
                  "one-token probe of n a run, in no wave"))


def main() -> int:
    return run_reps(__doc__, bench, reps=3)


if __name__ == "__main__":
    raise SystemExit(main())
