"""The local model's worker process: crashes, stalls and orphans cost only the calls in
flight, with a message a person can act on; GGUF files are named from their metadata."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pdr_core.config import RunConfig
from pdr_core.providers.base import ProviderError, Sampling
from pdr_core.providers.local import LocalProvider, bundled_model_path, model_file
from pdr_core.providers.local.gguf import GGUFError, read_metadata
from pdr_core.providers.local.worker import CRASH_SWITCH
from pdr_core.run.methods import resume, run
from pdr_core.store import Store

pytestmark = pytest.mark.local_model

ROOT = Path(__file__).resolve().parents[1]
LONG_ASK = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]
QUESTION = "What is 17 * 3 + 4? Put the final answer in \\boxed{}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[1].startswith("Z"))


def _gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


async def _long_call_killed(provider: LocalProvider) -> tuple[ProviderError, int]:
    """Start a long call, SIGKILL the worker at its first token: (the error, the pid)."""
    first = asyncio.Event()
    call = asyncio.create_task(provider.complete(LONG_ASK, Sampling(max_tokens=2000, seed=3),
                                                 lambda _text: first.set()))
    await asyncio.wait_for(first.wait(), 60)
    pid = provider.worker.pid
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ProviderError) as caught:
        await asyncio.wait_for(call, 30)
    return caught.value, pid


def test_a_killed_worker_fails_the_call_and_the_next_call_starts_a_new_one() -> None:
    provider = LocalProvider()
    try:
        async def main() -> tuple:
            error, pid = await _long_call_killed(provider)
            after = await provider.complete(LONG_ASK, Sampling(max_tokens=3, seed=1))
            return error, pid, after, provider.worker.pid

        error, pid, after, new_pid = asyncio.run(main())
    finally:
        provider.close()
    assert error.kind == "crashed"
    message = str(error)
    assert "SIGKILL" in message and "out-of-memory" in message and "resumed" in message
    assert after.usage.completion_tokens == 3
    assert new_pid != pid and _gone(pid)


@pytest.mark.parametrize("name, advice", [
    ("SIGILL", "make clean && make run"),
    ("SIGSEGV", "memory fault"),
    ("SIGABRT", "failed internal check"),
])
def test_a_worker_crashing_by_itself_says_what_it_means(tmp_path, name, advice) -> None:
    # The worker's test-only switch: die of `name` after 4 tokens, once (the marker file).
    marker = tmp_path / "crashed"
    provider = LocalProvider(worker_env={CRASH_SWITCH: f"{name}:4:{marker}"})
    try:
        with pytest.raises(ProviderError) as caught:
            asyncio.run(provider.complete(LONG_ASK, Sampling(max_tokens=50, seed=1)))
        again = asyncio.run(provider.complete(LONG_ASK, Sampling(max_tokens=5, seed=1)))
    finally:
        provider.close()
    assert marker.exists()
    assert caught.value.kind == "crashed"
    assert name in str(caught.value) and advice in str(caught.value)
    assert again.usage.completion_tokens == 5


def test_a_stuck_worker_is_ended_after_the_stall_timeout(tmp_path) -> None:
    provider = LocalProvider(stall_timeout=6,
                             worker_env={CRASH_SWITCH: f"hang:3:{tmp_path / 'hung'}"})
    try:
        start = time.monotonic()
        with pytest.raises(ProviderError) as caught:
            asyncio.run(provider.complete(LONG_ASK, Sampling(max_tokens=50, seed=1)))
        waited = time.monotonic() - start
        pid = provider.worker.pid  # a new worker
        again = asyncio.run(provider.complete(LONG_ASK, Sampling(max_tokens=2, seed=1)))
    finally:
        provider.close()
    assert caught.value.kind == "crashed"
    assert "sent nothing for 6 s" in str(caught.value)
    assert "PDR_LOCAL_STALL_TIMEOUT" in str(caught.value)
    assert waited < 30
    assert again.usage.completion_tokens == 2 and pid


def test_a_run_whose_worker_dies_fails_and_can_be_resumed(tmp_path) -> None:
    store = Store(tmp_path / "runs.sqlite")
    config = RunConfig(method="pdr", width=2, depth=2, max_tokens=24, workspace_tokens=48)
    marker = tmp_path / "crashed"
    provider = LocalProvider(worker_env={CRASH_SWITCH: f"SIGSEGV:30:{marker}"})
    try:
        trace = asyncio.run(run(QUESTION, config, provider, store.writer()))
        assert marker.exists()
        assert trace.status == "failed"
        failed = [n for n in trace.nodes if n.status == "failed"]
        assert failed and all("SIGSEGV" in (n.error or "") for n in failed)
        run_id = trace.id
        resumed = asyncio.run(resume(store.get_trace(run_id), store.events(run_id), provider,
                                     store.resume_writer(run_id)))
    finally:
        provider.close()
    assert resumed.status == "completed", resumed.error
    assert store.get_trace(run_id).status == "completed"


ORPHAN = """
import asyncio, sys
from pdr_core.providers.base import Sampling
from pdr_core.providers.local import LocalProvider
provider = LocalProvider()
async def main():
    started = asyncio.Event()
    task = asyncio.create_task(provider.complete(
        [{"role": "user", "content": "Count from 1 to 500, one number per line."}],
        Sampling(max_tokens=3000, seed=3), lambda _t: started.set()))
    await started.wait()
    print(provider.worker.pid, flush=True)
    await task
