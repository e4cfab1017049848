"""Synthetic 12-lead ECG signals and paper-ECG page rendering with pixel-exact ground truth."""
