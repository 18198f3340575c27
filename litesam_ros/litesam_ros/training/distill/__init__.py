"""Distillation: a student SamModel learns from a teacher SamModel (``run.distill``)."""
