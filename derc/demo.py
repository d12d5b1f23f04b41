"""The quick-start job: synthetic data -> train -> run -> evaluate, through the Challenge scripts.

    python -m derc.demo                 # 400 training + 100 test records, preset "small"
    python -m derc.demo --train 60 --test 20 --preset tiny   # a one-minute smoke run

Everything goes under ``--workdir`` (default ``demo/``): ``train/`` and ``test/`` (labeled records),
``test_input/`` (headers without labels + images, as the hidden set), ``model/``, ``outputs/``,
``scores.txt`` and ``per_class.csv``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(step: str, command: list[str], env: dict[str, str]) -> float:
    print(f"\n== {step}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    seconds = time.perf_counter() - started
    print(f"== {step} took {seconds:.0f} s", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="demo", help="folder for data, model and outputs (default: demo)")
    parser.add_argument("--train", type=int, default=400, help="synthetic training records (default: 400)")
    parser.add_argument("--test", type=int, default=100, help="synthetic test records (default: 100)")
    parser.add_argument("--preset", default="small", help="training preset (default: small)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpi", type=float, default=100.0, help="dpi of the test images (default: 100)")
    parser.add_argument("--keep", action="store_true", help="reuse existing data in --workdir")
    args = parser.parse_args(argv)

    work = Path(args.workdir).resolve()
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DERC_PRESET": args.preset, "PYTHONUNBUFFERED": "1"}
    py = sys.executable
    times = {}
    if not (work / "train").exists():
        times["synthesize train"] = _run(
            "synthesize training records",
            [py, "-m", "derc.synth", "-o", str(work / "train"), "-n", str(args.train), "-s", str(args.seed)],
            env,
        )
    if not (work / "test").exists():
        times["synthesize test"] = _run(
            "synthesize and render test records",
            [
                py,
                "-m",
                "derc.synth",
                "-o",
                str(work / "test"),
                "-n",
                str(args.test),
                "-s",
                str(args.seed + 10_000),
                "--images",
                "1",
                "--layout",
                "mixed",
                "--dpi",
                str(args.dpi),
            ],
            env,
        )
    from derc.records import write_test_inputs

    shutil.rmtree(work / "test_input", ignore_errors=True)
    write_test_inputs(work / "test", work / "test_input")
    times["train"] = _run(
        "train", [py, "train_model.py", "-d", str(work / "train"), "-m", str(work / "model"), "-v"], env
    )
    shutil.rmtree(work / "outputs", ignore_errors=True)
    times["run"] = _run(
        "run",
        [
            py,
            "run_model.py",
            "-d",
            str(work / "test_input"),
            "-m",
            str(work / "model"),
            "-o",
            str(work / "outputs"),
            "-f",
        ],
        env,
    )
    times["evaluate"] = _run(
        "evaluate",
        [
            py,
            "evaluate_model.py",
            "-d",
            str(work / "test"),
            "-o",
            str(work / "outputs"),
            "-s",
            str(work / "scores.txt"),
            "-tb",
            str(work / "per_class.csv"),
        ],
        env,
    )
    print("\n== scores (" + str(work / "scores.txt") + ")")
    print((work / "scores.txt").read_text().strip())
    print("== per-class F-measure")
    print((work / "per_class.csv").read_text().strip())
    print("== seconds per step: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
