"""Evaluation: metrics on labelled samples, IoU / threshold calibration."""
