"""Where the package's shipped files (demo weights, config) are, installed or in a source tree."""

from __future__ import annotations

import sys
from pathlib import Path

from .loading import source_kind
from .registry import DEMO_MODEL, DEMO_WEIGHTS

PACKAGE = "litesam_ros"
#: Registry model used when no demo weights are installed (random weights: says so loudly).
FALLBACK_MODEL = DEMO_MODEL


def share_dirs() -> list[Path]:
    """Candidate share/litesam_ros folders: ament index, this interpreter's prefix, source tree."""
    dirs: list[Path] = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            dirs.append(Path(get_package_share_directory(PACKAGE)))
        except (PackageNotFoundError, LookupError, ValueError, OSError):  # OSError: no AMENT_PREFIX_PATH
            pass
    except ImportError:
        pass
    dirs.append(Path(sys.prefix) / "share" / PACKAGE)
    # source checkout: <repo>/weights, <repo>/config (this file is <repo>/litesam_ros/litesam_ros/model/)
    dirs.append(Path(__file__).resolve().parents[3])
    return dirs


def find_shared_file(*parts: str) -> Path | None:
    """The first existing share/litesam_ros/<parts...>, or None."""
    for base in share_dirs():
        path = base.joinpath(*parts)
        if path.is_file():
            return path
    return None


def default_model() -> str:
    """The node's and demo's default model: the shipped demo weights, else the registry model."""
    weights = find_shared_file("weights", DEMO_WEIGHTS)
    return str(weights) if weights is not None else FALLBACK_MODEL


def is_demo_weights(model: str) -> bool:
    """Whether ``model`` names the shipped demo weights file."""
    return Path(model).name == DEMO_WEIGHTS


def weights_status(model: str, limit: int = 400) -> str | None:
    """The "**Status" paragraph of the model card beside a weights file (MODEL_CARD.md)."""
    try:
        is_file = source_kind(model) == "file"
    except ValueError:
        return None
    card = Path(model).parent / "MODEL_CARD.md" if is_file else None
    if card is None or not card.is_file():
        return None
    paragraph: list[str] = []
    for line in card.read_text(errors="replace").splitlines():
        if line.startswith("**Status"):
            paragraph.append(line)
        elif paragraph and line.strip():
            paragraph.append(line)
        elif paragraph:
            break
    text = " ".join(paragraph).replace("**", "").strip()
    return (text[:limit].rsplit(" ", 1)[0] + " ...") if len(text) > limit else (text or None)
