"""A trained DeRC model at inference: images -> UNet ink maps -> classifier -> thresholds -> labels.

A model trained with ``Config.signal_branch`` also reads the signal off the ink map (the digitizer) and blends
its signal classifier's probabilities with the image classifier's, at the weight chosen in training. The image
classifier needs only the ink maps, so where the cores allow it runs on a thread of its own while the digitizer reads
them (:attr:`DercModel.image_thread`, :func:`image_thread_wanted`), with the same results. Where the next record's
pages are read ahead (:mod:`derc.readahead`), the helper that read them may denoise them too
(:func:`denoise_ahead_wanted`), so that the UNet's pass for one record runs while the caller digitizes the one before.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from derc import modelfolder as mf
from derc.checkpoints import load_weights
from derc.config import Config
from derc.errors import ModelFolderError
from derc.images import Page, load_record_pages, resize_image
from derc.labels import LABELS, LEADS, decode
from derc.models.factory import build_classifier_for, build_denoiser, build_unet
from derc.models.unet import UNet
from derc.readahead import Loader, NamesOf, ReadAhead, cpu_threads, read_ahead_depth
from derc.runtime import (
    BF16_ENV,
    HelperThreads,
    available_cpus,
    configure_threads,
    cpu_has_fast_bf16,
    env_switch,
    limit_blas_threads,
    pick_device,
    use_bf16,
)
from derc.signal_stage import blend, load_signal_classifier, signal_probabilities
from derc.signals import classifier_input, standardize_leads
from derc.thresholds import image_thresholds, load_threshold_info, load_thresholds

if TYPE_CHECKING:
    from derc.digitize.upright import Reading

log = logging.getLogger("derc")

# Ink maps narrower than this (pixels across the page) are not digitized; see Digitizer.for_model.
MIN_DIGITIZE_WIDTH = 512


@dataclass
class Denoised:
    """A record's images at the model's input size (RGB uint8) and their ink maps (:meth:`DercModel.denoise_pages`)."""

    pages: list[np.ndarray]
    ink: torch.Tensor


@dataclass
class DercModel:
    """UNet + classifier + per-label thresholds, loaded once and kept on the device."""

    config: Config
    unet: UNet
    classifier: nn.Module
    thresholds: np.ndarray
    device: torch.device
    # Noisy RGB batch -> ink map (the UNet's, or the "none" ablation's grey levels); default: the UNet.
    denoiser: nn.Module | None = None
    # Stage C (Config.signal_branch): the digitized signal's classifier and its weight in the blend (one, or
    # one per label).
    signal_classifier: nn.Module | None = None
    signal_weight: float | np.ndarray = 0.0
    bf16: bool = False  # forward passes under bfloat16 autocast (runtime.use_bf16)
    # A signal branch's thresholds for the image probabilities alone (a page the digitizer could not read);
    # None: ``thresholds`` serve both (models without a signal branch, or trained before these existed).
    image_thresholds: np.ndarray | None = None
    # Reads the next record's images while this one runs (derc.readahead); None: each record reads its own.
    read_ahead: ReadAhead | None = None
    # Runs the image classifier's forward pass while the caller digitizes the same ink maps (see
    # :meth:`read_record`); None: one after the other.
    image_thread: HelperThreads | None = None
    # One :meth:`denoise_pages` at a time: the read-ahead helpers' passes run in turn (see there).
    ahead_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        model_folder: str | os.PathLike[str],
        *,
        device: torch.device | None = None,
        read_ahead: bool | None = None,
        image_thread: bool | None = None,
    ) -> DercModel:
        """The model in ``model_folder`` on ``device`` (default: CUDA when present). ``read_ahead``: whether
        :meth:`load_pages` reads each next record's images on a spare core (:mod:`derc.readahead`); None decides
        by the machine and the model (and may leave a CPU core out of torch's threads for it); False for callers
        that read the images themselves. ``image_thread``: whether the image classifier runs beside the digitizer
        (:meth:`read_record`); None decides by the model and the machine (:func:`image_thread_wanted`)."""
        paths = mf.resolve(model_folder)
        try:
            config = Config.load(paths[mf.CONFIG_FILE])
        except ValueError as error:
            raise ModelFolderError(str(error)) from error
        device = device or pick_device()
        if device.type == "cpu":
            configure_threads(cpu_threads(config) if read_ahead is None else None)
        limit_blas_threads()  # the digitizer's small least-squares fits run faster on one BLAS thread
        unet = build_unet(config)
        load_weights(paths[mf.UNET_FILE], unet, what="UNet weights")
        classifier = build_classifier_for(config)
        load_weights(paths[mf.CLASSIFIER_FILE], classifier, what="classifier weights")
        thresholds = load_thresholds(paths[mf.THRESHOLDS_FILE])
        unet = fuse_conv_bn(unet.eval()).to(device).to(memory_format=torch.channels_last)
        classifier = fuse_conv_bn(classifier.eval()).to(device).to(memory_format=torch.channels_last)
        denoiser = build_denoiser(config, unet).to(device)
        signal_classifier, weight, image_only = None, 0.0, None
        if config.signal_branch:
            if mf.SIGNAL_CLASSIFIER_FILE not in paths:
                raise ModelFolderError(
                    f"model folder {model_folder} was trained with a signal branch but has no "
                    f"{mf.SIGNAL_CLASSIFIER_FILE}"
                )
            signal_classifier = fuse_conv_bn(load_signal_classifier(paths[mf.SIGNAL_CLASSIFIER_FILE], config).eval())
            signal_classifier = signal_classifier.to(device)
            info = load_threshold_info(paths[mf.THRESHOLDS_FILE])
            weight = _signal_weight(info, paths[mf.THRESHOLDS_FILE])
            image_only = image_thresholds(info, paths[mf.THRESHOLDS_FILE])
            import derc.digitize  # noqa: F401  (compiles the tracer now, in load_models, not on the first record)
        bf16 = use_bf16(device)
        if bf16:
            log.info("inference runs its forward passes in bfloat16 on %s (%s=1)", device, BF16_ENV)
        elif device.type == "cpu" and cpu_has_fast_bf16():
            log.info("this CPU runs bfloat16 ~1.8x faster: %s=1 uses it (labels of ~5%% of records may move)", BF16_ENV)
        depth = read_ahead_depth(device) if read_ahead is None else int(read_ahead)
        helper = ReadAhead(depth=depth) if depth else None
        if helper is not None:
            log.info("the next %d record(s)' images are read on spare cores while one runs (derc.readahead)", depth)
        parts = (config, unet, classifier, thresholds, device, denoiser, signal_classifier, weight, bf16, image_only)
        model = cls(*parts, read_ahead=helper)
        if image_thread if image_thread is not None else image_thread_wanted(model):
            model.image_thread = HelperThreads("derc-image-classifier")
        if helper is not None and denoise_ahead_wanted(model):
            helper.prepare = model.denoise_pages
            log.info("the helpers that read the next records' images also denoise them (UNet) while one runs")
        return model

    @property
    def reads_signal(self) -> bool:
        """True when the labels also use the signal digitized from the ink map (stage C)."""
        return self.signal_classifier is not None and bool(np.any(np.asarray(self.signal_weight) > 0))

    @property
    def signal_only(self) -> bool:
        """True when a record whose signal was read takes its labels from the signal classifier alone (a blend
        weight of 1 for every label), so the image classifier runs only for pages the digitizer cannot read."""
        return self.reads_signal and bool(np.all(np.asarray(self.signal_weight) >= 1.0))

    def fit_inputs(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The RGB uint8 images resized to the model's input size (as they are when already that size)."""
        h, w = self.config.image_height, self.config.image_width
        return [resize_image(np.asarray(image), h, w) for image in images]

    def to_batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 images -> (n, 3, H, W) channels-last float tensor on the device at the model's input size.

        Resizing happens on uint8 (4x less memory traffic than float), and the only float copy is the
        conversion itself: NHWC uint8 viewed as NCHW is already the channels-last layout.
        """
        stacked = np.stack(self.fit_inputs(images))
        batch = torch.from_numpy(stacked).to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        return batch.float().div_(255.0)

    @torch.inference_mode()
    def denoise(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(n, 1, H, W) ink probability maps (1 = waveform) of RGB images."""
        if not images:
            raise ValueError("no images to denoise")
        batch = self.to_batch(images)
        with self._autocast():
            ink = self.unet.predict(batch) if self.denoiser is None else self.denoiser(batch)
        return ink.float()

    def denoise_pages(self, pages: Sequence[Page]) -> Denoised:
        """The pages' images at the model's input size and their ink maps, as :meth:`read_record` makes them (the
        read-ahead helper's step where :func:`denoise_ahead_wanted`). Calls run one at a time (:attr:`ahead_lock`):
        several helpers' passes at once would hold as many passes' activations (on a GPU, which runs them in turn
        anyway, up to four of them at ``paper``) and, on a CPU, crowd the cores the caller needs."""
        fitted = self.fit_inputs([page.rgb for page in pages])
        with self.ahead_lock:
            return Denoised(fitted, self.denoise(fitted))

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    @torch.inference_mode()
    def probabilities(
        self,
        ink: torch.Tensor,
        *,
        signal: np.ndarray | None = None,
        fs: float | None = None,
        leads: Sequence[str] | None = None,
        from_images: np.ndarray | None = None,
    ) -> np.ndarray:
        """Label probabilities of a record from its images' ink maps: the mean over its images.

        With a signal branch and the record's digitized ``signal`` (samples x ``leads``, NaN where not shown, at
        ``fs``), the blend of these and the signal classifier's; without a signal (the digitizer failed), these.
        ``from_images``: the image classifier's probabilities of ``ink``, where already computed.
        """
        if not self.reads_signal or signal is None or fs is None:
            return self._image_probabilities(ink) if from_images is None else from_images
        standard = standardize_leads(np.asarray(signal, dtype=np.float32), list(leads or LEADS))
        x = torch.from_numpy(classifier_input(standard, float(fs), hz=self.config.signal_hz))[None]
        with self._autocast():
            from_signal = signal_probabilities(self.signal_classifier, x, self.device)[0]
        if self.signal_only:
            return from_signal  # the image classifier has no say: skip its forward pass
        return blend(
            self._image_probabilities(ink) if from_images is None else from_images, from_signal, self.signal_weight
        )

    def _image_probabilities(self, ink: torch.Tensor) -> np.ndarray:
        with self._autocast():
            logits = self.classifier(ink.contiguous(memory_format=torch.channels_last))
        return torch.sigmoid(logits.float()).mean(dim=0).cpu().numpy()

    @torch.inference_mode()  # inference mode is per thread: the image thread enters its own
    def _image_probabilities_beside(self, ink: torch.Tensor) -> np.ndarray:
        return self._image_probabilities(ink)

    def load_pages(self, record: str, names: Sequence[str], loader: Loader, names_of: NamesOf) -> list[Page]:
        """The record's pages (:func:`derc.images.load_record_pages`: checked, decoded, upright), read ahead when
        :attr:`read_ahead` is on; ``names`` are the header's image names, ``names_of`` reads them from a header."""
        if self.read_ahead is None:
            return load_record_pages(record, names, loader)
        return self.read_ahead.load_pages(record, names, loader, names_of)

    def read_record(
        self,
        images: Sequence[np.ndarray],
        *,
        fs: float,
        num_samples: int,
        leads: Sequence[str],
        digitizer: Digitizer | None = None,
        record: str = "",
        upright_by_text: Sequence[bool] | None = None,
        denoised: Denoised | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(label probabilities, digitized signal or None) of one record's images.

        The ink maps are digitized when ``digitizer`` is given (the record's digitization output) or the labels
        use the signal (stage C); the same signal serves both (see :meth:`digitize`). ``upright_by_text``: per
        image, whether its printed text vouches for it as shown (:attr:`derc.images.Page.upright_by_text`, from
        :func:`derc.images.load_record_pages`); such a page is not read turned by the digitizer's check.
        ``denoised``: these images' :meth:`denoise_pages`, where already made (the read-ahead helper's: see
        :meth:`read_pages`).
        """
        if denoised is not None:
            if len(denoised.pages) != len(images):
                raise ValueError(f"{len(denoised.pages)} denoised pages for {len(images)} images")
            pages, ink = denoised.pages, denoised.ink
        else:
            pages = self.fit_inputs(images)  # resized once: the digitizer reads the grid off these too
            ink = self.denoise(pages)
        reader = digitizer or (Digitizer() if self.reads_signal else None)
        signal, from_images = None, None
        if reader is not None:
            shapes = [np.shape(image)[:2] for image in images]
            if upright_by_text is not None and len(upright_by_text) != len(images):
                raise ValueError(f"upright_by_text has {len(upright_by_text)} flags for {len(images)} images")
            vouched = bool(upright_by_text[reader.page_index(len(images))]) if upright_by_text else False
            beside = self._classify_beside(ink)
            read_ink, reading = self.digitize(
                ink,
                pages,
                reader,
                fs=fs,
                num_samples=num_samples,
                leads=leads,
                record=record,
                source_shapes=shapes,
                upright_by_text=vouched,
            )
            if beside is not None:
                from_images = beside.result()
                if read_ink is not ink:  # a page read turned: classify the ink map the signal came from
                    from_images = None
            ink = read_ink
            signal = None if reading is None else reading.signal
        return self.probabilities(ink, signal=signal, fs=fs, leads=leads, from_images=from_images), signal

    def _classify_beside(self, ink: torch.Tensor) -> Future[np.ndarray] | None:
        """The image classifier's probabilities of ``ink``, computed on :attr:`image_thread` while the caller
        digitizes (None: no such thread, or a signal-only model, which skips that forward pass for read pages).

        The pass is the same as in the caller's thread, so the probabilities are the same numbers; it releases the
        interpreter's lock while it computes, and the digitizer's compiled kernels do too.
        """
        if self.image_thread is None or self.signal_only:
            return None
        return self.image_thread.submit(self._image_probabilities_beside, ink)

    def read_pages(
        self,
        pages: Sequence[Page],
        *,
        fs: float,
        num_samples: int,
        leads: Sequence[str],
        digitizer: Digitizer | None = None,
        record: str = "",
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`read_record` of a record's pages as :func:`derc.images.load_record_pages` left them: their
        images, each with what its printed text said of its orientation (``run_models`` reads records so). Pages
        that :meth:`load_pages` returned come with their ink maps where the read-ahead helper denoised them."""
        ahead = self.read_ahead.prepared_for(pages) if self.read_ahead is not None else None
        return self.read_record(
            [page.rgb for page in pages],
            fs=fs,
            num_samples=num_samples,
            leads=leads,
            digitizer=digitizer,
            record=record,
            upright_by_text=[page.upright_by_text for page in pages],
            denoised=ahead if isinstance(ahead, Denoised) else None,
        )

    def digitize(
        self,
        ink: torch.Tensor,
        pages: Sequence[np.ndarray],
        reader: Digitizer,
        *,
        fs: float,
        num_samples: int,
        leads: Sequence[str],
        record: str = "",
        source_shapes: Sequence[tuple[int, int]] | None = None,
        upright_by_text: bool = False,
    ) -> tuple[torch.Tensor, Reading | None]:
        """(the ink maps as ``reader`` read them, the digitized page's reading or None) of a record's ink maps and
        their ``pages`` (RGB at the model's input size); the reading's ``signal`` is the record's signal (see
        :class:`derc.digitize.upright.Reading`). ``upright_by_text``: the digitized page's text vouches for it as
        shown (see :meth:`Digitizer.read`). Where the digitizer's check wants a page read turned 180°, the UNet
        denoises that page turned; a page read that way (its orientation score said so) comes back as that ink map, so
        that the image route classifies what the signal came from."""
        redone: list[torch.Tensor] = []  # the turned page's ink map, when the digitizer asked for it

        def denoise_turned(page: np.ndarray) -> torch.Tensor:
            redone.append(self.denoise([page]))
            return redone[-1]

        reading = reader.read(
            ink,
            fs=fs,
            num_samples=num_samples,
            leads=leads,
            record=record,
            images=pages,
            source_shapes=source_shapes,
            denoise=denoise_turned,
            upright_by_text=upright_by_text,
        )
        if reading is None:
            return ink, None
        if reading.turned:
            index = reader.page_index(ink.shape[0])
            ink = ink.clone()
            ink[index] = redone[-1][0] if redone else torch.rot90(ink[index], 2, dims=(1, 2))
        return ink, reading

    def labels(self, probabilities: np.ndarray, *, image_only: bool = False) -> list[str]:
        """The labels whose probability reaches its threshold. ``image_only``: the probabilities are the image
        classifier's alone (no signal was read), decoded with the image route's thresholds where the model has
        them (a signal branch's blend thresholds are fitted to the blend, not to these)."""
        use_image = image_only and self.reads_signal and self.image_thresholds is not None
        return decode(probabilities, self.image_thresholds if use_image else self.thresholds)

    def classify(self, images: Sequence[np.ndarray]) -> list[str]:
        return self.labels(self.probabilities(self.denoise(images)), image_only=True)


IMAGE_THREAD_ENV = "DERC_IMAGE_THREAD"  # "0" never runs the image classifier beside the digitizer; "1" always


def image_thread_wanted(model: DercModel) -> bool:
    """Whether ``model`` runs its image classifier beside the digitizer: where both run for a record (a signal
    branch that blends in the image classifier) and, unless ``DERC_IMAGE_THREAD`` (0 or 1) decides, the passes run
    on a GPU or the CPU has room for the pass beside the digitizing caller: torch on one thread (no parallel region
    to stall) with a second core, or enough cores for torch's threads, the caller and the read-ahead helpers. A
    pool of torch threads sharing a core with other work waits for it in every parallel region (the UNet's pass at
    ``small`` went 19 -> 260 ms a call beside a decoding thread, 2 torch threads on 2 cores)."""
    if not model.reads_signal or model.signal_only:
        return False
    decided = _setting_or_gpu(IMAGE_THREAD_ENV, model)
    if decided is not None:
        return decided
    threads, cpus = torch.get_num_threads(), available_cpus()
    helpers = model.read_ahead.depth if model.read_ahead is not None else 0
    return (threads == 1 and cpus > 1) or threads + 1 + helpers <= cpus


DENOISE_AHEAD_ENV = "DERC_DENOISE_AHEAD"  # "0": the read-ahead helpers only read; "1": they denoise too


def denoise_ahead_wanted(model: DercModel) -> bool:
    """Whether ``model``'s read-ahead helpers also denoise the pages they read (its UNet pass, while the caller
    works on the record before): never without read-ahead; else ``DERC_DENOISE_AHEAD`` (0 or 1) when set; else on
    a GPU (the helpers' cores are otherwise idle there), and on a CPU where torch runs one thread and the image
    classifier runs beside the digitizer (:attr:`DercModel.image_thread`). That is the CPU case measured to gain
    (2 cores, the quick start's model: 126-129 -> 108-118 ms a record in three pairs); a signal-only model, whose
    record is the UNet's pass and the digitizer, lost there (69-84 -> 85-93 ms: the digitizer ran about half as fast
    beside the helpers' passes), and other CPU cases are unmeasured."""
    if model.read_ahead is None:
        return False
    decided = _setting_or_gpu(DENOISE_AHEAD_ENV, model)
    if decided is not None:
        return decided
    return torch.get_num_threads() == 1 and model.image_thread is not None


def _setting_or_gpu(env: str, model: DercModel) -> bool | None:
    """The switch ``env`` (0 or 1) when set; else True for a model off the CPU; else None (the CPU rule decides)."""
    setting = env_switch(env)
    if setting is not None:
        return setting
    return True if model.device.type != "cpu" else None


def _turned_ink(denoise: Callable[[np.ndarray], torch.Tensor], page: np.ndarray) -> np.ndarray:
    """The (H, W) ink map ``denoise`` makes of ``page`` turned 180°."""
    return denoise(np.ascontiguousarray(np.rot90(page, 2)))[0, 0].float().cpu().numpy()


def _signal_weight(info: dict, path) -> np.ndarray:
    """The blend's weight on the signal per label: a list of 11 numbers in [0, 1], or one for all labels."""
    weight = info.get("signal_weight")
    values = weight if isinstance(weight, list) else [weight] * len(LABELS)
    if len(values) != len(LABELS) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in values
    ):
        raise ModelFolderError(
            f"thresholds file {path} has no valid signal_weight (one number or {len(LABELS)}, each 0 to 1) "
            "for the signal branch"
        )
    return np.asarray(values, dtype=np.float64)


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm that directly follows a convolution into it, in place (inference only).

    Handles Conv2d/BatchNorm2d and Conv1d/BatchNorm1d pairs that are neighbours in an ``nn.Sequential`` (UNet
    blocks, ResNet downsampling, the signal classifier's blocks) and attribute pairs ``convN``/``bnN``
    (torchvision ResNet blocks and stem).
    """
    if module.training:
        raise ValueError("fuse_conv_bn needs a module in eval mode")
    _fuse_children(module)
    return module


def _fusable(conv: nn.Module, bn: nn.Module | None) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)) or (
        isinstance(conv, nn.Conv1d) and isinstance(bn, nn.BatchNorm1d)
    )


def _fuse_children(module: nn.Module) -> None:
    children = dict(module.named_children())
    if isinstance(module, nn.Sequential):
        names = list(children)
        for first, second in itertools.pairwise(names):
            conv, bn = children[first], children[second]
            if _fusable(conv, bn):
                setattr(module, first, fuse_conv_bn_eval(conv, bn))
                setattr(module, second, nn.Identity().eval())
    for name, child in children.items():
        if name.startswith("conv"):
            bn = children.get("bn" + name[4:])
            if _fusable(child, bn):
                setattr(module, name, fuse_conv_bn_eval(child, bn))
                setattr(module, "bn" + name[4:], nn.Identity().eval())
    for child in module.children():
        _fuse_children(child)


@dataclass(frozen=True)
class Digitizer:
    """Turns a record's ink map (the UNet's output) back into its signal, in the header's lead order."""

    image_index: int = 0  # which of the record's images is digitized
    upright_check: bool = True  # read a page turned 180° when its limb leads say so (derc.digitize.upright)

    @classmethod
    def for_model(cls, model: DercModel) -> Digitizer | None:
        """A digitizer for ``model``'s ink maps, or None when they are too coarse to be worth digitizing.

        Below MIN_DIGITIZE_WIDTH pixels a millimetre is under two pixels and the recovered signal
        scores below 0 dB, worse than returning no signal at all (which scores 0).
        """
        if model.config.image_width < MIN_DIGITIZE_WIDTH:
            log.info(
                "ink maps of %d px width are too coarse to digitize; returning no signal", model.config.image_width
            )
            return None
        import derc.digitize  # noqa: F401  (compiles the tracer now, in load_models, not on the first record)

        return cls()

    def page_index(self, pages: int) -> int:
        """Which of a record's ``pages`` ink maps is digitized."""
        return min(self.image_index, pages - 1)

    def read(
        self,
        ink: torch.Tensor,
        *,
        fs: float,
        num_samples: int,
        leads: Sequence[str],
        record: str = "",
        images: Sequence[np.ndarray] | None = None,
        source_shapes: Sequence[tuple[int, int]] | None = None,
        denoise: Callable[[np.ndarray], torch.Tensor] | None = None,
        upright_by_text: bool = False,
    ) -> Reading | None:
        """The record's signal and which way up its page was read (:class:`derc.digitize.upright.Reading`), or
        None when it fails.

        ``images`` are the RGB pages the ink maps came from (any size): their printed grid corrects the time
        axis of a wrinkled or creased page. ``source_shapes``: the (height, width) of the images as loaded,
        before resizing to the model's input (the voltage axis's scale follows their aspect; None: letter
        pages). With ``upright_check`` a page whose limb leads (and a 3x4 page's lead II, shown twice) read far more
        consistently turned 180° is read that way (:func:`derc.digitize.upright.read_upright`); ``denoise`` maps a
        page (RGB) to its (1, 1, H, W) ink map, for reading the page turned (None: its ink map is turned instead);
        ``upright_by_text``: the page's printed text vouches for it as shown (the intake left it unturned with a
        clearly upright glyph score), so the check does not read it turned. A page the digitizer cannot read (an
        unknown layout, say) gets no signal, logged with the reason, and keeps its labels.
        """
        from derc.digitize.upright import read_upright

        index = self.page_index(ink.shape[0])
        ink_map = ink[index, 0].float().cpu().numpy()
        page = None if images is None or index >= len(images) else images[index]
        source = None if source_shapes is None or index >= len(source_shapes) else tuple(source_shapes[index])
        args = {"fs": float(fs), "num_samples": int(num_samples), "leads": list(leads), "page": page}
        turned = None if denoise is None or page is None else partial(_turned_ink, denoise, page)
        # with the check off the page is read only as shown: as read_upright reads a page its text vouches for
        as_shown = upright_by_text or not self.upright_check
        try:
            reading = read_upright(ink_map, source_shape=source, turned_ink=turned, upright_by_text=as_shown, **args)
        except Exception as error:
            log.warning("record %s: no signal (digitization failed: %s: %s)", record, type(error).__name__, error)
            return None
        if reading.turned:
            log.info("record %s: page %d read upside down (orientation score %.2f)", record, index, reading.consistency)
        return reading


__all__ = ["LABELS", "DercModel", "Digitizer"]
