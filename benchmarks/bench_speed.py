"""Speed and memory benchmark: run_models latency, forward-pass FLOP/s vs the machine's, training and rendering.

    python benchmarks/bench_speed.py [--presets tiny,small,medium,paper] [--records 5] [--rss-records 1000]
    python benchmarks/bench_speed.py --smoke      # tiny preset only, a few records (CI)
    python benchmarks/bench_speed.py --model MODEL --data RECORDS [--records 100] [--rss-records N] [--read-ahead off]
        [--image-thread off]

Per preset and device: run_models latency per record (p50/p95) on synthetic records with one 100-dpi page (``--dpi``),
the share of it spent outside the forward passes (UNet, classifier, signal classifier) and in the digitizer, the
UNet's and classifier's FLOP/s (counted with FlopCounterMode) as a fraction of the dense fp32 matmul and conv
FLOP/s measured in the same run, training throughput (images/s) of both stages on random batches, renderer
images/s, training views/s one DataLoader worker renders (at the training dpi) and whether the preset's default
workers keep up with the slower stage (``data_supply_ratio`` > 1), peak RSS (and CUDA peak allocated memory),
and RSS growth over many run_models calls. Models have random weights (speed only).
With ``--model`` (a trained model folder) and ``--data`` (a folder of records with images, such as an accuracy
benchmark's test split), the same latency, shares, forward figures and RSS growth are measured for that model on
those records instead: a trained UNet's ink maps, where the digitizer does its real work (random weights give noise
maps, its worst case) and the signal-blend weight decides whether the image classifier runs at all.
On a CPU shared with other jobs use ``--threads 1``: with every core in torch's thread pool, each parallel
region waits for a descheduled thread and forward passes slow down up to 10x (measured on the 2-core dev box).
Records are timed in folder order, as run_model.py goes, so read-ahead (derc.readahead: the next records' images
decoded on spare cores) works as it does there wherever torch's threads leave a core; ``--read-ahead off`` times
each record reading its own images, and the image-intake share is the time a record waits for its pages.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from common import append_result, current_rss_mb, peak_rss_mb, random_model, synth
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import team_code
from derc.config import get_preset
from derc.data import ClassifierViews
from derc.inference import DENOISE_AHEAD_ENV, IMAGE_THREAD_ENV, DercModel
from derc.losses import DiceFocalLoss
from derc.models.factory import build_classifier_for, build_unet
from derc.readahead import READ_AHEAD_ENV
from derc.records import index_records
from derc.render import render_ecg
from derc.render.layout import dpi_for_width
from derc.runtime import THREADS_ENV, data_workers
from derc.signals import read_signal


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device: torch.device, repeats: int) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - began)
    return min(times)


def hardware_flops(device: torch.device, size: int) -> dict[str, float]:
    """Dense fp32 matmul FLOP/s and 3x3 conv FLOP/s (channels-last, 64 channels) on ``device``."""
    a = torch.randn(size, size, device=device)
    matmul = 2 * size**3 / _best_seconds(lambda: a @ a, device, 10)
    conv = nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device).to(memory_format=torch.channels_last).eval()
    x = torch.randn(4, 64, size // 8, size // 8, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            conv(x)
        conv_flops = counter.get_total_flops() / _best_seconds(lambda: conv(x), device, 5)
    return {"matmul_flops": matmul, "conv_flops": conv_flops}


def forward_figures(model: DercModel, shape: tuple[int, int], repeats: int) -> dict[str, float]:
    """Seconds, FLOPs and FLOP/s (fp32) of one image through the UNet and the classifier; with the model's bf16
    autocast (``DERC_BF16=1``) also their seconds under it, as ``run_models`` runs them."""
    x = torch.rand(1, 3, *shape, device=model.device).contiguous(memory_format=torch.channels_last)
    out = {}
    with torch.inference_mode():
        ink = model.unet.predict(x).contiguous(memory_format=torch.channels_last)
        for name, net, inputs in (("unet", model.unet, x), ("classifier", model.classifier, ink)):
            with FlopCounterMode(display=False) as counter:
                net(inputs)
            seconds = _best_seconds(lambda net=net, inputs=inputs: net(inputs), model.device, repeats)
            out[f"{name}_s"] = seconds
            out[f"{name}_gflop"] = counter.get_total_flops() / 1e9
            out[f"{name}_flops"] = counter.get_total_flops() / seconds
            if model.bf16:
                with torch.autocast(model.device.type, dtype=torch.bfloat16):
                    out[f"{name}_bf16_s"] = _best_seconds(lambda n=net, i=inputs: n(i), model.device, repeats)
    return out


@contextmanager
def forward_timer(model: DercModel, spans: list[tuple[float, float]]) -> Iterator[None]:
    """While active, the (start, end) wall times of every UNet, classifier and signal classifier forward pass are
    appended to ``spans``, from whichever thread runs them. Passes may overlap (the image classifier runs beside the
    digitizer, ``DercModel.image_thread``; a read-ahead helper denoises the next record, ``denoise_ahead_wanted``):
    :func:`covered` counts such time once."""
    began: dict[tuple[int, int], float] = {}  # per thread and net: two threads may run the same net at once

    def before(module: nn.Module, _inputs) -> None:
        _sync(model.device)
        began[threading.get_ident(), id(module)] = time.perf_counter()

    def after(module: nn.Module, _inputs, _output) -> None:
        _sync(model.device)
        spans.append((began.pop((threading.get_ident(), id(module))), time.perf_counter()))

    # the UNet runs through the denoiser wrapper (unet.predict calls forward directly: no UNet hooks fire)
    nets = [model.denoiser if model.denoiser is not None else model.unet, model.classifier]
    if model.signal_classifier is not None:
        nets.append(model.signal_classifier)
    handles = [
        hook for net in nets for hook in (net.register_forward_pre_hook(before), net.register_forward_hook(after))
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def covered(spans: list[tuple[float, float]]) -> float:
    """Seconds in which at least one of the (start, end) ``spans`` runs."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


