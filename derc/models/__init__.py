"""Neural networks: the UNet denoiser and the classifier backbones."""

from derc.models.classifier import CLASSIFIERS, build_classifier
from derc.models.unet import UNet, unet

__all__ = ["CLASSIFIERS", "UNet", "build_classifier", "unet"]
