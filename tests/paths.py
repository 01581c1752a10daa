"""Where the shared reference material lives: ``shared/`` beside the repository checkout
(CI clones the repository with ``shared/`` next to it), else the workplace's copy."""

from __future__ import annotations

from pathlib import Path

_BESIDE = Path(__file__).resolve().parents[1].parent / "shared"
SHARED = _BESIDE if _BESIDE.is_dir() else Path("/work/shared")
CORPUS = SHARED / "corpus"
