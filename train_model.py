#!/usr/bin/env python
"""Train the Challenge models: python train_model.py -d TRAIN_FOLDER -m MODEL_FOLDER [-v]"""

import argparse
import sys

from team_code import train_models


def get_parser():
    parser = argparse.ArgumentParser(description="Train the Challenge models.")
    parser.add_argument("-d", "--data_folder", type=str, required=True)
    parser.add_argument("-m", "--model_folder", type=str, required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def run(args):
    train_models(args.data_folder, args.model_folder, args.verbose)


if __name__ == "__main__":
    run(get_parser().parse_args(sys.argv[1:]))
