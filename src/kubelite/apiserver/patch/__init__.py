"""The three patch engines of the API server: JSON patch, JSON merge patch, strategic merge patch."""

from kubelite.apiserver.patch.json_patch import apply_json_patch, json_clone, json_equal
from kubelite.apiserver.patch.merge_patch import apply_merge_patch, create_merge_patch
from kubelite.apiserver.patch.strategic import apply_strategic_merge_patch

__all__ = [
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "create_merge_patch",
    "json_clone",
    "json_equal",
]
