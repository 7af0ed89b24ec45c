"""Command-line start: from process start to its first request, as the server logs it.

The project's test server runs in its own process (`bench.server`); the command line runs a
`single` question against it with a fresh store file, and so does a bare client, a
`python -c` that imports `openai` and streams the same kind of request. They take turns;
the process start is taken just before each process is spawned, on `time.monotonic()`,
the clock the server logs on (CLOCK_MONOTONIC on Linux, the same in every process). The
figure is the command line's median against the issue's fixed 0.4 s; the bare client's
median is in the note.

Both read their modules' bytecode from a cache, as an installed package does (pip writes it
at install, a checkout on its first run): a shell with PYTHONDONTWRITEBYTECODE would
otherwise compile every one of the project's modules again in each process, a cost no user
pays twice. The cache is a fresh folder, filled by one untimed run of each before the reps.

    python -m bench.startup [--reps 5]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Figure, Report, ServerProcess, cli_env, median, note, run_reps

LIMIT = 0.4
QUESTION = "What is 17 * 3 + 1?"
BARE = """
import sys, openai
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-bench", max_retries=0)
stream = client.chat.completions.create(
    model="fake-model", messages=[{"role": "user", "content": sys.argv[2]}],
    max_tokens=64, stream=True)
for _ in stream:
    pass
"""


def cached_env(cache: Path) -> dict[str, str]:
    """`cli_env()` with its bytecode written to and read from `cache`."""
    env = cli_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def first_request(server: ServerProcess, command: list[str], env: dict[str, str]) -> float:
    """Seconds from just before `command` is spawned to the server reading its first request."""
    server.clear()
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed: {done.stderr[-500:]}")
    requests = server.requests()
    if not requests:
        raise RuntimeError(f"{command[:4]} sent no request")
    return min(r["start"] for r in requests) - start


def bench(report: Report, reps: int) -> None:
    cli_times: list[float] = []
    bare_times: list[float] = []
    with ServerProcess(latency=0.05, per_token=0.0) as server, \
            tempfile.TemporaryDirectory() as folder:
        env = cached_env(Path(folder) / "bytecode")

        def cli(db: Path) -> list[str]:
            return [sys.executable, "-m", "pdr_core", "run", QUESTION, "--method", "single",
                    "--max-tokens", "64", "--base-url", server.base_url, "--model",
                    "fake-model", "--db", str(db)]

        bare = [sys.executable, "-c", BARE, server.base_url, QUESTION]
        first_request(server, cli(Path(folder) / "warm.sqlite"), env)  # fills the cache
        first_request(server, bare, env)
        for rep in range(reps):
            db = Path(folder) / f"runs{rep}.sqlite"  # a fresh store: a first run
            cli_times.append(first_request(server, cli(db), env))
            bare_times.append(first_request(server, bare, env))
            note(f"startup rep {rep}: command line {cli_times[-1]:.3f}s, bare client "
                 f"{bare_times[-1]:.3f}s")
    report.add(Figure(
        "startup.cli_first_request", median(cli_times), LIMIT, "s", "<=", 1.0,
        f"median of {reps}, fresh store each, bytecode cached; a bare `import openai` client: "
        f"{median(bare_times):.3f} s"))


def main() -> int:
    return run_reps(__doc__, bench, reps=5)


if __name__ == "__main__":
    raise SystemExit(main())
