"""A tiny real Challenge model used to test the harness scripts (not the DeRC model).

Training learns, from the first image of every record, the mean grey level of the records carrying
each label; prediction gives the labels whose mean is nearest the image's grey level (ties: all).
The digitization part returns an all-zero signal of the header's shape (None when the environment
variable HARNESS_SIGNAL is "0"). The model is one JSON file.
"""

import json
import os

import numpy as np

from helper_code import find_records, get_num_samples, get_num_signals, load_header, load_images, load_labels

MODEL_FILE = "harness_model.json"


def _grey_level(record):
    images = load_images(record)
    if not images:
        raise ValueError(f"record {record}: no readable image")
    return float(np.mean(np.asarray(images[0].convert("L"), dtype=np.float64)))


def train_models(data_folder, model_folder, verbose):
    records = find_records(data_folder)
    if not records:
        raise FileNotFoundError(f"No data were provided in {data_folder}.")
    levels = {}
    for record in records:
        path = os.path.join(data_folder, record)
        level = _grey_level(path)
        for label in load_labels(path):
            levels.setdefault(label, []).append(level)
    model = {label: float(np.mean(values)) for label, values in sorted(levels.items())}
    os.makedirs(model_folder, exist_ok=True)
    with open(os.path.join(model_folder, MODEL_FILE), "w") as handle:
        json.dump(model, handle, indent=1, sort_keys=True)
    if verbose:
        print(f"trained on {len(records)} records")


def load_models(model_folder, verbose):
    path = os.path.join(model_folder, MODEL_FILE)
    if not os.path.isdir(model_folder):
        raise FileNotFoundError(f"model folder {model_folder} does not exist; run train_model.py first")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model folder {model_folder} has no {MODEL_FILE}; run train_model.py first")
    with open(path) as handle:
        return None, json.load(handle)


def run_models(record, digitization_model, classification_model, verbose):
    header = load_header(record)
    signal = None
    if os.environ.get("HARNESS_SIGNAL", "1") != "0":
        signal = np.zeros((get_num_samples(header), get_num_signals(header)))
    level = _grey_level(record)
    distances = {label: abs(level - mean) for label, mean in classification_model.items()}
    best = min(distances.values())
    labels = [label for label, distance in distances.items() if distance == best]
    return signal, labels
