"""Smoke runs of the benchmarks (tiny preset): they run end to end and append a result line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, tmp_path: Path) -> dict:
    results = ROOT / "benchmarks" / "results.jsonl"
    before = results.read_text().count("\n") if results.exists() else 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DERC_DEVICE": "cpu"}
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = results.read_text().splitlines()
    assert len(lines) == before + 1
    return json.loads(lines[-1])


@pytest.mark.slow
def test_speed_smoke(tmp_path) -> None:
    row = _run("bench_speed.py", tmp_path)
    tiny = row["results"]["cpu"]["tiny"]
    assert row["smoke"] and tiny["latency_p50_s"] > 0 and tiny["unet_gflop"] > 0
    assert row["results"]["cpu"]["hardware"]["matmul_flops"] > 0


@pytest.mark.slow
def test_accuracy_smoke(tmp_path) -> None:
    row = _run("bench_accuracy.py", tmp_path)
    assert set(row["variants"]) == {"unet", "raw"}
    assert all(0 <= v["macro_f"] <= 1 for v in row["variants"].values())
