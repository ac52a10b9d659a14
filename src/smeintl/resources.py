"""The files bundled with smeintl: the default instrument and the example survey.

``bundled_path`` finds one next to the source tree (a checkout or an editable install),
else relative to the working directory, so the defaults work from the repository root
either way.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_DATA", "DEFAULT_SPEC", "bundled_path"]

#: the bundled example survey (41 synthetic firms), relative to the repository root
DEFAULT_DATA = "data/hitachi_synthetic.csv"
#: the bundled default instrument, relative to the repository root
DEFAULT_SPEC = "models/hitachi.toml"


def bundled_path(rel: str | Path) -> Path:
    """A bundled file: next to the source tree, else relative to the working directory."""
    here = Path(__file__).resolve().parents[2] / rel
    return here if here.exists() else Path(rel)
