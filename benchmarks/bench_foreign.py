"""A trained model on pages of another renderer: how much of its score is owed to our own rendering?

    python benchmarks/bench_foreign.py --model runs/bench_accuracy/model-signal \\
        --test runs/bench_accuracy/test-n3000-500-s0-dpi100-balanced [--records 500] [--seed 0]
    python benchmarks/bench_foreign.py --model ... --test ... --turn 2 [--no-upright-check]   # pages upside down
    python benchmarks/bench_foreign.py --smoke      # a random-weight tiny model, 4 records (CI)

The test records (signals and labels) are drawn twice: as they are (the package renderer's pages) and by
``foreign_pages.py``, an independent matplotlib renderer with its own page geometry, grid colours, fonts and
photo degradations, which the model never saw in training. Each set is run with run_model.py and scored
with evaluate_model.py (macro F); per-label AUROC comes from the model's probabilities on the same pages, for
the model's output and for the image route alone; with a signal branch, also how many pages the digitizer
refused and the SNR (dB, as the Challenge scores it) of the signals it read. ``--turn K`` writes every page
of both sets turned K quarter turns counter-clockwise (a scan fed the wrong way): the intake and the
digitizer's limb-lead check must set it upright; ``--no-upright-check`` reads the pages without that check
(AUROC and sklearn F only: run_model.py always runs the package's default). Appends one line to
benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, append_result, macro_f_of, random_model, run_script, synth
from foreign_pages import Drawn, draw_page
from PIL import Image
from sklearn.metrics import f1_score, roc_auc_score
from tqdm import tqdm

from derc.config import get_preset
from derc.digitize.evaluation import challenge_snr
from derc.fileio import write_png_atomic
from derc.images import load_record_pages
from derc.inference import DercModel, Digitizer
from derc.labels import LABELS, LEADS
from derc.records import index_records, write_test_inputs
from derc.signals import read_signal
from helper_code import get_image_files, load_images


def foreign_copy(
    source: Path, target: Path, records: list[str], seed: int, dpi: float, turn: int = 0
) -> dict[str, Drawn]:
    """Copy ``records`` (header, signal) to ``target`` with their pages redrawn by the foreign renderer under
    the same file names (3x4 three times in four, as on most printouts), turned ``turn`` quarter turns; returns
    what each record's page shows."""
    target.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for i, record in enumerate(tqdm(records, desc="foreign pages", leave=False)):
        rng = np.random.default_rng([seed, i])
        layout = "3x4" if rng.random() < 0.75 else "6x2"
        for suffix in (".hea", ".dat"):
            shutil.copyfile(source / f"{record}{suffix}", target / f"{record}{suffix}")
        data = read_signal(source / record)  # in LEADS order, as foreign_pages draws them
        for name in get_image_files(str(source / record)):
            page, drawn[record] = draw_page(data.signal, data.fs, rng=rng, layout=layout, dpi=dpi)
            write_png_atomic(target / name, np.ascontiguousarray(np.rot90(page, turn)))
    return drawn


def subset_copy(source: Path, target: Path, records: list[str], turn: int = 0) -> None:
    """The same records with their own pages (hard links where the file system allows; pages rewritten turned
    ``turn`` quarter turns when it is not 0)."""
    target.mkdir(parents=True, exist_ok=True)
    for record in records:
        for path in [*source.glob(f"{record}.*"), *source.glob(f"{record}-*")]:  # not another record's
            if turn % 4 and path.suffix.lower() == ".png":
                if not (target / path.name).exists():
                    with Image.open(path) as image:
                        page = np.asarray(image.convert("RGB"))
                    write_png_atomic(target / path.name, np.ascontiguousarray(np.rot90(page, turn)))
                continue
            if not (target / path.name).exists():
                try:
                    os.link(path, target / path.name)
                except OSError:
                    shutil.copyfile(path, target / path.name)


def official_f(model: Path, data: Path, work: Path) -> float:
    """Macro F of run_model.py's outputs as evaluate_model.py scores them."""
    inputs, outputs = work / f"inputs-{data.name}", work / f"outputs-{data.name}"
    shutil.rmtree(inputs, ignore_errors=True)
    shutil.rmtree(outputs, ignore_errors=True)
    write_test_inputs(data, inputs)
    run_script(["run_model.py", "-d", str(inputs), "-m", str(model), "-o", str(outputs), "-f"])
    return macro_f_of(run_script(["evaluate_model.py", "-d", str(data), "-o", str(outputs)]))


