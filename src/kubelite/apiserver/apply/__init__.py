"""Server-side apply and managedFields tracking (Kubernetes' structured-merge-diff, in Python).

* :func:`server_side_apply` handles ``PATCH`` with ``application/apply-patch+yaml``.
* :func:`update_managed_fields` records every other write (create/update/patch) as an
  ``Update`` operation of its field manager.
* :func:`fields_of`, :func:`to_fields_v1`, :func:`from_fields_v1` expose the FieldsV1 format.
"""

from kubelite.apiserver.apply.fieldset import FieldSet, from_fields_v1, path_to_string, to_fields_v1
from kubelite.apiserver.apply.managed import decode_managed_fields, update_managed_fields
from kubelite.apiserver.apply.server_side import (
    LAST_APPLIED,
    ApplyConflict,
    check_applied,
    format_conflicts,
    server_side_apply,
)
from kubelite.apiserver.apply.typed import STATUS, compare, fields_of

__all__ = [
    "LAST_APPLIED",
    "STATUS",
    "ApplyConflict",
    "FieldSet",
    "check_applied",
    "compare",
    "decode_managed_fields",
    "fields_of",
    "format_conflicts",
    "from_fields_v1",
    "path_to_string",
    "server_side_apply",
    "to_fields_v1",
    "update_managed_fields",
]
