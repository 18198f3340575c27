"""Supervised training: AutoPPN targets, sample preparation and the trainer."""
