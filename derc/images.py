"""Turn a record's image files into safe, normalised (H, W, 3) uint8 RGB arrays, or refuse them clearly.

The sequence is ``check_image_files`` (names, paths, magic bytes, header dimensions; nothing is decoded)
-> the official loader inside ``pixel_limit()`` -> ``to_rgb`` (full decode, EXIF orientation, any PIL
mode to RGB) -> ``orient_landscape`` (portrait and upside-down pages turned upright).
Every failure is a :class:`derc.errors.RecordError` naming the record, the file and the problem.

Orientation heuristic (``orient_landscape``): an ECG printout is landscape, with the printed header
(patient data) above the traces and lead labels at the left of panels. Ink is found on the
lighting-normalised max(R, G, B) (so red/pink grid is paper) at two levels: below 190, and below halfway
from the page's darkest ink to paper (dark grey, blue or deep-red grid lines pass the first level). After
a small closing, "glyphs" are ink components of letter-to-text-line size (0.6-3 % of the page height,
<= 60 % of its width); glyphs sharing rows with traces (long, tall components) are set aside when enough
others exist, which leaves mostly the header. The score ``mean(0.5 - y/H) + mean(0.5 - x/W)`` (weighted by
glyph width, averaged over the two levels) is exactly antisymmetric under a 180° turn. A portrait image is
turned 90° clockwise, or counter-clockwise when that score is negative; a landscape image is turned 180°
only when the score is below -0.2 with glyphs spanning >= 0.1 page widths at both levels (a false flip of
an upright page is the costlier error). Measured on drawn pages (tests/test_images.py ``draw_page``;
3x4/6x2/12x1, 700-1500 px, noise, blur, JPEG q30, 3300 px, 500 px, uneven light): 240 pages x 4 turns, no
upright page turned, 90°/270° always right, 180° right 236/240 (the one-level heuristic). On photographed
pages of our renderer (grids 70 % red, 15 % grey, 15 % other hues) and of benchmarks/foreign_pages.py
(seeded pages 0-299; levels and margin tuned on 0-199): upright pages turned 0/300 and 3/300 (one level:
1 and 14), 90°/270° wrong 0/200 and 13/200 (4 and 25), 180° left upside down 8/100 and 39/100 (7 and 36;
many foreign pages have no header to read). ``benchmarks/bench_orientation.py`` reruns this on 300 fresh pages
of each renderer at all four turns (2026-12-07: ours 2 / 6 of 600 / 13, foreign 0 / 41 of 600 / 96); the pages
are read at full size up to ANALYSIS_SIDE px, since reading them at half size missed 115 and 162 of the 180°
pages. A page left upside down here is read the right way up by the digitizer where its limb leads say so
(:mod:`derc.digitize.upright`).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps

from derc.errors import RecordError

log = logging.getLogger("derc")
T = TypeVar("T")

MAX_IMAGE_PIXELS: int = 40_000_000  # a 600-dpi US-letter scan is 6600 x 5100 = 33.7 MP
MIN_IMAGE_SIDE: int = 64

# extension -> PIL format name
_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".webp": "WEBP",
}
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
)
_ALPHA_MODES = {"RGBA", "LA", "PA", "La", "RGBa"}
_NUMERIC_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}
# Orientation analysis reads the page shrunk to at most this many pixels along its longer side.
ANALYSIS_SIDE = 1200
_FLIP_MARGIN = 0.2  # a landscape page is turned 180° only when the glyph score is below -margin
_MIN_EVIDENCE = 0.1  # summed glyph width, in page widths, needed to turn a landscape page over
# A page the intake left as shown whose glyph score reaches this reads upright by its text (Page.upright_by_text).
TEXT_UPRIGHT = 0.5
_INK_LEVEL = 190.0  # on lighting-normalised brightness (paper = 255): darker is ink
_DARKEST_PERCENT = 0.3  # the page's darkest ink: this percentile of the normalised brightness


def sniff_format(head: bytes) -> str:
    """What the first bytes of a file really are: a PIL format name, ``text`` or ``unknown binary data``."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        return "text"
    return f"unknown binary data (starts with {head[:8].hex()})"


