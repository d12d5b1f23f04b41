"""Turn PTB-XL (+ PTB-XL+ 12SL statements) into Challenge-format records with the 11 labels.

python -m derc.ptbxl -i PTBXL_FOLDER [-p PTBXL_PLUS_FOLDER] -o OUT [--fs 500|100] [--images IMAGE_FOLDER] [--limit N]

Columns used: ptbxl_database.csv: ecg_id, age, sex (0 male, 1 female), height, weight, recording_date,
scp_codes (dict string code -> likelihood), filename_hr / filename_lr; scp_statements.csv: first column
(the SCP code), diagnostic, diagnostic_class; 12sl_statements.csv: ecg_id, statements (list string of
12SL acronyms); 12slv23ToSNOMED.csv: StatementNumber, Acronym.
"""

from __future__ import annotations

import argparse
import ast
import math
import shutil
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from derc.fileio import write_text_atomic
from derc.labels import LABELS

ACUTE_MI_STATEMENTS = (821, 822, 823, 827, 829, 902, 903, 904, 963, 964, 965, 966, 967, 968)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
REPLACED_COMMENTS = ("# Age:", "# Sex:", "# Height:", "# Weight:", "# Labels:", "# Image:")
NO_PLUS_WARNING = (
    "PTB-XL+ 12SL files (12sl_statements.csv, 12slv23ToSNOMED.csv) not found: Acute MI cannot be derived, "
    "so every MI record is labelled Old MI."
)


def superclass_map(scp_statements: pd.DataFrame) -> dict[str, str]:
    """SCP code -> diagnostic superclass (NORM, MI, STTC, CD, HYP) for the diagnostic statements."""
    table = scp_statements[scp_statements["diagnostic"] == 1]
    return {str(code): str(cls) for code, cls in table["diagnostic_class"].items() if isinstance(cls, str)}


def parse_scp_codes(text: str | Mapping[str, float]) -> dict[str, float]:
    return dict(text) if isinstance(text, Mapping) else {str(k): float(v) for k, v in ast.literal_eval(text).items()}


def parse_statements(text: object) -> list[str]:
    """12SL statements cell ("['SR', 'ACUTE_IMI']" or "SR, ACUTE_IMI") -> list of acronyms."""
    if not isinstance(text, str):
        return []
    text = text.strip()
    if text.startswith("["):
        return [str(item).strip() for item in ast.literal_eval(text)]
    return [item.strip() for item in text.replace(";", ",").split(",") if item.strip()]


def acute_mi_acronyms(mapping: pd.DataFrame) -> set[str]:
    """12SL acronyms of the acute MI statement numbers."""
    table = mapping.set_index("StatementNumber")
    return {str(table.loc[number, "Acronym"]).strip() for number in ACUTE_MI_STATEMENTS if number in table.index}


def derive_labels(
    scp_codes: Mapping[str, float],
    superclasses: Mapping[str, str],
    sl_statements: Iterable[str] = (),
    acute_acronyms: Iterable[str] = (),
) -> list[str]:
    """The Challenge labels of one PTB-XL record, in Challenge order (codes count when likelihood >= 0)."""
    codes = {code for code, likelihood in scp_codes.items() if likelihood >= 0}
    classes = {superclasses[code] for code in codes if code in superclasses}
    acute = bool(set(sl_statements) & set(acute_acronyms))
    found = {
        "NORM": "NORM" in classes,
        "Acute MI": acute,
        "Old MI": "MI" in classes and not acute,
        "STTC": "STTC" in classes,
        "CD": "CD" in classes,
        "HYP": "HYP" in classes,
        "PAC": "PAC" in codes,
        "PVC": "PVC" in codes,
        "AFIB/AFL": bool(codes & {"AFIB", "AFLT"}),
        "TACHY": bool(codes & {"STACH", "SVTAC", "PSVT"}),
        "BRADY": "SBRAD" in codes,
    }
    return [label for label in LABELS if found[label]]


def _cast(value: object) -> int | float | str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "Unknown"
    if not math.isfinite(number):
        return "Unknown"
    return int(number) if number.is_integer() else number


def _sex(value: object) -> str:
    return {0: "Male", 1: "Female"}.get(_cast(value), "Unknown")  # type: ignore[call-overload]


def challenge_header(header: str, row: pd.Series, labels: Sequence[str], images: Sequence[str]) -> str:
    """PTB-XL header with time/date on the record line and Age/Sex/Height/Weight/Labels(/Image) comments."""
    lines = header.split("\n")
    record_line = " ".join(lines[0].strip().split(" ")[:4])
    date_time = str(row.get("recording_date", ""))
    if " " in date_time:
        date, time = date_time.split(" ", 1)
        yyyy, mm, dd = date.split("-")
        record_line += f" {time} {dd}/{mm}/{yyyy}"
    signal_lines = [line.strip() for line in lines[1:] if line.strip() and not line.startswith("#")]
    comments = [line.strip() for line in lines[1:] if line.startswith("#") and not line.startswith(REPLACED_COMMENTS)]
    comments += [
        f"# Age: {_cast(row.get('age'))}",
        f"# Sex: {_sex(row.get('sex'))}",
        f"# Height: {_cast(row.get('height'))}",
        f"# Weight: {_cast(row.get('weight'))}",
        "# Labels: " + ", ".join(labels),
    ]
    if images:
        comments.append("# Image: " + ", ".join(images))
    return "\n".join([record_line, *signal_lines, *comments]) + "\n"