def read_pages(
    model_folder: Path, data: Path, snr_records: int, groups: dict[str, dict[str, str]], upright_check: bool = True
) -> dict:
    """Macro AUROC of the model's output and of its image route alone, macro F (sklearn, labels present) of
    its labels, each also per group of records (``groups``: {"grid": {record: "red"}, ...}); the digitizer's
    refusals, and the SNR of what it read on the first ``snr_records`` pages (aligning as evaluate_model does
    costs ~5 s a record)."""
    model = DercModel.load(model_folder, read_ahead=False)
    names = sorted(p.stem for p in data.glob("*.hea"))
    entries = index_records(data, names)
    digitizer = Digitizer(upright_check=upright_check) if model.reads_signal else None
    probs, image_probs, decided, truth, snr, refused = [], [], [], [], [], []
    for entry in tqdm(entries, desc=data.name, leave=False):
        loaded = load_record_pages(entry.path, get_image_files(entry.path), load_images)
        images = [page.rgb for page in loaded]
        record = read_signal(entry.path)
        pages = model.fit_inputs(images)
        ink = model.denoise(pages)
        signal = None
        if digitizer is not None:
            n = record.signal.shape[0]
            shapes = [np.shape(image)[:2] for image in images]  # as run_models passes them
            ink, reading = model.digitize(  # as read_record does: a page read upside down is also classified so
                ink,
                pages,
                digitizer,
                fs=record.fs,
                num_samples=n,
                leads=list(LEADS),
                record=entry.path,
                source_shapes=shapes,
                upright_by_text=loaded[digitizer.page_index(len(loaded))].upright_by_text,
            )
            signal = None if reading is None else reading.signal
            if signal is None:
                refused.append(entry.name)
            elif len(snr) < snr_records:
                snr.append(float(np.mean(challenge_snr(record.signal, signal, record.fs))))
        probs.append(model.probabilities(ink, signal=signal, fs=record.fs, leads=list(LEADS)))
        image_probs.append(model.probabilities(ink))
        decided.append(np.isin(LABELS, model.labels(probs[-1], image_only=signal is None)))
        truth.append(entry.labels)
    y, p, p_image, labels = np.array(truth), np.array(probs), np.array(image_probs), np.array(decided)

    def scores(rows: np.ndarray) -> dict[str, float]:
        yy = y[rows]
        both = [j for j in range(len(LABELS)) if 0 < yy[:, j].sum() < len(yy)]
        present = [j for j in range(len(LABELS)) if yy[:, j].any()]
        out = {"records": int(rows.sum())}
        if both:
            out["macro_auroc"] = float(np.mean([roc_auc_score(yy[:, j], p[rows, j]) for j in both]))
            out["macro_auroc_image"] = float(np.mean([roc_auc_score(yy[:, j], p_image[rows, j]) for j in both]))
        if present:
            out["macro_f_sklearn"] = float(np.mean([f1_score(yy[:, j], labels[rows, j]) for j in present]))
        return out

    out = scores(np.ones(len(y), dtype=bool))
    for group, of_record in groups.items():
        kinds = np.array([of_record.get(name, "") for name in names])
        out[f"by_{group}"] = {kind: scores(kinds == kind) for kind in sorted(set(kinds))}
    if digitizer is not None:
        out |= {
            "refused": len(refused),
            "refused_records": refused,
            "snr_db_median": float(np.median(snr)) if snr else float("nan"),
            "snr_db_mean": float(np.mean(snr)) if snr else float("nan"),
            "snr_records": len(snr),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a trained model folder")
    parser.add_argument("--test", type=Path, help="labelled test records with signals and one page each")
    parser.add_argument("--records", type=int, default=500, help="the first N test records")
    parser.add_argument("--seed", type=int, default=0, help="seeds the foreign pages")
    parser.add_argument("--dpi", type=float, default=100.0, help="dpi of the foreign pages")
    parser.add_argument("--snr-records", type=int, default=40, help="pages whose digitized signal is scored")
    parser.add_argument("--turn", type=int, default=0, choices=range(4), help="quarter turns of every page")
    parser.add_argument("--no-upright-check", action="store_true", help="the digitizer's limb-lead check off")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench_foreign")
    parser.add_argument("--smoke", action="store_true", help="random-weight tiny model, 4 records")
    args = parser.parse_args(argv)
    scratch = None
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="bench_foreign_"))
        args.workdir, args.records = scratch, 4
        args.test = scratch / "test"
        synth(args.test, 4, 10_000, images=1, dpi=60.0)
        args.model = random_model(scratch / "model", get_preset("tiny"))
    elif args.model is None or args.test is None:
        parser.error("--model and --test are required (or --smoke)")
    records = sorted(p.stem for p in args.test.glob("*.hea"))[: args.records]
    tag = f"{args.test.name}-n{len(records)}" + (f"-turn{args.turn}" if args.turn else "")
    own, foreign = args.workdir / f"own-{tag}", args.workdir / f"foreign-{tag}-s{args.seed}-dpi{args.dpi:g}"
    started = time.perf_counter()
    subset_copy(args.test, own, records, args.turn)
    drawn = foreign_copy(args.test, foreign, records, args.seed, args.dpi, args.turn)
    draw_s = time.perf_counter() - started
    figures = {}
    groups = {
        "grid": {record: d.grid for record, d in drawn.items()},
        "ink": {record: d.ink for record, d in drawn.items()},
        "layout": {record: d.geometry.layout for record, d in drawn.items()},
    }
    for name, data in (("own", own), ("foreign", foreign)):
        check = not args.no_upright_check
        scored = read_pages(args.model, data, args.snr_records, groups if name == "foreign" else {}, check)
        figures[name] = {"macro_f": official_f(args.model, data, args.workdir) if check else None, **scored}
    append_result(
        "accuracy_foreign",
        {
            "model": str(args.model),
            "test": str(args.test),
            "records": len(records),
            "seed": args.seed,
            "dpi": args.dpi,
            "turn": args.turn,
            "upright_check": not args.no_upright_check,
            "draw_s": round(draw_s, 1),
            **figures,
        },
    )
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
