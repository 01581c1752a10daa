"""managedFields of creates, computed once per object *skeleton* and reused.

On a create Kubernetes records one ``Update`` entry owning every field the new object sets
(structured-merge-diff walks the typed object).  That set depends only on the object's
structure, not on its scalar values: which map keys exist, whether a value is null, and --
inside lists -- the items themselves (list-map keys such as a container's ``name``, set
values).  Objects made from one template (every pod of a ReplicaSet, every pod of a bench)
share it, so the walk is done once and the ``fieldsV1`` reused.

The skeleton keeps every map key, ``null``, ``{}`` and ``[]``, replaces every other scalar
directly under a map by a placeholder, and keeps lists verbatim (which is conservative: two
objects differing anywhere inside a list get separate entries).  The key also names the
schema, manager, API version and which fields are left untracked, i.e. everything else the
computation reads.  A create whose body carries ``managedFields`` takes the general path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Obj = dict[str, Any]
MAX_ENTRIES = 4096
_PLACEHOLDER = 0


def skeleton(value: Obj) -> Obj:
    """The structure of a map (see the module doc)."""
    out: Obj = {}
    for key, v in value.items():
        t = type(v)
        if t is dict:
            out[key] = skeleton(v)
        elif t is list or v is None:
            out[key] = v
        else:
            out[key] = _PLACEHOLDER
    return out


class CreateFieldsCache:
    """``fieldsV1`` entries of creates by (context, skeleton); bounded (cleared when full)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], tuple[Any, bytes]] = {}

    def apply(
        self, context: tuple[Any, ...], schema: Any, obj: Obj, now: str, compute: Callable[[], None]
    ) -> None:
        """Set ``obj``'s managedFields as ``compute()`` (the general computation) would.

        ``context`` names every input of ``compute`` other than the object, the schema and
        ``now``; ``compute`` must record one entry stamped ``now`` (or none).
        """
        meta = obj.get("metadata")
        if type(meta) is not dict or "managedFields" in meta:
            compute()
            return
        key = (*context, id(schema), orjson.dumps(skeleton(obj)))
        hit = self._entries.get(key)
        if hit is not None and hit[0] is schema:
            entries = orjson.loads(hit[1])
            for entry in entries:
                entry["time"] = now
            if entries:
                meta["managedFields"] = entries
            return
        compute()
        stored = meta.get("managedFields")
        if stored is None or (isinstance(stored, list) and all(e.get("time") == now for e in stored)):
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (schema, orjson.dumps(stored or []))
