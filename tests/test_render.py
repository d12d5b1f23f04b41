"""Renderer tests: geometry of the clean target, noisy/clean alignment, determinism, edge cases."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from derc.labels import LEADS
from derc.render import NoiseConfig, Rendering, render_ecg
from derc.render.gallery import demo_signal, main
from derc.render.layout import (
    GAIN_MM_PER_MV,
    LAYOUTS,
    PAPER_SPEED_MM_PER_S,
    dpi_for_width,
    page_layout,
    page_size_px,
    px_per_mm,
)
from derc.render.paper import GRID_SHARES, grid_colours
from derc.render.records import write_record_images

FS = 250.0
CLEAN = NoiseConfig().scaled(0.0)
OFFSETS = np.array([0.2, -0.2, 0.0] * 4)  # per-lead offset in mV, so a wrong lead shows up


def only(**on: float) -> NoiseConfig:
    """A config with every distortion off except the named probabilities (strengths stay default)."""
    probs = {f.name: 0.0 for f in dataclasses.fields(NoiseConfig) if f.name.endswith("_p")}
    probs.update(on)
    return NoiseConfig(**probs)


def known_signal(duration_s: float = 10.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(round(duration_s * FS)) / FS
    return amplitude * np.sin(2 * np.pi * t / 2.5)[:, None] + OFFSETS[None, :]


def expected_value(t: np.ndarray, lead: int, amplitude: float = 0.3) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * t / 2.5) + OFFSETS[lead]


def ink_centre(clean: np.ndarray, column: int, y_px: float, half_window: float) -> float | None:
    lo, hi = max(0, int(y_px - half_window)), min(clean.shape[0], int(y_px + half_window) + 1)
    ink = 255.0 - clean[lo:hi, column].astype(np.float64)
    if ink.sum() < 50:
        return None
    return float((np.arange(lo, hi) * ink).sum() / ink.sum())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_panels_land_where_the_layout_says(layout: str) -> None:
    dpi = 100.0
    ppm = px_per_mm(dpi)
    r = render_ecg(known_signal(), FS, layout=layout, dpi=dpi, noise=CLEAN, rng=np.random.default_rng(1))
    geometry = page_layout(layout)
    assert np.array_equal(r.page_to_image, np.eye(3))
    for panel in geometry.panels:
        lead = LEADS.index(panel.lead)
        x0, x1 = panel.x_mm * ppm, (panel.x_mm + panel.width_mm) * ppm
        columns = np.linspace(x0 + 2 * ppm, x1 - 2 * ppm, 9).round().astype(int)
        t = panel.t_start + (columns / ppm - panel.x_mm) / PAPER_SPEED_MM_PER_S
        rows = (panel.y_mm - expected_value(t, lead) * GAIN_MM_PER_MV) * ppm
        for column, row in zip(columns, rows):
            centre = ink_centre(r.clean, column, row, 0.35 * geometry.row_pitch_mm * ppm)
            assert centre is not None, (panel, column)
            assert abs(centre - row) < 0.5, (panel.lead, column, centre, row)


def test_clean_target_has_only_traces() -> None:
    dpi = 60.0
    ppm = px_per_mm(dpi)
    r = render_ecg(known_signal(), FS, layout="3x4", dpi=dpi, noise=CLEAN, rng=np.random.default_rng(2))
    allowed = np.zeros(r.clean.shape, dtype=bool)
    margin = 3
    for panel in page_layout("3x4").panels:
        top = int((panel.y_mm - 5.5) * ppm) - margin
        bottom = int((panel.y_mm + 5.5) * ppm) + margin
        left = int(panel.x_mm * ppm) - margin
        right = int((panel.x_mm + panel.width_mm) * ppm) + margin
        allowed[max(0, top) : bottom, max(0, left) : right] = True
    ink = r.clean < 250
    assert ink.sum() > 1000
    assert not (ink & ~allowed).any()
    # the noisy page has grid and text well outside the traces
    assert (r.noisy[~allowed].min(axis=-1) < 200).mean() > 0.05


@pytest.mark.parametrize("dpi", [200.0, 50.0, dpi_for_width(288), 20.0])
def test_image_sizes(dpi: float) -> None:
    r = render_ecg(demo_signal(np.random.default_rng(0), FS), FS, dpi=dpi, rng=np.random.default_rng(3))
    h, w = page_size_px(dpi)
    assert isinstance(r, Rendering)
    assert r.noisy.shape == (h, w, 3) and r.noisy.dtype == np.uint8
    assert r.clean.shape == (h, w) and r.clean.dtype == np.uint8
    assert r.page_to_image.shape == (3, 3)
    assert r.dpi == dpi and r.layout == "3x4"
    assert (r.clean < 250).any()
    if dpi == 200.0:
        assert (h, w) == (1700, 2200)


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    signal = demo_signal(np.random.default_rng(0), FS)
    noise = NoiseConfig(**{f.name: 1.0 for f in dataclasses.fields(NoiseConfig) if f.name.endswith("_p")})
    a = render_ecg(signal, FS, dpi=40.0, rng=np.random.default_rng(7), noise=noise, layout="6x2")
    b = render_ecg(signal, FS, dpi=40.0, rng=np.random.default_rng(7), noise=noise, layout="6x2")
    c = render_ecg(signal, FS, dpi=40.0, rng=np.random.default_rng(8), noise=noise, layout="6x2")
    assert a.noisy.tobytes() == b.noisy.tobytes() and a.clean.tobytes() == b.clean.tobytes()
    assert np.array_equal(a.page_to_image, b.page_to_image)
    assert a.noisy.tobytes() != c.noisy.tobytes()
    d = render_ecg(signal, FS, dpi=40.0)  # rng=None: a fixed seed
    e = render_ecg(signal, FS, dpi=40.0)
    assert d.noisy.tobytes() == e.noisy.tobytes()


@pytest.mark.parametrize("noise", [only(rotation_p=1, perspective_p=1), only(rotation_p=1, crop_p=1, pad_p=1)])
def test_homography_maps_the_page(noise: NoiseConfig) -> None:
    signal = known_signal()
    dpi = 60.0
    flat = render_ecg(signal, FS, dpi=dpi, noise=CLEAN, rng=np.random.default_rng(4))
    warped = render_ecg(signal, FS, dpi=dpi, noise=noise, rng=np.random.default_rng(4))
    assert not np.allclose(warped.page_to_image, np.eye(3))
    h, w = flat.clean.shape
    expected = cv2.warpPerspective(flat.clean, warped.page_to_image, (w, h), borderValue=255)
    ink_expected, ink_got = expected < 128, warped.clean < 128
    overlap = (ink_expected & ink_got).sum() / max(1, ink_expected.sum())
    assert overlap > 0.85
    assert np.abs(expected.astype(int) - warped.clean.astype(int)).mean() < 1.0


@pytest.mark.parametrize(
    "noise",
    [only(rotation_p=1, perspective_p=1), only(rotation_p=1, wrinkle_p=1, crease_p=1, crop_p=1)],
)
def test_noisy_and_clean_stay_aligned(noise: NoiseConfig) -> None:
    dpi = 60.0
    r = render_ecg(known_signal(), FS, dpi=dpi, noise=noise, rng=np.random.default_rng(5))
    trace = r.clean < 100
    assert trace.sum() > 500
    dark = r.noisy.max(axis=-1) < 140  # ink is black/dark blue; the red grid keeps its red channel high
    assert (dark & trace).sum() / trace.sum() > 0.9
    # shifting the clean mask by a couple of pixels breaks the match
    shifted = np.roll(trace, 3, axis=0)
    assert (dark & shifted).sum() / shifted.sum() < 0.6


def test_nan_samples_are_not_drawn() -> None:
    dpi = 60.0
    ppm = px_per_mm(dpi)
    signal = known_signal()
    signal[round(0.5 * FS) : round(1.5 * FS), 0] = np.nan  # lead I, inside its 0-2.5 s panel
    r = render_ecg(signal, FS, dpi=dpi, noise=CLEAN, rng=np.random.default_rng(6))
    panel = next(p for p in page_layout("3x4").panels if p.lead == "I")
    rows = slice(int((panel.y_mm - 8) * ppm), int((panel.y_mm + 8) * ppm))
    gap = slice(int((panel.x_mm + 0.6 * 25) * ppm), int((panel.x_mm + 1.4 * 25) * ppm))
    drawn = slice(int((panel.x_mm + 1.7 * 25) * ppm), int((panel.x_mm + 2.3 * 25) * ppm))
    assert (r.clean[rows, gap] >= 250).all()
    assert (r.clean[rows, drawn] < 128).any(axis=0).all()
    all_nan = np.full((100, 12), np.nan)
    assert (render_ecg(all_nan, FS, dpi=30.0, noise=CLEAN).clean == 255).all()


def test_short_and_long_signals_fill_their_windows() -> None:
    dpi = 60.0
    ppm = px_per_mm(dpi)
    short = render_ecg(known_signal(3.0), FS, dpi=dpi, noise=CLEAN, rng=np.random.default_rng(7))
    long = render_ecg(known_signal(14.0), FS, dpi=dpi, noise=CLEAN, rng=np.random.default_rng(7))
    inked_columns = (short.clean < 250).any(axis=0)
    end_of_data = int((20.0 + 3.0 * PAPER_SPEED_MM_PER_S) * ppm)
    assert inked_columns[int(20.0 * ppm) + 2 : end_of_data - 2].all()
    assert not inked_columns[end_of_data + 3 :].any()
    right_edge = int((20.0 + 250.0) * ppm)
    assert not (long.clean[:, right_edge + 3 :] < 250).any()
    assert (long.clean[:, right_edge - 3] < 250).any()


def test_lead_subset_case_insensitive() -> None:
    dpi = 60.0
    ppm = px_per_mm(dpi)
    signal = known_signal()[:, :2]
    r = render_ecg(signal, FS, leads=("ii", "V1"), dpi=dpi, noise=CLEAN, rng=np.random.default_rng(8))
    for panel in page_layout("3x4").panels:
        rows = slice(int((panel.y_mm - 6) * ppm), int((panel.y_mm + 6) * ppm))
        cols = slice(int((panel.x_mm + 2) * ppm), int((panel.x_mm + panel.width_mm - 2) * ppm))
        inked = (r.clean[rows, cols] < 250).any()
        assert inked == (panel.lead in ("II", "V1")), panel.lead
    with pytest.raises(ValueError):
        render_ecg(signal, FS, dpi=dpi)  # 2 columns but 12 leads


def test_noise_config_scaling() -> None:
    base = NoiseConfig()
    zero = base.scaled(0.0)
    double = base.scaled(2.0)
    for f in dataclasses.fields(NoiseConfig):
        if f.name.endswith("_p"):
            assert getattr(zero, f.name) == getattr(base, f.name)
        else:
            assert getattr(zero, f.name) == 0.0
            assert getattr(double, f.name) == pytest.approx(2 * getattr(base, f.name))
    r = render_ecg(known_signal(), FS, dpi=40.0, noise=zero, rng=np.random.default_rng(9))
    assert np.array_equal(r.page_to_image, np.eye(3))


def test_write_record_images(tmp_path) -> None:
    names = write_record_images(
        tmp_path / "00001_lr",
        known_signal(),
        FS,
        count=2,
        rng=np.random.default_rng(0),
        layouts=("6x2", "12x1"),
        dpi=30.0,
    )
    assert names == ["00001_lr-0.png", "00001_lr-1.png"]
    for name in names:
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and image.shape == (*page_size_px(30.0), 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_gallery_cli(tmp_path) -> None:
    out = tmp_path / "sheet.png"
    assert main(["-o", str(out), "--width", "120", "--per-layout", "1", "--layouts", "3x4", "12x1"]) == 0
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[1] == 2 * 120 + 6


def test_grid_colours_mix_red_grey_and_other_hues() -> None:
    """``"mixed"`` draws red, grey, other-hue and no grids near their shares; each named kind looks like itself."""
    rng = np.random.default_rng(0)
    kinds = {"red": 0, "grey": 0, "hue": 0, "none": 0}
    for _ in range(600):
        colours = grid_colours(rng, "mixed")
        if colours is None:
            kinds["none"] += 1
            continue
        r, g, b = major = colours[1]
        if max(major) - min(major) < 1e-6:
            kinds["grey"] += 1
        elif r >= g and r >= b and abs(g - b) < 0.25 * (r - min(g, b)) + 20:
            kinds["red"] += 1
        else:
            kinds["hue"] += 1
    for kind, share in GRID_SHARES.items():
        assert abs(kinds[kind] / 600 - share) < 0.08, kinds
    assert kinds["none"] > 0
    assert grid_colours(np.random.default_rng(1), "none") is None
    minor, major = grid_colours(np.random.default_rng(1), "grey")  # type: ignore[misc]
    assert max(minor) - min(minor) < 1e-6 and max(major) - min(major) < 1e-6 and sum(major) < sum(minor)
    with pytest.raises(ValueError, match="grid must be one of"):
        grid_colours(np.random.default_rng(1), "purple")  # type: ignore[arg-type]


def test_a_named_grid_kind_draws_no_extra_number() -> None:
    """Seeded red pages stay as they were before the mix: the named kind consumes the same draws as before."""
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    grid_colours(a, "red")
    b.uniform(size=4)  # hue, major saturation and value, minor saturation; nothing else
    assert a.random() == b.random()


@pytest.mark.parametrize("grid", ["red", "grey", "hue", "none"])
def test_the_photo_grid_takes_the_asked_colour_and_the_clean_target_ignores_it(grid: str) -> None:
    dpi = 40.0
    red = render_ecg(known_signal(), FS, dpi=dpi, noise=CLEAN, rng=np.random.default_rng(3), grid="red")
    other = render_ecg(known_signal(), FS, dpi=dpi, noise=CLEAN, rng=np.random.default_rng(3), grid=grid)
    np.testing.assert_array_equal(red.clean, other.clean)
    page = other.noisy.astype(np.float64)
    lines = (page.min(axis=2) < 235) & (other.clean >= 250)  # darker than paper, not the trace
    spread = (page.max(axis=2) - page.min(axis=2))[lines]
    if grid == "none":  # only the print marks, labels and header are left beside the trace
        red_lines = (red.noisy.min(axis=2) < 235) & (red.clean >= 250)
        assert lines.mean() < 0.3 * red_lines.mean()
    elif grid == "grey":
        assert np.median(spread) < 5
    else:
        assert np.median(spread) > 15
    if grid == "red":
        assert np.median(page[..., 0][lines] - page[..., 1][lines]) > 15
