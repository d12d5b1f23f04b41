"""The model folder: what a trained DeRC model is made of, and how it is published atomically.

Layout::

    MODEL/manifest.json      format version, current run folder, SHA-256 of every model file
    MODEL/run-<id>/          config.json, unet.pt, classifier.pt, thresholds.json
                             (and signal_classifier.pt when trained with Config.signal_branch)
    MODEL/work/              an unfinished training run (checkpoints); removed when training ends
    MODEL/train.log, *_log.csv, *_curves.png

Training writes a complete new ``run-<id>/`` and then replaces ``manifest.json`` atomically, so a
kill at any moment leaves either the previous model or the new one. Loading checks the manifest
and every file's hash, so a truncated, tampered or foreign folder is refused with a clear message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from derc.errors import ModelFolderError
from derc.fileio import write_json_atomic

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WORK = "work"
CONFIG_FILE = "config.json"
UNET_FILE = "unet.pt"
CLASSIFIER_FILE = "classifier.pt"
THRESHOLDS_FILE = "thresholds.json"
MODEL_FILES = (CONFIG_FILE, UNET_FILE, CLASSIFIER_FILE, THRESHOLDS_FILE)
SIGNAL_CLASSIFIER_FILE = "signal_classifier.pt"
OPTIONAL_FILES = (SIGNAL_CLASSIFIER_FILE,)  # only models trained with Config.signal_branch have it
RUN_NAME = re.compile(r"run-[A-Za-z0-9_.-]+")  # no separators; "run-" rules out "." and ".."


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _inside(path: Path, folder: Path) -> bool:
    """True when ``path`` (symlinks followed) lies inside ``folder``."""
    try:
        return path.resolve(strict=True).is_relative_to(folder.resolve(strict=True))
    except (OSError, RuntimeError):
        return False


def work_dir(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / WORK


def publish(folder: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Move the finished model files from ``work/`` into a new run folder and point the manifest at it."""
    folder = Path(folder)
    work = work_dir(folder)
    run_name = f"run-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    run = folder / run_name
    run.mkdir(parents=True, exist_ok=False)
    names = list(MODEL_FILES) + [name for name in OPTIONAL_FILES if (work / name).is_file()]
    for name in names:
        os.replace(work / name, run / name)
    manifest = {
        "format_version": FORMAT_VERSION,
        "package": "derc",
        "current": run_name,
        "files": {name: sha256(run / name) for name in names},
        **(extra or {}),
    }
    write_json_atomic(folder / MANIFEST, manifest)
    for old in folder.glob("run-*"):
        if old.name != run_name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return run


def resolve(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Paths of the current model files, after checking the manifest and every file's SHA-256."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist (train a model first with train_model.py)")
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ModelFolderError(f"model folder {folder} has no {MANIFEST}: not a finished derc model")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"{manifest_path} is unreadable or not JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("package") != "derc":
        raise ModelFolderError(f"{manifest_path} is not a derc model manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{manifest_path} has format version {manifest.get('format_version')!r}; this derc reads {FORMAT_VERSION}"
        )
    run_name = manifest.get("current")
    files = manifest.get("files")
    if not isinstance(run_name, str) or not isinstance(files, dict):
        raise ModelFolderError(f"{manifest_path} is malformed (needs 'current' and 'files')")
    if not RUN_NAME.fullmatch(run_name):
        raise ModelFolderError(f"{manifest_path} names the run folder {run_name!r}; expected run-<id> inside {folder}")
    run = folder / run_name
    paths = {}
    for name in list(MODEL_FILES) + [name for name in OPTIONAL_FILES if name in files]:
        path = run / name
        if not path.is_file():
            raise ModelFolderError(f"model file {path} is missing")
        if not _inside(path, folder):
            raise ModelFolderError(f"model file {path} resolves to {path.resolve()}, outside the model folder")
        try:
            digest = sha256(path)
        except OSError as error:
            raise ModelFolderError(f"model file {path} cannot be read: {error}") from error
        if digest != files.get(name):
            raise ModelFolderError(f"model file {path} does not match its manifest hash (truncated or modified)")
        paths[name] = path
    return paths
