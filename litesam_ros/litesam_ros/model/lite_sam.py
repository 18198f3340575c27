"""``LiteSam``: the name the model class had when it held Lite-SAM only (see sam_model.py)."""
from __future__ import annotations

from .sam_model import SamModel

#: A Lite-SAM is a SamModel whose config has encoder "litevit" and an AutoPPN head.
LiteSam = SamModel

__all__ = ["LiteSam"]
