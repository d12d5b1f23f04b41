"""Shared helpers of the benchmarks: results file, machine description, synthetic data, random models."""

from __future__ import annotations

import json
import platform
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from derc import modelfolder as mf  # noqa: E402
from derc.checkpoints import save_weights  # noqa: E402
from derc.config import Config  # noqa: E402
from derc.fileio import write_png_atomic  # noqa: E402
from derc.models.factory import build_classifier_for, build_unet  # noqa: E402
from derc.render import NoiseConfig, render_ecg, write_record_images  # noqa: E402
from derc.signal_stage import build_signal_classifier  # noqa: E402
from derc.synth.dataset import write_dataset  # noqa: E402
from derc.thresholds import save_thresholds  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results.jsonl"
LAYOUTS = ("3x4", "6x2", "12x1")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def append_result(name: str, figures: dict[str, Any]) -> None:
    """Print ``figures`` and append them (with time and machine) as one JSON line to the results file."""
    row = {"benchmark": name, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine(), **figures}
    print(json.dumps(row, indent=1, default=float))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=float) + "\n")


def run_script(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run one of the Challenge scripts (``run_model.py``, ``evaluate_model.py`` ...) from the root; its stdout."""
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return done.stdout


def macro_f_of(evaluate_output: str) -> float:
    """The macro F-measure that evaluate_model.py printed."""
    return float(re.search(r"F-measure:\s*([-\d.na]+)", evaluate_output).group(1))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def image_writer(count: int, dpi: float, *, clean: bool = False):
    """A ``write_dataset`` image writer: noisy pages, or (``clean``) the renderer's clean trace images."""
    if not clean:

        def write_noisy(record_path: Path, signal: np.ndarray, fs: int, rng: np.random.Generator) -> list[str]:
            return write_record_images(record_path, signal, fs, count=count, rng=rng, layouts=LAYOUTS, dpi=dpi)

        return write_noisy

    def write_clean(record_path: Path, signal: np.ndarray, fs: int, rng: np.random.Generator) -> list[str]:
        names = []
        for n in range(count):
            layout = LAYOUTS[int(rng.integers(len(LAYOUTS)))]
            rendering = render_ecg(signal, fs, layout=layout, dpi=dpi, rng=rng, noise=NoiseConfig().scaled(0.0))
            name = f"{Path(record_path).name}-{n}.png"
            write_png_atomic(Path(record_path).with_name(name), np.repeat(rendering.clean[..., None], 3, axis=2))
            names.append(name)
        return names

    return write_clean


def synth(
    folder: Path,
    n: int,
    seed: int,
    *,
    images: int = 0,
    dpi: float = 100.0,
    clean: bool = False,
    balanced: bool = False,
) -> list[str]:
    """Synthetic labeled records (kept when ``folder`` already holds ``n`` headers).

    ``balanced``: every label is the focus of 1/11 of the records (see ``derc.synth.mix.sample_labels``).
    """
    if folder.is_dir() and len(list(folder.glob("*.hea"))) == n:
        return sorted(p.stem for p in folder.glob("*.hea"))
    writer = image_writer(images, dpi, clean=clean) if images else None
    return write_dataset(folder, n, seed=seed, balanced=balanced, image_writer=writer, progress=False)


def accuracy_data(
    work: Path, train: int, test: int, seed: int, dpi: float, mix: str
) -> tuple[Path, Path, Callable[[], Path]]:
    """The accuracy benchmarks' seeded data: (training records, test records with one noisy page each, and a
    function that makes the same test records rendered clean). They depend only on these arguments, so every
    variant and benchmark run with the same ones shares them (made once, kept in ``work``)."""
    tag = f"n{train}-{test}-s{seed}-dpi{dpi:g}-{mix}"
    balanced = mix == "balanced"
    train_dir, noisy_dir, clean_dir = work / f"train-{tag}", work / f"test-{tag}", work / f"test-clean-{tag}"
    synth(train_dir, train, seed, balanced=balanced)
    synth(noisy_dir, test, seed + 10_000, images=1, dpi=dpi, balanced=balanced)

    def clean_tests() -> Path:
        synth(clean_dir, test, seed + 10_000, images=1, dpi=dpi, clean=True, balanced=balanced)
        return clean_dir

    return train_dir, noisy_dir, clean_tests


def random_model(folder: Path, config: Config) -> Path:
    """A model folder with untrained weights (for timing), published like a trained one."""
    work = mf.work_dir(folder)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    save_weights(work / mf.UNET_FILE, build_unet(config))
    save_weights(work / mf.CLASSIFIER_FILE, build_classifier_for(config))
    info = {"fallback": [], "validation_records": 0}
    if config.signal_branch:  # timed as trained models of the preset run: the labels read the digitized signal
        save_weights(work / mf.SIGNAL_CLASSIFIER_FILE, build_signal_classifier(config))
        info["signal_weight"] = 1.0
    save_thresholds(work / mf.THRESHOLDS_FILE, np.full(11, 0.5), info=info)
    config.save(work / mf.CONFIG_FILE)
    mf.publish(folder, {"preset": config.preset, "records": 0})
    return folder
