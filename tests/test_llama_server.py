"""PDR through llama-cpp-python's own OpenAI-compatible server, serving the bundled model.

The server runs as a subprocess on a free loopback port, started and stopped by the tests.
Two things about this server shape the tests: it sends no usage in streamed responses
(it ignores `stream_options`), so real usage needs a non-streamed request; and by default
it cuts a running stream short when another request arrives (`interrupt_requests`), so
parallel streamed drafts need `--interrupt_requests False`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pdr_core.config import RunConfig
from pdr_core.providers.local import bundled_model_path, default_threads
from pdr_core.providers.openai import OpenAIProvider
from pdr_core.run.methods import run
from pdr_core.trace import Trace

pytestmark = pytest.mark.local_model

QUESTION = "What is 17 * 3 + 4? Put the final answer in \\boxed{}."
CONFIG = RunConfig(method="pdr", width=2, depth=2, max_tokens=32, workspace_tokens=64)
START_DEADLINE_S = 60


@dataclass(frozen=True)
class Server:
    base_url: str
    model: str


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _models(base_url: str) -> list[str] | None:
    """The served model ids, or None while the server is not answering yet."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return [m["id"] for m in json.load(response)["data"]]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = _free_port()
    threads = default_threads()
    # A file, not a pipe: the server logs every request, and a full pipe would stall it.
    log_path: Path = tmp_path_factory.mktemp("llama_server") / "stderr.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(bundled_model_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096",
        "--interrupt_requests", "False",
        # As LocalProvider does: its default of every core for prompts is several times
        # slower on a busy two-core machine, and logits for every position cost 800 MB.
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--logits_all", "False",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + START_DEADLINE_S
        models = None
        while models is None:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n"
                            f"{log_path.read_text(errors='replace')[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {START_DEADLINE_S} s:\n"
                            f"{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.2)
            models = _models(base_url)
        assert models, "the server lists no models"
        yield Server(base_url, models[0])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _check_shape(trace: Trace) -> None:
    assert trace.status == "completed", trace.error
    assert sorted(n.stage for n in trace.nodes) == ["distill", "draft", "draft", "final"]
    assert trace.budget.calls == 4
    for node in trace.nodes:
        assert node.status == "ok" and node.call, (node.id, node.error)


def test_pdr_run_with_real_usage(server: Server) -> None:
    # Non-streamed requests: the only ones this server reports usage for.
    provider = OpenAIProvider(server.base_url, api_key="none", model=server.model,
                              stream=False)
    trace = asyncio.run(run(QUESTION, CONFIG, provider))
    _check_shape(trace)
    for node in trace.nodes:
        usage = node.usage
        assert usage["estimated"] is False, node.id
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0, node.id
        limit = CONFIG.workspace_tokens if node.stage == "distill" else CONFIG.max_tokens
        assert usage["completion_tokens"] <= limit, node.id


def test_streamed_pdr_run(server: Server) -> None:
    # Streaming works too, parallel drafts included; usage is then the provider's estimate.
    provider = OpenAIProvider(server.base_url, api_key="none", model=server.model)
    trace = asyncio.run(run(QUESTION, CONFIG, provider))
    _check_shape(trace)
    assert all(node.text for node in trace.nodes)
