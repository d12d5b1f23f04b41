"""Photo-like distortions of a rendered printout.

Geometric distortions (rotation, perspective, crop/padding, wrinkle and crease displacement) are
applied identically to the noisy page and to the clean trace mask; photometric ones (tint, marks,
shading, shadows, colour jitter, blur, sensor noise, JPEG) only to the noisy image.
Sizes are in page millimetres so a config looks alike at any dpi.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from derc.render.layout import px_per_mm
from derc.render.paper import composite_ink


@dataclass(frozen=True)
class NoiseConfig:
    """Probability (``*_p``) and strength of each distortion; :meth:`scaled` scales the strengths."""

    rotation_p: float = 0.8
    rotation_deg: float = 3.0  # max |angle|
    perspective_p: float = 0.5
    perspective: float = 0.03  # max corner shift, fraction of the page size
    crop_p: float = 0.3
    crop: float = 0.06  # max zoom-in, fraction
    pad_p: float = 0.3
    pad: float = 0.08  # max zoom-out, fraction
    wrinkle_p: float = 0.5
    wrinkle: float = 1.0  # ~mm of displacement, and shading strength
    crease_p: float = 0.4
    crease: float = 1.0
    shadow_p: float = 0.5
    shadow: float = 0.35  # max darkening
    tint_p: float = 0.6
    tint: float = 0.08  # max paper discolouration
    marks_p: float = 0.3
    marks: float = 1.0  # scales the number and size of handwritten marks
    blur_p: float = 0.5
    blur: float = 0.12  # max Gaussian sigma in mm
    noise_p: float = 0.7
    noise: float = 6.0  # max sensor-noise std, grey levels
    jpeg_p: float = 0.5
    jpeg: float = 0.7  # quality = 95 - 75 * strength * U(0, 1)
    color_p: float = 0.7
    color: float = 0.15  # brightness/contrast/white-balance jitter

    def scaled(self, level: float) -> NoiseConfig:
        """Same probabilities, strengths multiplied by ``level`` (0 = clean paper)."""
        changes = {f.name: getattr(self, f.name) * level for f in dataclasses.fields(self) if not f.name.endswith("_p")}
        return dataclasses.replace(self, **changes)


def _on(rng: np.random.Generator, p: float, strength: float) -> bool:
    """Draw the coin for a distortion (always drawn, so the random stream does not depend on strengths)."""
    coin = rng.random() < p
    return coin and strength > 0


# ----------------------------------------------------------------------------- geometry


def sample_homography(rng: np.random.Generator, shape: tuple[int, int], cfg: NoiseConfig) -> np.ndarray:
    """Page-pixel -> image-pixel homography from rotation, perspective and crop/padding."""
    h, w = shape
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    src = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=np.float64)
    dst = src.copy()
    if _on(rng, cfg.rotation_p, cfg.rotation_deg):
        a = np.deg2rad(rng.uniform(-1, 1) * cfg.rotation_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        dst = (dst - [cx, cy]) @ rot.T + [cx, cy]
    if _on(rng, cfg.perspective_p, cfg.perspective):
        dst = dst + rng.uniform(-1, 1, size=(4, 2)) * cfg.perspective * np.array([w, h])
    zoom = 1.0
    if _on(rng, cfg.crop_p, cfg.crop):
        zoom *= 1.0 + rng.uniform(0, cfg.crop)
    if _on(rng, cfg.pad_p, cfg.pad):
        zoom *= 1.0 - rng.uniform(0, cfg.pad)
    if zoom != 1.0:
        shift = (rng.uniform(-1, 1, size=2) * abs(1.0 - zoom) * np.array([w, h])) / 2
        dst = (dst - [cx, cy]) * zoom + [cx, cy] + shift
    if np.allclose(dst, src):
        return np.eye(3)
    return cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth random field in about [-1, 1] at ``shape`` from a coarse grid of ``cells`` along the long side."""
    h, w = shape
    gh, gw = max(2, round(cells * h / max(h, w))), max(2, round(cells * w / max(h, w)))
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def sample_height(rng: np.random.Generator, shape: tuple[int, int], cfg: NoiseConfig, ppm: float) -> np.ndarray | None:
    """Paper height field (in page pixels) of wrinkles and creases, at ``shape`` (a coarse working size)."""
    h, w = shape
    height = np.zeros(shape, dtype=np.float32)
    used = False
    if _on(rng, cfg.wrinkle_p, cfg.wrinkle):
        amp = cfg.wrinkle * ppm * rng.uniform(0.3, 1.0)
        height += amp * (_smooth_field(rng, shape, 6) + 0.4 * _smooth_field(rng, shape, 14))
        used = True
    if _on(rng, cfg.crease_p, cfg.crease):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for _ in range(int(rng.integers(1, 4))):
            vertical = rng.random() < 0.5
            pos = rng.uniform(0.2, 0.8) * (w if vertical else h)
            tilt = rng.uniform(-0.05, 0.05)
            dist = (xx - pos - tilt * yy) if vertical else (yy - pos - tilt * xx)
            width = rng.uniform(0.01, 0.03) * max(h, w)
            sign = rng.choice([-1.0, 1.0])
            height += sign * cfg.crease * ppm * rng.uniform(0.5, 1.5) * np.exp(-np.abs(dist) / width)
        used = True
    return height if used else None