class _TimedDigitizer:
    """The model's digitizer, with the wall time of each ``read`` call appended to ``seconds``, less the time of
    the UNet passes it asks for (a page its limb-lead check reads turned 180°): those are forward passes, which
    the forward timer already counts."""

    def __init__(self, inner, seconds: list[float]) -> None:
        self.inner, self.seconds = inner, seconds

    def page_index(self, pages: int) -> int:
        return self.inner.page_index(pages)

    def read(self, *args, denoise=None, **kwargs):
        denoising: list[float] = []

        def timed_denoise(page):
            began = time.perf_counter()
            try:
                return denoise(page)
            finally:
                denoising.append(time.perf_counter() - began)

        began = time.perf_counter()
        try:
            return self.inner.read(*args, denoise=None if denoise is None else timed_denoise, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - began - sum(denoising))


@contextmanager
def intake_timer(seconds: list[float]) -> Iterator[None]:
    """While active, the wall time of every record's image intake (``DercModel.load_pages``: checking, decoding,
    converting and orienting its images as ``run_models`` calls it, or waiting for the read-ahead that did) is
    appended to ``seconds``."""
    inner = DercModel.load_pages

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - began)

    DercModel.load_pages = timed
    try:
        yield
    finally:
        DercModel.load_pages = inner