def _contained_path(record: str, folder: Path, name: str) -> Path:
    """Resolve ``name`` under ``folder`` without touching its content; refuse anything that leaves it."""
    if not name or "\x00" in name:
        raise RecordError(record, f"invalid image file name {name!r} in the header")
    if os.path.isabs(name) or Path(name).is_absolute() or name.startswith(("/", "\\")):
        raise RecordError(record, f"image file name {name!r} is an absolute path; only names inside the record folder")
    try:
        resolved = (folder / name).resolve(strict=False)
    except (OSError, RuntimeError) as error:  # symlink loops
        raise RecordError(record, f"image file {name!r} cannot be resolved: {error}") from error
    if not resolved.is_relative_to(folder):
        raise RecordError(record, f"image file {name!r} resolves to {resolved}, outside the record folder {folder}")
    return resolved


def _read_head(record: str, name: str, path: Path) -> bytes:
    if not path.exists():
        raise RecordError(record, f"image file {name!r} listed in the header is missing ({path})")
    if not path.is_file():
        raise RecordError(record, f"image file {name!r} is not a regular file ({path})")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(32)
    except OSError as error:
        raise RecordError(record, f"image file {name!r} cannot be read: {error}") from error
    if size == 0:
        raise RecordError(record, f"image file {name!r} is empty (0 bytes)")
    return head


