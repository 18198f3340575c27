"""Evaluation: metrics on labelled samples, IoU / threshold calibration, grid segment-everything."""
