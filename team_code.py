"""PhysioNet Challenge 2024 entry points for DeRC (denoise, then classify).

Thin on purpose: the work lives in the ``derc`` package. Only the contract's helper functions
are used from ``helper_code``, so this file runs unchanged with the organizers' copy.
Choose a training preset with the environment variable ``DERC_PRESET`` (``paper`` when unset).
"""

from helper_code import (
    find_records,
    get_image_files,
    get_num_samples,
    get_sampling_frequency,
    get_signal_names,
    load_header,
    load_images,
)


def train_models(data_folder, model_folder, verbose):
    from derc.pipeline import train

    records = find_records(data_folder)
    if len(records) == 0:
        raise FileNotFoundError("No data were provided.")
    train(data_folder, records, model_folder, verbose=bool(verbose))


def load_models(model_folder, verbose):
    from derc.inference import DercModel, Digitizer

    classification_model = DercModel.load(model_folder)
    digitization_model = Digitizer.for_model(classification_model)
    if verbose:
        print(
            f"Loaded the {classification_model.config.preset} model from {model_folder} "
            f"on {classification_model.device}."
        )
    return digitization_model, classification_model


def run_models(record, digitization_model, classification_model, verbose):
    from derc.errors import RecordError

    try:
        header = load_header(record)
    except OSError as error:
        raise RecordError(record, f"header cannot be read ({error})") from error
    try:
        names = get_image_files(record)
    except Exception as error:
        raise RecordError(record, f"header lists no images ({error})") from error
    pages = classification_model.load_pages(record, names, load_images, get_image_files)
    probabilities, signal = classification_model.read_pages(
        pages,
        fs=get_sampling_frequency(header),
        num_samples=get_num_samples(header),
        leads=get_signal_names(header),
        digitizer=digitization_model,
        record=record,
    )
    labels = classification_model.labels(probabilities, image_only=signal is None)
    # the signal is the record's digitization only where it is worth it (Digitizer.for_model); else None
    return (signal if digitization_model is not None else None), labels
