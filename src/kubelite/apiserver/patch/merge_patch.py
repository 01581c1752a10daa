"""RFC 7386 JSON Merge Patch (``application/merge-patch+json``), as Kubernetes applies it.

Why not a third-party package: the RFC is a dozen lines, and we want the exact
behaviour of the library kube-apiserver uses (``evanphx/json-patch`` ``MergePatch``):

- an object patch merges recursively; a ``null`` member deletes;
- any other patch value replaces the target;
- a value taken from the patch (nothing to merge it into) has its ``null`` object
  members pruned, also inside arrays; ``null`` array elements are kept.

Results are built structurally: the inputs are never mutated, untouched subtrees of
``doc`` are shared with the result, values from the patch are copied.  Callers that
mutate the result in place must own ``doc`` (e.g. have just decoded it).
"""

from __future__ import annotations

from typing import Any

from kubelite.apiserver.patch.json_patch import json_equal


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply the merge patch ``patch`` to ``doc`` and return the result."""
    if not isinstance(patch, dict):
        return pruned(patch)
    base: dict[str, Any] = doc if isinstance(doc, dict) else {}
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
            continue
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            result[key] = apply_merge_patch(current, value)
        else:
            result[key] = pruned(value)
    return result


def pruned(value: Any) -> Any:
    """A copy of a patch value with ``null`` object members removed at every depth."""
    if isinstance(value, dict):
        return {k: pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The merge patch that turns ``original`` into ``modified`` (RFC 7386 section 1, inverted).

    ``apply_merge_patch(original, create_merge_patch(original, modified)) == modified``
    whenever ``modified`` has no ``null`` object members (merge patches cannot set ``null``).
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return pruned(modified)
    patch: dict[str, Any] = {key: None for key in original if key not in modified}
    for key, value in modified.items():
        if key not in original:
            patch[key] = pruned(value)
            continue
        before = original[key]
        if isinstance(before, dict) and isinstance(value, dict):
            sub = create_merge_patch(before, value)
            if sub:
                patch[key] = sub
        elif not json_equal(before, value):
            patch[key] = pruned(value)
    return patch
