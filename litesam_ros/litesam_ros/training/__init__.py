"""Lite-SAM training: synthetic data, dataset loaders, AutoPPN targets, losses, trainer, eval.

No ROS imports. Entry point: ``python -m litesam_ros.apps.train_cli train|eval``.
"""
