"""derc: DeRC (denoise, then classify) for 12-lead ECG paper images.

Stages, each in its own module:

- :mod:`derc.synth`       label-conditioned synthetic 12-lead ECG records (WFDB)
- :mod:`derc.render`      ECG-paper renderer: noisy photo + pixel-aligned clean target
- :mod:`derc.models`      UNet denoiser and classifier backbones
- :mod:`derc.losses`      Dice + focal loss
- :mod:`derc.training`    generic fit loop (early stopping, plateau or cosine LR, logs, curves)
- :mod:`derc.thresholds`  per-label thresholds (Youden's J or best F-measure)
- :mod:`derc.pipeline`    train / load / predict behind ``team_code.py``
- :mod:`derc.digitize`    clean image -> 12-lead signal
- :mod:`derc.ptbxl`       PTB-XL -> Challenge-format records
"""

__version__ = "0.1.0"