def coarse_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """Working size (about 300 px on the short side) for smooth fields that are later resized up."""
    h, w = shape
    factor = max(1.0, min(h, w) / 300.0)
    return max(2, int(np.ceil(h / factor))), max(2, int(np.ceil(w / factor)))


def upsample(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a coarse field to ``shape`` (coarse pixel j sits at ``(j + 0.5) * scale - 0.5``)."""
    return cv2.resize(field.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Geometry:
    homography: np.ndarray  # page -> image
    map_x: np.ndarray | None  # image -> page sampling maps (None: plain homography)
    map_y: np.ndarray | None
    shading: np.ndarray | None  # multiplicative light from wrinkles/creases, at coarse_shape


def sample_geometry(rng: np.random.Generator, shape: tuple[int, int], cfg: NoiseConfig, dpi: float) -> Geometry:
    """Homography plus an optional displacement field (and its shading) from wrinkles and creases."""
    hom = sample_homography(rng, shape, cfg)
    h, w = shape
    small = coarse_shape(shape)
    sy, sx = h / small[0], w / small[1]
    height = sample_height(rng, small, cfg, px_per_mm(dpi) / np.sqrt(sx * sy))
    if height is None:
        return Geometry(hom, None, None, None)
    gy, gx = np.gradient(height)
    light = rng.uniform(-1, 1, size=2)
    light /= np.linalg.norm(light) + 1e-9
    slope = gx * light[0] + gy * light[1]
    strength = min(1.0, max(cfg.wrinkle, cfg.crease))
    shading = 1.0 + 0.05 * strength * np.clip(slope / (slope.std() + 1e-6), -3.0, 3.0)
    # image -> page map on the coarse grid, plus displacement (height in coarse px, slopes unitless)
    inv = np.linalg.inv(hom)
    u = (np.arange(small[1]) + 0.5) * sx - 0.5
    v = (np.arange(small[0]) + 0.5) * sy - 0.5
    uu, vv = np.meshgrid(u, v)
    den = inv[2, 0] * uu + inv[2, 1] * vv + inv[2, 2]
    map_x = (inv[0, 0] * uu + inv[0, 1] * vv + inv[0, 2]) / den + 0.8 * gx * sx
    map_y = (inv[1, 0] * uu + inv[1, 1] * vv + inv[1, 2]) / den + 0.8 * gy * sy
    return Geometry(hom, upsample(map_x, shape), upsample(map_y, shape), shading.astype(np.float32))


def warp(image: np.ndarray, geo: Geometry, border: float | tuple[float, ...]) -> np.ndarray:
    """Apply the geometry to an image (same output size), filling outside the page with ``border``."""
    h, w = image.shape[:2]
    if geo.map_x is None:
        if np.allclose(geo.homography, np.eye(3)):
            return image
        return cv2.warpPerspective(
            image, geo.homography, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border
        )
    return cv2.remap(image, geo.map_x, geo.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border)


# ----------------------------------------------------------------------------- photometric (page space)


def sample_tint(
    rng: np.random.Generator, small: tuple[int, int], cfg: NoiseConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """Yellowed / greyed paper: per-channel cast (3,) and a coarse blotch field (or None)."""
    if not _on(rng, cfg.tint_p, cfg.tint):
        return np.ones(3, dtype=np.float32), None
    strength = cfg.tint * rng.uniform(0.3, 1.0)
    cast = 1.0 - strength * np.array([rng.uniform(0, 0.3), rng.uniform(0.2, 0.6), 1.0], dtype=np.float32)
    blotch = 1.0 - 0.25 * strength * np.abs(_smooth_field(rng, small, 5))
    return cast, blotch


def draw_marks(page: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig, dpi: float) -> None:
    """Handwritten-looking pen marks and words on the float RGB page, in place."""
    if not _on(rng, cfg.marks_p, cfg.marks):
        return
    h, w = page.shape[:2]
    ppm = px_per_mm(dpi)
    mask = np.zeros((h, w), dtype=np.uint8)
    count = max(1, round(cfg.marks * rng.uniform(1, 5)))
    words = ["ok", "NSR?", "see prev", "Dr.", "repeat", "12/3", "lead off?", "pt moved", "?", "cf. old ECG", "STAT"]
    fonts = [cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX]
    thick = max(1, round(0.35 * ppm))
    for _ in range(count):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        kind = rng.integers(0, 3)
        if kind == 0:
            scale = 6.0 * ppm / 22.0 * rng.uniform(0.7, 1.5)  # ~6 mm tall letters
            text = str(rng.choice(words))
            cv2.putText(mask, text, (int(x), int(y)), int(rng.choice(fonts)), scale, 255, thick, cv2.LINE_AA)
        elif kind == 1:
            steps = int(rng.integers(20, 60))
            walk = np.cumsum(rng.normal(0, 1.2 * ppm, size=(steps, 2)), axis=0)
            walk = cv2.GaussianBlur(walk.astype(np.float32), (1, 9), 0)
            pts = np.round((walk + np.array([x, y], dtype=np.float32)) * 16).astype(np.int32)
            cv2.polylines(mask, [pts], False, 255, thick, cv2.LINE_AA, 4)
        else:
            axes = (int(rng.uniform(5, 25) * ppm), int(rng.uniform(3, 12) * ppm))
            angle, sweep = rng.uniform(0, 180), rng.uniform(250, 360)
            cv2.ellipse(mask, (int(x), int(y)), axes, angle, 0, sweep, 255, thick, cv2.LINE_AA)
    pen = np.array([[20, 40, 150], [15, 15, 20], [170, 20, 30], [30, 90, 50]], dtype=np.float32)[rng.integers(0, 4)]
    opacity = rng.uniform(0.6, 0.95)
    composite_ink(page, (mask * opacity).astype(np.uint8), pen)


# ----------------------------------------------------------------------------- photometric (image space)


def sample_shadow(rng: np.random.Generator, small: tuple[int, int], cfg: NoiseConfig) -> np.ndarray | None:
    """Coarse multiplicative field: uneven illumination and a soft-edged cast shadow (hand, phone)."""
    if not _on(rng, cfg.shadow_p, cfg.shadow):
        return None
    yy, xx = np.mgrid[0 : small[0], 0 : small[1]].astype(np.float32)
    ramp = (xx / small[1]) * rng.uniform(-1, 1) + (yy / small[0]) * rng.uniform(-1, 1)
    field = 1.0 - cfg.shadow * rng.uniform(0, 0.6) * ramp**2
    if rng.random() < 0.7:
        poly = (rng.uniform(0, 1, size=(int(rng.integers(3, 7)), 2)) * [small[1], small[0]]).astype(np.int32)
        hard = np.zeros(small, dtype=np.float32)
        cv2.fillPoly(hard, [cv2.convexHull(poly)], 1.0)
        soft = cv2.GaussianBlur(hard, (0, 0), rng.uniform(0.005, 0.04) * max(small))
        field -= cfg.shadow * rng.uniform(0.4, 1.0) * soft
    return np.clip(field, 0.2, 1.2)


def sample_color(rng: np.random.Generator, cfg: NoiseConfig) -> tuple[np.ndarray, float, float]:
    """Per-channel gain (3,), offset and gamma from brightness, contrast, gamma and white-balance jitter."""
    if not _on(rng, cfg.color_p, cfg.color):
        return np.ones(3), 0.0, 1.0
    s = cfg.color
    gains = 1.0 + 0.5 * rng.uniform(-s, s, size=3)
    contrast = 1.0 + rng.uniform(-s, s)
    brightness = 0.5 * 255.0 * rng.uniform(-s, s)
    gamma = float(np.exp(rng.uniform(-s, s)))
    return gains * contrast, float(brightness + 128.0 * (1.0 - contrast)), gamma


def color_lut(gains: np.ndarray, offset: float, gamma: float) -> np.ndarray | None:
    """A (256, 1, 3) uint8 lookup table for ``cv2.LUT`` (camera tone curve and white balance), or None."""
    if np.allclose(gains, 1.0) and offset == 0.0 and gamma == 1.0:
        return None
    x = np.arange(256, dtype=np.float64)[:, None]
    y = 255.0 * (x / 255.0) ** gamma * gains[None, :] + offset
    return np.clip(np.round(y), 0, 255).astype(np.uint8)[:, None, :]


def apply_blur(image: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig, dpi: float) -> np.ndarray:
    if not _on(rng, cfg.blur_p, cfg.blur):
        return image
    sigma = cfg.blur * px_per_mm(dpi) * rng.uniform(0.2, 1.0)
    if sigma < 0.3:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigma)


def _each_channel(op: np.ufunc, image: np.ndarray, plane: np.ndarray) -> None:
    """``image = op(image, plane[..., None])`` for an (H, W, 3) image and an (H, W) plane, in place, a channel at
    a time: numpy broadcasts ``plane[..., None]`` 3 values at a time, ~25-40 % slower at 100-200 dpi."""
    for ch in range(image.shape[2]):
        op(image[..., ch], plane, out=image[..., ch])


def apply_sensor_noise(image: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig) -> None:
    """Luminance noise (half-resolution, like demosaiced sensor noise) plus weak colour noise, in place."""
    if not _on(rng, cfg.noise_p, cfg.noise):
        return
    h, w = image.shape[:2]
    std = cfg.noise * rng.uniform(0.2, 1.0)
    lum = rng.standard_normal(((h + 1) // 2, (w + 1) // 2), dtype=np.float32) * std
    lum = cv2.resize(lum, (w, h), interpolation=cv2.INTER_LINEAR)
    chroma = rng.standard_normal(((h + 3) // 4, (w + 3) // 4, 3), dtype=np.float32) * (0.4 * std)
    chroma = cv2.resize(chroma, (w, h), interpolation=cv2.INTER_LINEAR)
    _each_channel(np.add, image, lum)
    image += chroma


def apply_jpeg(image: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig) -> np.ndarray:
    """JPEG round trip of a uint8 RGB image."""
    if not _on(rng, cfg.jpeg_p, cfg.jpeg):
        return image
    quality = round(95 - 75 * min(1.0, cfg.jpeg * rng.uniform(0, 1)))
    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return image
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def background_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """Colour of the table/scanner lid around the page."""
    choices = [(40, 38, 36), (120, 90, 60), (200, 200, 200), (90, 95, 100), (250, 250, 250)]
    base = np.asarray(choices[int(rng.integers(0, len(choices)))], dtype=np.float64)
    base = np.clip(base + rng.uniform(-15, 15, size=3), 0, 255)
    return (float(base[0]), float(base[1]), float(base[2]))


def _product(fields: list[np.ndarray | None]) -> np.ndarray | None:
    present = [f for f in fields if f is not None]
    if not present:
        return None
    out = present[0].astype(np.float32)
    for f in present[1:]:
        out = out * f
    return out


def distort(
    paper: np.ndarray, trace: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig, dpi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(noisy RGB uint8, clean gray uint8, page->image homography) from a float RGB page and its trace mask.

    ``paper`` is modified in place.
    """
    shape = trace.shape
    small = coarse_shape(shape)
    cast, blotch = sample_tint(rng, small, cfg)
    draw_marks(paper, rng, cfg, dpi)
    geo = sample_geometry(rng, shape, cfg, dpi)
    border = background_colour(rng)
    noisy = warp(paper, geo, border)
    clean = 255 - warp(trace, geo, 0.0)
    light = _product([blotch, geo.shading, sample_shadow(rng, small, cfg)])
    if light is not None:
        _each_channel(np.multiply, noisy, upsample(light, shape))
    noisy = apply_blur(noisy, rng, cfg, dpi)
    apply_sensor_noise(noisy, rng, cfg)
    out = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
    gains, offset, gamma = sample_color(rng, cfg)
    lut = color_lut(cast * gains, offset, gamma)
    if lut is not None:
        out = cv2.LUT(out, lut)
    out = apply_jpeg(out, rng, cfg)
    return out, np.ascontiguousarray(clean), geo.homography
