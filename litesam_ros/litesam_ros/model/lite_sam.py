"""``LiteSam``: the name the model class had when it held Lite-SAM only (see sam_model.py).

Deprecated, this module with it (to go in the next release): use ``SamModel``."""
from __future__ import annotations

import warnings

from .sam_model import SamModel

warnings.warn("litesam_ros.model.lite_sam is deprecated: use litesam_ros.model.SamModel",
              DeprecationWarning, stacklevel=2)

#: A Lite-SAM is a SamModel whose config has encoder "litevit" and an AutoPPN head.
LiteSam = SamModel

__all__ = ["LiteSam"]
