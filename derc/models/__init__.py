"""Neural networks: the UNet denoiser and the classifier backbones."""