def run_models_latency(
    model: DercModel, records: list[str], repeats: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per run_models call: its wall time, the share of it spent outside the forward passes, the share spent
    digitizing (same call; 0 where nothing is digitized: ink maps too coarse for the digitization output and
    labels that do not read the signal) and the share spent on image intake (decoding, converting, orienting)."""
    from derc.inference import Digitizer

    digitizer = Digitizer.for_model(model)
    # a model whose labels read the signal digitizes every record anyway (its own Digitizer when run_models
    # passes none); handing it one here times that digitizer without changing the work done
    reader = digitizer or (Digitizer() if model.reads_signal else None)
    team_code.run_models(records[0], digitizer, model, False)  # warm-up
    times, outside, digitizing, intake = [], [], [], []
    # every pass's span, whichever thread runs it: a read-ahead helper may denoise the next record during a call
    # (derc.inference.denoise_ahead_wanted), and such a pass counts where it overlaps the call
    forward: list[tuple[float, float]] = []
    with forward_timer(model, forward):
        for _ in range(repeats):
            for record in records:
                digitize_s: list[float] = []
                intake_s: list[float] = []
                timed = None if reader is None else _TimedDigitizer(reader, digitize_s)
                with intake_timer(intake_s):
                    began = time.perf_counter()
                    team_code.run_models(record, timed, model, False)
                    _sync(model.device)
                    ended = time.perf_counter()
                elapsed = ended - began
                times.append(elapsed)
                within = [(max(start, began), min(end, ended)) for start, end in list(forward) if end > began]
                outside.append(1.0 - covered([span for span in within if span[0] < span[1]]) / elapsed)
                digitizing.append(sum(digitize_s) / elapsed)
                intake.append(sum(intake_s) / elapsed)
    return times, outside, digitizing, intake


def training_throughput(config, device: torch.device, steps: int) -> dict[str, float]:
    """Images/s of a training step (forward, backward, Adam) of each stage on random batches."""
    h, w = config.image_height, config.image_width
    out = {}
    unet = build_unet(config).to(device).to(memory_format=torch.channels_last).train()
    classifier = build_classifier_for(config).to(device).to(memory_format=torch.channels_last).train()
    for name, net, batch, channels, loss_fn, target in (
        ("unet", unet, config.unet.batch_size, 3, DiceFocalLoss(), lambda n: torch.rand(n, 1, h, w) > 0.9),
        ("classifier", classifier, config.cls.batch_size, 1, nn.BCEWithLogitsLoss(), lambda n: torch.rand(n, 11)),
    ):
        batch = min(batch, 8) if device.type == "cpu" else batch
        x = torch.rand(batch, channels, h, w, device=device).contiguous(memory_format=torch.channels_last)
        y = target(batch).float().to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

        def step(net=net, x=x, y=y, optimizer=optimizer, loss_fn=loss_fn) -> None:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            optimizer.step()

        out[f"train_{name}_images_per_s"] = batch / _best_seconds(step, device, steps)
    return out


def render_rate(config, record: str, count: int) -> float:
    data = read_signal(record)
    rng = np.random.default_rng(0)
    dpi = dpi_for_width(config.image_width)
    began = time.perf_counter()
    for i in range(count):
        render_ecg(data.signal, data.fs, layout=("3x4", "6x2", "12x1")[i % 3], dpi=dpi, rng=rng)
    return count / (time.perf_counter() - began)


def training_views_rate(config, record: str, count: int) -> float:
    """Classifier training views/s one DataLoader worker makes (read, render at the training dpi, resize)."""
    views = ClassifierViews(index_records(Path(record).parent, [Path(record).name]), config, views=count, seed=0)
    began = time.perf_counter()
    for i in range(count):
        views[i]
    return count / (time.perf_counter() - began)


def rss_growth(model: DercModel, records: list[str], calls: int) -> dict[str, float]:
    from derc.inference import Digitizer

    digitizer = Digitizer.for_model(model)
    samples = []
    for i in range(calls):
        team_code.run_models(records[i % len(records)], digitizer, model, False)
        if i % max(1, calls // 10) == 0 or i == calls - 1:
            samples.append(current_rss_mb())
    # Growth after the first tenth (allocator warm-up) to the end.
    start = samples[1] if len(samples) > 1 else samples[0]
    return {"rss_calls": calls, "rss_start_mb": start, "rss_end_mb": samples[-1]}


def inference_figures(
    model: DercModel, records: list[str], hw: dict[str, float], *, repeats: int, forward_repeats: int
) -> dict:
    """run_models latency (each record timed ``repeats`` times) and its shares, and the forward passes' seconds,
    FLOPs and FLOP/s against the machine's matmul rate ``hw``; the process's peak RSS so far."""
    fwd = forward_figures(model, (model.config.image_height, model.config.image_width), forward_repeats)
    latency, outside, digitizing, intake = run_models_latency(model, records, repeats)
    hits = model.read_ahead.hits if model.read_ahead is not None else 0
    return {
        "bf16": model.bf16,  # run_models' forward passes under bfloat16 autocast
        # the next record's images read on a spare core while one runs (derc.readahead), and how many calls used them
        "read_ahead": model.read_ahead is not None,
        "read_ahead_hits": hits,
        # the helpers also denoised the pages they read (derc.inference.denoise_ahead_wanted), and for how many calls
        "denoise_ahead": model.read_ahead is not None and model.read_ahead.prepare is not None,
        "denoise_ahead_hits": model.read_ahead.prepared_hits if model.read_ahead is not None else 0,
        # the image classifier runs beside the digitizer (DercModel.image_thread)
        "image_thread": model.image_thread is not None,
        "latency_p50_s": float(np.percentile(latency, 50)),
        "latency_p95_s": float(np.percentile(latency, 95)),
        "latency_mean_s": float(np.mean(latency)),
        # median over calls of (call time - the time in which any of its forward passes runs) / call time
        "outside_forward_share": float(np.median(outside)),
        # the digitizer's and the image intake's (decoding, converting, orienting; resizing for the UNet is counted
        # in neither) time over the call's; with the image thread the digitizer's runs partly beside a forward pass
        "digitizer_share": float(np.median(digitizing)),
        "intake_share": float(np.median(intake)),
        **fwd,
        "unet_of_matmul": fwd["unet_flops"] / hw["matmul_flops"],
        "classifier_of_matmul": fwd["classifier_flops"] / hw["matmul_flops"],
        # process peak so far (with the presets: this and earlier presets' inference, before any training step)
        "peak_rss_inference_mb": peak_rss_mb(),
    }


def trained_model_figures(model_folder: str, data_folder: str, records: int, rss_calls: int) -> dict:
    """Latency, shares, forward figures and RSS growth of a trained model on the first ``records`` records (sorted)
    of ``data_folder``, each timed twice; the RSS check cycles through them for ``rss_calls`` calls."""
    folder = Path(data_folder)
    found = sorted(str(p.with_suffix("")) for p in folder.glob("*.hea"))[:records]
    if not found:
        raise SystemExit(f"{data_folder}: no records (*.hea) to time")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    hw = hardware_flops(device, 2048)
    model = DercModel.load(model_folder, device=device)
    row = {
        "model": str(model_folder),
        "data": str(data_folder),
        "records": len(found),
        "preset": model.config.preset,
        "device": device.type,
        "signal_weight": np.asarray(model.signal_weight).tolist(),
        **inference_figures(model, found, hw, repeats=2, forward_repeats=3),
        "hardware": hw,
    }
    if rss_calls > 0:
        row |= rss_growth(model, found, rss_calls)
    print(
        f"{model_folder} on {len(found)} records of {data_folder} ({device.type}, "
        f"{'bf16' if model.bf16 else 'fp32'}, read-ahead {_read_ahead_words(row)}, "
        f"image thread {'on' if row['image_thread'] else 'off'}): "
        f"p50 {row['latency_p50_s'] * 1e3:.1f} ms, "
        f"p95 {row['latency_p95_s'] * 1e3:.1f} ms, mean {row['latency_mean_s'] * 1e3:.1f} ms, outside forward "
        f"{row['outside_forward_share']:.0%} (digitizer {row['digitizer_share']:.0%}, "
        f"image intake {row['intake_share']:.0%}); UNet {row['unet_of_matmul']:.0%} / "
        f"classifier {row['classifier_of_matmul']:.0%} of matmul {hw['matmul_flops'] / 1e9:.1f} GF/s; peak RSS "
        f"{row['peak_rss_inference_mb']:.0f} MB"
        + (
            f"; RSS {row['rss_start_mb']:.1f} -> {row['rss_end_mb']:.1f} MB over {rss_calls} calls" if rss_calls else ""
        ),
        flush=True,
    )
    return row


def _read_ahead_words(row: dict) -> str:
    if not row["read_ahead"]:
        return "off"
    denoised = f", {row['denoise_ahead_hits']} denoised ahead" if row["denoise_ahead"] else ", not denoising"
    return f"on ({row['read_ahead_hits']} records read ahead{denoised})"


# --option auto|on|off -> (the environment switch it sets, help); auto leaves DercModel.load's rule to decide
SWITCHES = {
    "read-ahead": (
        READ_AHEAD_ENV,
        "read each next record's images on a spare core (auto: where torch's threads leave one)",
    ),
    "image-thread": (
        IMAGE_THREAD_ENV,
        "run the image classifier beside the digitizer (stage-C models that blend it; auto: where the cores allow, "
        "derc.inference.image_thread_wanted)",
    ),
    "denoise-ahead": (
        DENOISE_AHEAD_ENV,
        "the read-ahead helpers also denoise the pages they read (auto: on a GPU, or on a CPU beside the image "
        "thread with one torch thread: derc.inference.denoise_ahead_wanted)",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="tiny,small,medium,paper")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--records", type=int, default=5, help="records timed per preset (1-2 for medium/paper on CPU)")
    parser.add_argument(
        "--rss-records", type=int, default=1000, help="run_models calls for the RSS check (tiny, or --model)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all CPUs)")
    for option, (_, what) in SWITCHES.items():
        parser.add_argument(f"--{option}", choices=("auto", "on", "off"), default="auto", help=what)
    parser.add_argument(
        "--dpi", type=float, default=100.0, help="the presets' record pages (200: 2200x1700, the Challenge's size)"
    )
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--model", default=None, help="a trained model folder to time instead of random-weight presets")
    parser.add_argument("--data", default=None, help="with --model: the records (with images) to time it on")
    args = parser.parse_args(argv)
    if (args.model is None) != (args.data is None):
        parser.error("--model and --data go together")
    if args.smoke:
        args.presets, args.records, args.rss_records = "tiny", 2, 20
    if args.threads:
        os.environ[THREADS_ENV] = str(args.threads)  # DercModel.load sets the threads from it
        torch.set_num_threads(args.threads)
    for option, (env, _) in SWITCHES.items():
        choice = getattr(args, option.replace("-", "_"))
        if choice != "auto":
            os.environ[env] = "1" if choice == "on" else "0"  # DercModel.load reads them
    if args.model is not None:
        row = trained_model_figures(args.model, args.data, args.records, args.rss_records)
        append_result("speed_trained", {"threads": torch.get_num_threads(), **row})
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench_speed_"))
    records = [str(tmp / "data" / r) for r in synth(tmp / "data", max(args.records, 2), 7, images=1, dpi=args.dpi)]
    results: dict = {}
    for device_name in args.devices.split(","):
        device = torch.device(device_name)
        hw = hardware_flops(device, 1024 if device.type == "cpu" and args.smoke else 2048)
        results[device_name] = {"hardware": hw}
        for preset in args.presets.split(","):
            config = get_preset(preset)
            big = preset in ("medium", "paper") and device.type == "cpu"
            n = 1 if big else args.records
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            model = DercModel.load(random_model(tmp / f"model-{preset}", config), device=device)
            row = {
                **inference_figures(model, records[:n], hw, repeats=1 if big else 2, forward_repeats=1 if big else 3),
                "render_images_per_s": render_rate(config, records[0], 1 if big else 4),
                **training_throughput(config, device, 1 if big else 2),
                "train_views_per_s_per_worker": training_views_rate(config, records[0], 2 if big else 4),
                "data_workers": data_workers(config.num_workers),
                "peak_rss_mb": peak_rss_mb(),
            }
            # > 1: the default workers render training views faster than the slower stage's steps use them
            row["data_supply_ratio"] = (
                row["train_views_per_s_per_worker"]
                * max(1, row["data_workers"])
                / min(row["train_unet_images_per_s"], row["train_classifier_images_per_s"])
            )
            if device.type == "cuda":
                row["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            if preset == "tiny" and args.rss_records > 0:
                row |= rss_growth(model, records, args.rss_records)
            results[device_name][preset] = row
            print(
                f"{device_name} {preset}: p50 {row['latency_p50_s'] * 1e3:.0f} ms, "
                f"p95 {row['latency_p95_s'] * 1e3:.0f} ms, "
                f"outside forward {row['outside_forward_share']:.0%} (digitizer {row['digitizer_share']:.0%}, "
                f"image intake {row['intake_share']:.0%}), "
                f"{'bf16' if model.bf16 else 'fp32'} forward passes, read-ahead {_read_ahead_words(row)}; "
                f"UNet {row['unet_flops'] / 1e9:.1f} GF/s "
                f"({row['unet_of_matmul']:.0%}) / classifier {row['classifier_flops'] / 1e9:.1f} GF/s "
                f"({row['classifier_of_matmul']:.0%}) of matmul {hw['matmul_flops'] / 1e9:.1f} GF/s, "
                f"peak RSS {row['peak_rss_inference_mb']:.0f} MB inference / {row['peak_rss_mb']:.0f} MB training; "
                f"training UNet {row['train_unet_images_per_s']:.1f} / classifier "
                f"{row['train_classifier_images_per_s']:.1f} images/s, {row['data_workers']} worker(s) x "
                f"{row['train_views_per_s_per_worker']:.1f} views/s (supply ratio {row['data_supply_ratio']:.2f})",
                flush=True,
            )
    append_result(
        "speed",
        {
            "smoke": args.smoke,
            "records": args.records,
            "dpi": args.dpi,
            "threads": torch.get_num_threads(),
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