def index_images(image_folder: Path | None) -> dict[str, list[Path]]:
    """Record base name -> image files named ``<base>.png`` or ``<base>-<anything>.png`` (recursive)."""
    index: dict[str, list[Path]] = {}
    if image_folder is None:
        return index
    for path in sorted(image_folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            index.setdefault(path.stem.split("-")[0], []).append(path)
    return index


def find_plus_files(plus_folder: Path | None) -> tuple[Path, Path] | None:
    if plus_folder is None:
        return None
    statements = sorted(plus_folder.rglob("12sl_statements.csv"))
    mapping = sorted(plus_folder.rglob("12slv23ToSNOMED.csv"))
    return (statements[0], mapping[0]) if statements and mapping else None


def load_sl(plus_folder: Path | None) -> tuple[dict[int, list[str]], set[str]] | None:
    """(ecg_id -> 12SL acronyms, acute MI acronyms), or None with a warning when PTB-XL+ is missing."""
    files = find_plus_files(plus_folder)
    if files is None:
        warnings.warn(NO_PLUS_WARNING, stacklevel=2)
        return None
    table = pd.read_csv(files[0])
    statements = {int(i): parse_statements(s) for i, s in zip(table["ecg_id"], table["statements"])}
    return statements, acute_mi_acronyms(pd.read_csv(files[1]))


def prepare_ptbxl(
    ptbxl_folder: str | Path,
    out_folder: str | Path,
    plus_folder: str | Path | None = None,
    fs: int = 500,
    image_folder: str | Path | None = None,
    limit: int | None = None,
) -> list[str]:
    """Write Challenge records under ``out_folder``; return their record ids (e.g. ``00000/00001_hr``)."""
    if fs not in (500, 100):
        raise ValueError(f"--fs must be 500 or 100, got {fs}")
    ptbxl_folder, out_folder = Path(ptbxl_folder), Path(out_folder)
    database = pd.read_csv(ptbxl_folder / "ptbxl_database.csv", index_col="ecg_id").sort_index()
    superclasses = superclass_map(pd.read_csv(ptbxl_folder / "scp_statements.csv", index_col=0))
    sl = load_sl(Path(plus_folder) if plus_folder is not None else None)
    images = index_images(Path(image_folder) if image_folder is not None else None)
    column, records_dir = ("filename_hr", "records500") if fs == 500 else ("filename_lr", "records100")
    if limit is not None:
        database = database.iloc[:limit]
    written = []
    for ecg_id, row in database.iterrows():
        record = _write_record(
            ptbxl_folder, out_folder, int(ecg_id), row, column, records_dir, superclasses, sl, images
        )
        if record is not None:
            written.append(record)
    return written


def _write_record(ptbxl_folder, out_folder, ecg_id, row, column, records_dir, superclasses, sl, images):
    source = ptbxl_folder / str(row[column])
    header_file = source.with_suffix(".hea")
    if not header_file.is_file():
        warnings.warn(f"record {ecg_id}: {header_file} not found; skipped", stacklevel=3)
        return None
    relative = source.relative_to(ptbxl_folder / records_dir) if records_dir in source.parts else Path(source.name)
    target = out_folder / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    header = header_file.read_text()
    for line in header.split("\n")[1:]:
        if line.strip() and not line.startswith("#"):
            signal_file = source.parent / line.split(" ")[0]
            if not signal_file.is_file():
                warnings.warn(f"record {ecg_id}: signal file {signal_file} not found; skipped", stacklevel=3)
                return None
            shutil.copy2(signal_file, target.parent / signal_file.name)
    sl_codes, acute = (sl[0].get(ecg_id, []), sl[1]) if sl is not None else ([], set())
    labels = derive_labels(parse_scp_codes(row["scp_codes"]), superclasses, sl_codes, acute)
    image_names = []
    for image in images.get(source.name, []):
        shutil.copy2(image, target.parent / image.name)
        image_names.append(image.name)
    write_text_atomic(target.with_suffix(".hea"), challenge_header(header, row, labels, image_names))
    return str(relative)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Prepare PTB-XL (+ PTB-XL+) records for the Challenge.")
    parser.add_argument("-i", "--ptbxl_folder", required=True)
    parser.add_argument("-p", "--ptbxl_plus_folder", default=None)
    parser.add_argument("-o", "--output_folder", required=True)
    parser.add_argument("--fs", type=int, choices=(500, 100), default=500)
    parser.add_argument("--images", default=None, help="folder with images named <record>-<n>.png")
    parser.add_argument("--limit", type=int, default=None, help="only the first N records (by ecg_id)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    warnings.simplefilter("always")
    records = prepare_ptbxl(
        args.ptbxl_folder, args.output_folder, args.ptbxl_plus_folder, args.fs, args.images, args.limit
    )
    print(f"wrote {len(records)} records to {args.output_folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
