#!/usr/bin/env python
"""Run the trained Challenge models: python run_model.py -d DATA -m MODEL -o OUTPUTS [-v] [-f]

``team_code.load_models`` is called once, then ``team_code.run_models`` for every record in
``find_records`` order. For each record the input header is copied to the output folder, the signals
(if any) are written with the header's WFDB formats and the labels (if any) are appended as one
``# Labels:`` line. ``-f`` turns an exception in ``run_models`` into ``(None, None)`` for that record.
"""

# team_code.py counts as first-party only once it exists, so keep this block's order fixed.
# isort: off
import argparse
import os
import sys

from helper_code import find_records, load_header, save_header, save_labels, save_signals
from team_code import load_models, run_models

# isort: on


def get_parser():
    parser = argparse.ArgumentParser(description="Run the trained Challenge models.")
    parser.add_argument("-d", "--data_folder", type=str, required=True)
    parser.add_argument("-m", "--model_folder", type=str, required=True)
    parser.add_argument("-o", "--output_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-f", "--allow_failures", action="store_true")
    return parser


def save_outputs(data_record, output_record, signal, labels):
    """Copy the input header, then add the signals and the labels the models returned."""
    os.makedirs(os.path.split(output_record)[0], exist_ok=True)
    data_header = load_header(data_record)
    save_header(output_record, data_header)
    if signal is not None:
        comments = [line for line in data_header.split("\n") if line.startswith("#")]
        save_signals(output_record, signal, comments)
    if labels is not None:
        save_labels(output_record, labels)


def run(args):
    if args.verbose:
        print("Loading the Challenge models...")
    digitization_model, classification_model = load_models(args.model_folder, args.verbose)

    if args.verbose:
        print("Finding the Challenge data...")
    records = find_records(args.data_folder)
    if len(records) == 0:
        raise Exception("No data were provided.")
    os.makedirs(args.output_folder, exist_ok=True)

    if args.verbose:
        print("Running the Challenge models on the Challenge data...")
    width = len(str(len(records)))
    for i, record in enumerate(records):
        if args.verbose:
            print(f"- {i + 1:>{width}}/{len(records)}: {record}...")
        data_record = os.path.join(args.data_folder, record)
        output_record = os.path.join(args.output_folder, record)
        try:
            signal, labels = run_models(data_record, digitization_model, classification_model, args.verbose)
        except Exception as error:
            if not args.allow_failures:
                raise
            print(f"... record {record} failed: {type(error).__name__}: {error}", file=sys.stderr)
            signal, labels = None, None
        save_outputs(data_record, output_record, signal, labels)

    if args.verbose:
        print("Done.")


if __name__ == "__main__":
    run(get_parser().parse_args(sys.argv[1:]))
