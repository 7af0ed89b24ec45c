"""The installed llama.cpp was built for the portable CPU baseline, not the build machine."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

# Instructions outside the x86-64 AVX2 baseline the Makefile builds for: a library using
# them dies with SIGILL on CPUs (or VMs) without them.
OUTSIDE_BASELINE = ("AMX_INT8", "AMX_BF16", "AMX", "AVX512", "AVX512_VBMI", "AVX512_VNNI",
                    "AVX512_BF16", "AVX_VNNI")


def test_llama_cpp_reports_no_cpu_feature_outside_the_baseline() -> None:
    pytest.importorskip("llama_cpp")
    # In a child process: loading llama.cpp here would put native code in the test runner.
    done = subprocess.run(
        [sys.executable, "-c",
         "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = done.stdout
    enabled = set(re.findall(r"([A-Z0-9_]+) = 1", info))
    assert "AVX2" in enabled or not enabled, info
    assert not enabled & set(OUTSIDE_BASELINE), (
        f"llama.cpp was built with {sorted(enabled & set(OUTSIDE_BASELINE))}: rebuild it for "
        f"the portable baseline (make clean && make test). System info: {info}")