def _check_dimensions(record: str, name: str, path: Path, fmt: str) -> None:
    """Read width and height from the file header only (PIL's open is lazy) and check the limits."""
    try:
        with pixel_limit(), Image.open(path, formats=[fmt]) as image:
            width, height = image.size
    except Image.DecompressionBombError as error:
        raise RecordError(record, f"image file {name!r} is too large: {error}") from error
    except Image.DecompressionBombWarning as error:
        raise RecordError(record, f"image file {name!r} is too large: {error}") from error
    except Exception as error:  # PIL raises many types on a malformed header
        raise RecordError(record, f"image file {name!r} has an unreadable {fmt} header: {error}") from error
    if width * height > MAX_IMAGE_PIXELS:
        raise RecordError(
            record, f"image file {name!r} is {width} x {height} pixels, more than the limit of {MAX_IMAGE_PIXELS}"
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise RecordError(
            record, f"image file {name!r} is {width} x {height} pixels, a side is below {MIN_IMAGE_SIDE} pixels"
        )


def check_image_files(record: str, names: Sequence[str]) -> list[Path]:
    """Validate the header's image names and files before anything is decoded; return the resolved paths."""
    # Empty entries (e.g. a trailing comma in "# Image: a.png, ") name no file; the official loader skips them.
    names = [name for name in names if str(name).strip()]
    if not names:
        raise RecordError(record, "the header lists no image files (no '# Image:' entries)")
    folder = Path(os.path.dirname(record) or ".").resolve()
    paths = [_contained_path(record, folder, str(name)) for name in names]  # refuse escapes before any read
    # Like the official loader, a missing file is skipped while another listed image exists; a record
    # whose listed images are all missing is an error.
    missing = [name for name, path in zip(names, paths) if not os.path.lexists(path)]
    if len(missing) == len(names):
        raise RecordError(record, f"image file(s) listed in the header are missing: {', '.join(map(repr, missing))}")
    if missing:
        log.warning("record %s: skipping missing image file(s) %s", record, ", ".join(map(repr, missing)))
    kept = [(name, path) for name, path in zip(names, paths) if name not in missing]
    for name, path in kept:
        head = _read_head(record, name, path)
        actual = sniff_format(head)
        expected = _EXTENSIONS.get(path.suffix.lower())
        if expected is None and actual not in _EXTENSIONS.values():
            raise RecordError(record, f"image file {name!r} has an unsupported extension and contains {actual}")
        if expected is not None and actual != expected:
            raise RecordError(record, f"image file {name!r} is named as {expected} but contains {actual}")
        _check_dimensions(record, name, path, actual)
    return [path for _, path in kept]


class _StrictDecoding:
    """PIL's process-wide decoding settings held strict while any thread needs them (:func:`pixel_limit`).

    The first entry saves ``Image.MAX_IMAGE_PIXELS``, ``ImageFile.LOAD_TRUNCATED_IMAGES`` and the warning filters
    and sets the strict values; later entries (nested, or from another thread: the read-ahead decodes the next
    record while ``run_models`` works on this one) are counted, the pixel limit being the smallest any holder
    asked for; the last exit restores what the first saved. A plain save-and-restore per entry would let one
    thread restore the lax values while another still decodes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: list[int] = []  # one per holder
        self._saved: tuple[int | None, bool, warnings.catch_warnings] | None = None

    def enter(self, limit: int) -> None:
        with self._lock:
            if not self._limits:
                caught = warnings.catch_warnings()
                caught.__enter__()
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                self._saved = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, caught)
                ImageFile.LOAD_TRUNCATED_IMAGES = False
            self._limits.append(limit)
            Image.MAX_IMAGE_PIXELS = min(self._limits)

    def exit(self, limit: int) -> None:
        with self._lock:
            self._limits.remove(limit)
            if self._limits:
                Image.MAX_IMAGE_PIXELS = min(self._limits)
            elif self._saved is not None:
                Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, caught = self._saved
                self._saved = None
                caught.__exit__(None, None, None)


_STRICT = _StrictDecoding()


@contextmanager
def pixel_limit(limit: int = MAX_IMAGE_PIXELS) -> Iterator[None]:
    """While active, PIL refuses (raises on open) any image above ``limit`` pixels and decodes strictly (a truncated
    file raises). Nests, and is safe to hold from several threads at once: the smallest limit held applies."""
    _STRICT.enter(limit)
    try:
        yield
    finally:
        _STRICT.exit(limit)


def _scale_numeric(image: Image.Image) -> np.ndarray:
    """16-bit / 32-bit / float grey to uint8 by the image's actual finite range (no silent clipping)."""
    values = np.asarray(image).astype(np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        raise RecordError("", "image has no finite pixel values")
    low, high = float(values[finite].min()), float(values[finite].max())
    values = np.where(finite, values, low)
    if high > low:
        grey = np.rint((values - low) * (255.0 / (high - low)))
    else:
        grey = np.full(values.shape, np.clip(low, 0.0, 255.0), np.float32)  # constant image: nothing to scale
    return grey.astype(np.uint8)


def _composite_on_white(image: Image.Image) -> np.ndarray:
    rgba = np.asarray(image if image.mode == "RGBA" else image.convert("RGBA"))
    if rgba[..., 3].min() == 255:
        # opaque throughout (matplotlib, which ECG-Image-Kit plots with, saves RGBA PNGs by default): the composite
        # is the colour channels; the float arithmetic below cost ~100 ms on a 2200x1700 page, twice its decoding
        return cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    rgba = rgba.astype(np.float32)
    alpha = rgba[..., 3:4] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


def _convert(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in _ALPHA_MODES or (mode in {"P", "L", "RGB"} and "transparency" in image.info):
        return _composite_on_white(image)
    if mode in _NUMERIC_MODES:
        return np.repeat(_scale_numeric(image)[..., None], 3, axis=2)
    if mode == "RGB":
        return np.asarray(image)  # already RGB: no converted copy
    return np.asarray(image.convert("RGB"))  # 1, L, P, CMYK, YCbCr, LAB, ...: PIL raises if it cannot


def _exif_upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block is ignored (orient_landscape still runs)."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:
        return image
    if orientation == 1:
        return image  # upright already: no transposed copy
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        return image


def to_rgb(image: Image.Image, *, record: str = "") -> np.ndarray:
    """Fully decode ``image`` (strictly: truncation raises), apply EXIF orientation, return (H, W, 3) uint8."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise RecordError(record, f"image is {width} x {height} pixels, more than the limit of {MAX_IMAGE_PIXELS}")
    try:
        with pixel_limit():
            image.load()
        rgb = _convert(_exif_upright(image))
    except RecordError as error:
        raise RecordError(record, error.problem) from error
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, EOFError, ... on bad data
        raise RecordError(record, f"truncated or corrupt image ({type(error).__name__}: {error})") from error
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise RecordError(record, f"image converted to an unexpected array {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def channel_max(rgb: np.ndarray) -> np.ndarray:
    """max(R, G, B) of an (H, W, 3) uint8 image; ``rgb.max(axis=2)`` but ~50x faster (OpenCV, per channel)."""
    red, green, blue = cv2.split(rgb)
    return cv2.max(cv2.max(red, green), blue)


def _brightness(rgb: np.ndarray, side: int) -> np.ndarray:
    """max(R, G, B) shrunk to at most ``side`` px long, uneven lighting divided out (paper = 255), lightly blurred."""
    scale = side / max(rgb.shape[:2])
    brightness = channel_max(rgb)
    if scale < 1.0:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        brightness = cv2.resize(brightness, size, interpolation=cv2.INTER_AREA)
    # the paper level is a local maximum over a window wider than any stroke (a square one: OpenCV dilates by a
    # rectangle in two 1-D passes, ~8x faster than by a disc, and the box blur after it evens the corners out)
    window = max(15, round(max(brightness.shape) / 60)) | 1
    paper = cv2.blur(cv2.dilate(brightness, np.ones((window, window), np.uint8)), (window, window))
    # the box is no wider than the dilation, so paper >= brightness: the ratio stays in 0..255 (0 / 0 gives 0)
    level = cv2.divide(brightness, paper, scale=255.0)
    return cv2.GaussianBlur(level, (3, 3), 0.7)


def _ink_masks(rgb: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Ink at two levels: the fixed one (keeps faint header text) and one halfway from the page's darkest ink
    to paper (drops dark grid lines that the fixed level keeps); red/pink grid is paper at both."""
    brightness = _brightness(rgb, side)
    counts = cv2.calcHist([brightness], [0], None, [256], [0, 256]).ravel()  # ~10x faster than np.percentile
    darkest = float(np.searchsorted(np.cumsum(counts), counts.sum() * _DARKEST_PERCENT / 100.0))
    adaptive = min(_INK_LEVEL, (darkest + 255.0) / 2.0)
    return brightness < _INK_LEVEL, brightness < adaptive


def _glyph_score_of(ink: np.ndarray) -> tuple[float, float]:
    """(score, evidence) of one ink mask; see :func:`glyph_score`."""
    ink = ink.astype(np.uint8)
    height, width = ink.shape
    closing = max(3, round(width / 280))  # about 1 mm: letters join into words, trace pieces into traces
    ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((3, closing), np.uint8))
    count, _, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if count <= 1:
        return 0.0, 0.0
    y = stats[1:, cv2.CC_STAT_TOP]
    w, h, area = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_AREA]
    # glyphs: a letter (~1.3 mm tall) up to a line of words (<= 6.5 mm tall, <= 60% of the width)
    glyph = (h >= height * 0.006) & (h <= height * 0.03) & (w <= width * 0.6) & (area >= 4)
    glyph &= area <= 0.8 * w * h  # not a solid blob (a smudge, a filled margin)
    trace = (w > width * 0.25) & (h > height * 0.03)  # long and tall: a trace with its QRS spikes
    trace_rows = np.zeros(height, bool)
    for top, tall in zip(y[trace], h[trace]):
        trace_rows[top : top + tall] = True
    # rows [top, top + tall) of a component hold a trace row when the prefix count grows over them
    rows_before = np.concatenate(([0], np.cumsum(trace_rows)))
    free = glyph & (rows_before[y + h] == rows_before[y])
    if w[free].sum() >= _MIN_EVIDENCE * width:
        glyph = free
    if not glyph.any():
        return 0.0, 0.0
    cx, cy = centroids[1:, 0][glyph] / width, centroids[1:, 1][glyph] / height
    weights = w[glyph].astype(np.float64)  # words count by length, specks barely count
    score = np.average(0.5 - cy, weights=weights) + np.average(0.5 - cx, weights=weights)
    return float(score), float(w[glyph].sum() / width)


def glyph_score(rgb: np.ndarray, *, side: int = ANALYSIS_SIDE) -> tuple[float, float]:
    """Orientation score of a landscape page (> 0 upright, < 0 upside down) and its evidence.

    The evidence is the summed width of the glyphs used, in page widths (a line of header text is ~0.5).

    Glyphs are ink components of character-to-word size after a small closing (letters join into words,
    trace pieces join into long traces). Glyphs that share rows with a trace (labels, trace fragments)
    are set aside when others exist: what remains is mostly the printed header, which sits at the top
    of an ECG page, left-aligned. The score is antisymmetric under a 180° turn. It is the mean of the
    scores at the two ink levels of ``_ink_masks``, the evidence the smaller of the two: each level errs
    on its own pages (the fixed one where dark grid fragments pose as glyphs, the adaptive one where
    the header is fainter than the traces), and the pair errs less than either.
    """
    if side < 1:
        raise ValueError(f"side must be a positive number of pixels, got {side}")
    (fixed, fixed_evidence), (adaptive, adaptive_evidence) = map(_glyph_score_of, _ink_masks(rgb, side))
    return (fixed + adaptive) / 2.0, min(fixed_evidence, adaptive_evidence)


@dataclass(frozen=True)
class Page:
    """A record's image as the intake leaves it, with what its printed text said."""

    rgb: np.ndarray  # (H, W, 3) uint8, landscape
    kept: bool  # left as shown (True) or turned by the intake (portrait, or read upside down)
    text_score: float  # glyph score of ``rgb`` (positive: header at the top; see glyph_score)

    @property
    def upright_by_text(self) -> bool:
        """The text vouches for the page as shown: left unturned, and its glyph score reaches TEXT_UPRIGHT.
        A page the intake turned does not qualify: its score is the very evidence the intake acted on, and
        where that was wrong the page still reads upright by it (an upright page turned over at -0.77 reads
        +0.77). Of 800 pages per renderer at four quarter turns none left upside down scored above 0.35, but one
        foreign page of 200 more did (0.52, bench_orientation seed 0): the gate is a trade, not a proof."""
        return self.kept and self.text_score >= TEXT_UPRIGHT


def orient_page(rgb: np.ndarray, *, side: int = ANALYSIS_SIDE) -> Page:
    """Turn a portrait or upside-down ECG page upright (landscape, header at the top); see the module doc.
    ``side``: the page is read shrunk to at most this many pixels along its longer side."""
    if rgb.shape[0] > rgb.shape[1]:
        turned = np.rot90(rgb, k=-1)  # 90° clockwise
        score, _ = glyph_score(turned, side=side)
        upright = turned if score >= 0 else np.rot90(turned, k=2)
        return Page(np.ascontiguousarray(upright), False, abs(score))  # the score is antisymmetric under 180°
    score, evidence = glyph_score(rgb, side=side)
    if evidence >= _MIN_EVIDENCE and score < -_FLIP_MARGIN:
        return Page(np.ascontiguousarray(np.rot90(rgb, k=2)), False, -score)
    return Page(rgb, True, score)


def orient_landscape(rgb: np.ndarray, *, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """The page :func:`orient_page` turns upright, without what its text said."""
    return orient_page(rgb, side=side).rgb


def _close(images: Sequence[Image.Image]) -> None:
    for image in images:
        try:
            image.close()
        except Exception:
            pass


def load_record_images(
    record: str, names: Sequence[str], loader: Callable[[str], list[Image.Image]]
) -> list[np.ndarray]:
    """Check, load (via the official ``loader``), decode, convert and orient every image of ``record``."""
    return [page.rgb for page in load_record_pages(record, names, loader)]


def load_record_pages(record: str, names: Sequence[str], loader: Callable[[str], list[Image.Image]]) -> list[Page]:
    """:func:`load_record_images`, each image with what its printed text said of its orientation (:class:`Page`)."""
    return orient_record_images(record, read_record_images(record, names, loader))


def read_record_images(
    record: str, names: Sequence[str], loader: Callable[[str], list[Image.Image]]
) -> list[tuple[str, np.ndarray]]:
    """Check, load (via the official ``loader``), decode and convert every image of ``record``: (name, RGB) pairs,
    in the header's order, without the names of missing files the loader skipped."""
    paths = check_image_files(record, names)
    folder = Path(os.path.dirname(record) or ".").resolve()
    names = [n for n in names if str(n).strip() and _contained_path(record, folder, str(n)) in paths]
    images: list[Image.Image] = []
    try:
        with pixel_limit():
            try:
                images = list(loader(record))
            except Exception as error:
                raise RecordError(record, f"images cannot be opened ({type(error).__name__}: {error})") from error
            if len(images) != len(paths):
                raise RecordError(record, f"the loader returned {len(images)} images for {len(paths)} listed files")
            decode = partial(to_rgb, record=record)
            return [(name, _image_step(record, name, decode, image)) for name, image in zip(names, images)]
    finally:
        _close(images)


def orient_record_images(record: str, images: Sequence[tuple[str, np.ndarray]]) -> list[Page]:
    """:func:`orient_page` of each (name, RGB) pair of :func:`read_record_images`; errors name the record and file."""
    return [_image_step(record, name, orient_page, rgb) for name, rgb in images]


def _image_step(record: str, name: str, step: Callable[[Any], T], item: Any) -> T:
    try:
        return step(item)
    except RecordError as error:
        raise RecordError(record, f"image file {name!r}: {error.problem}") from error
    except Exception as error:
        raise RecordError(record, f"image file {name!r}: {type(error).__name__}: {error}") from error


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to (height, width); area averaging when shrinking, bilinear when enlarging."""
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] * image.shape[1] > height * width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
