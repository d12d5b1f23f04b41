"""ECG-paper rendering: a noisy photo-like image and its pixel-aligned clean target."""