asyncio.run(main())
"""


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_its_parent(how) -> None:
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(how)
        parent.wait(timeout=30)
    finally:
        parent.kill()
    assert _gone(worker), f"worker {worker} outlived its parent ({how.name})"


def _write_gguf(path: Path, pairs: list[tuple[str, int, bytes]]) -> Path:
    def text(value: str) -> bytes:
        data = value.encode()
        return struct.pack("<Q", len(data)) + data

    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs))
    for key, kind, value in pairs:
        body += text(key) + struct.pack("<I", kind) + value
    path.write_bytes(body)
    return path


def test_gguf_metadata_is_read_without_llama_cpp(tmp_path) -> None:
    def text(value: str) -> bytes:
        data = value.encode()
        return struct.pack("<Q", len(data)) + data

    tokens = struct.pack("<IQ", 8, 3) + text("a") + text("bb") + text("ccc")
    path = _write_gguf(tmp_path / "m.gguf", [
        ("general.architecture", 8, text("llama")),
        ("tokenizer.ggml.tokens", 9, tokens),
        ("llama.block_count", 4, struct.pack("<I", 30)),
        ("general.name", 8, text("Tiny Chat 1B")),
        ("tokenizer.chat_template", 8, text("{{ messages }}")),
    ])
    metadata = read_metadata(path)
    assert metadata["general.name"] == "Tiny Chat 1B"
    assert metadata["tokenizer.chat_template"] == "{{ messages }}"
    assert model_file(path).name == "Tiny Chat 1B (local)"
    bundled = read_metadata(bundled_model_path())
    assert bundled["general.architecture"] == "llama" and bundled["tokenizer.chat_template"]


def test_bad_model_files_are_refused_before_any_worker_starts(tmp_path) -> None:
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(ProviderError, match="not a GGUF model file"):
        LocalProvider(not_gguf)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(bundled_model_path().read_bytes()[:2000])
    with pytest.raises(ProviderError, match="truncated"):
        LocalProvider(truncated)
    no_template = _write_gguf(tmp_path / "base.gguf", [
        ("general.name", 8, struct.pack("<Q", 4) + b"Base")])
    with pytest.raises(ProviderError, match="no chat template") as caught:
        LocalProvider(no_template)
    assert caught.value.kind == "bad_request"
    with pytest.raises(GGUFError):
        read_metadata(not_gguf)


def test_cli_runs_any_gguf_file_and_resume_finds_it_again(tmp_path) -> None:
    copy = tmp_path / "my-model.Q4_1.gguf"
    copy.write_bytes(bundled_model_path().read_bytes())
    db = tmp_path / "runs.sqlite"
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PDR_MODEL")}
    done = subprocess.run(
        [sys.executable, "-m", "pdr_core", "--db", str(db), "run", "What is 2+2?",
         "--method", "single", "--max-tokens", "8", "--local", str(copy)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    [summary] = Store(db).list_runs()
    trace = Store(db).get_trace(summary.id)
    # Named from the file's own metadata, and recorded so that resume and fork find it.
    assert trace.config["model"] == "Smollm2 135M 8k Lc100K Mix1 Ep2 (local)"
    assert trace.config["base_url"] == f"local:{copy.resolve()}"
    missing = subprocess.run(
        [sys.executable, "-m", "pdr_core", "run", "What is 2+2?", "--local",
         str(tmp_path / "nope.gguf")], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=env)
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_settings_page_takes_a_gguf_file_and_refuses_a_bad_one(tmp_path, db) -> None:
    from streamlit.testing.v1 import AppTest

    from ui.endpoints import ENDPOINT

    copy = tmp_path / "other.gguf"
    copy.write_bytes(bundled_model_path().read_bytes())
    at = AppTest.from_file(str(ROOT / "pages" / "settings.py"), default_timeout=30).run()
    assert at.radio(key="endpoint_mode").value == "Bundled local model"
    assert any("SmolLM2-135M-Instruct runs on this machine" in i.value for i in at.info)
    at.text_input(key="local_model_path").input(str(tmp_path / "missing.gguf")).run()
    assert any("does not exist" in e.value for e in at.error)
    at.text_input(key="local_model_path").input(str(copy)).run()
    assert not at.error
    assert any("Smollm2 135M" in i.value for i in at.info)
    chosen = at.session_state[ENDPOINT]
    assert chosen.local and chosen.local_model == str(copy)


def test_sigill_on_a_cpu_without_avx2_says_how_to_rebuild(tmp_path) -> None:
    from pdr_core.providers.local.client import WorkerSpec, cpu_has_avx2, crash_message

    old = tmp_path / "cpuinfo"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n")
    assert not cpu_has_avx2(old)
    new = tmp_path / "cpuinfo2"
    new.write_text("flags\t\t: fpu sse avx avx2 fma\n")
    assert cpu_has_avx2(new)
    spec = WorkerSpec("m.gguf", 64, 1, 1, 1, 64)
    with_avx2 = crash_message(-signal.SIGILL, None, spec, [], avx2=True)
    assert "make clean && make run" in with_avx2 and "portable" in with_avx2
    without = crash_message(-signal.SIGILL, None, spec, ["last words"], avx2=False)
    assert "no AVX2" in without and "-DGGML_AVX2=OFF" in without
    assert "last words" in without and "m.gguf" in without


def test_batch_threads_come_from_the_environment_and_bad_values_are_refused(monkeypatch):
    from pdr_core.providers.local.provider import BATCH_THREADS_ENV, default_batch_threads

    monkeypatch.setenv(BATCH_THREADS_ENV, "1")
    assert LocalProvider().spec.n_threads_batch == 1
    monkeypatch.setenv(BATCH_THREADS_ENV, "zero")
    with pytest.raises(ProviderError, match=BATCH_THREADS_ENV):
        default_batch_threads()
    monkeypatch.delenv(BATCH_THREADS_ENV)
    assert LocalProvider(n_threads_batch=3).spec.n_threads_batch == 3
    assert LocalProvider().spec.n_threads_batch == (os.cpu_count() or 1)
