"""RFC 6902 JSON Patch (``application/json-patch+json``), as the Kubernetes API server applies it.

Why not the ``jsonpatch`` package: the RFC is short, and every failure must become the
Status a real kube-apiserver answers, with the leniencies of the library it uses
(``gopkg.in/evanphx/json-patch.v4``) that clients may rely on:

- a patch that is not an array of objects -> 400 ``BadRequest``;
- more than 10000 operations -> 413 (``maxJSONPatchOperations``);
- an operation that does not apply, or a failed ``test`` -> 422 ``Invalid`` with the
  message "the server rejected our request due to an error in our request" (kept
  verbatim: kubectl prints it) plus a cause naming the path and what went wrong;
- ``replace`` of a missing object member adds it (v4 behaviour, unlike the RFC);
- negative array indices count from the end (v4 ``SupportNegativeIndices``);
- a missing ``value`` means ``null``; ``test`` of a missing member against ``null`` passes.

The input document is never mutated: containers on the written paths are copied on
first write (copy-on-write), everything else is shared with the input.
"""

from __future__ import annotations

import re
from typing import Any

from kubelite.api.errors import BadRequest, Cause, Invalid, RequestEntityTooLarge, StatusDetails

MAX_OPERATIONS = 10000
REJECTED = "the server rejected our request due to an error in our request"
_INDEX = re.compile(r"[+-]?[0-9]+")
_MISSING: Any = object()


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality: unlike ``==``, ``true`` is not ``1``; ``1`` equals ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(json_equal, a, b))
    if isinstance(b, (dict, list)):
        return False
    return bool(a == b)


def json_clone(value: Any) -> Any:
    """A deep copy of a JSON value (much cheaper than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: json_clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_clone(v) for v in value]
    return value


class _OpError(Exception):
    """An operation that does not apply; becomes 422 Invalid."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def apply_json_patch(doc: Any, patch: Any) -> Any:
    """Apply the RFC 6902 ``patch`` (a decoded JSON array) to ``doc``; return the new document."""
    ops = _decode(patch)
    state = _Document(doc)
    for op in ops:
        try:
            _apply_op(state, op)
        except _OpError as e:
            cause = Cause(reason="FieldValueInvalid", message=e.message, field=e.path)
            raise Invalid(REJECTED, StatusDetails(causes=[cause])) from None
    return state.root


def _decode(patch: Any) -> list[dict[str, Any]]:
    if not isinstance(patch, list):
        raise BadRequest(f"json: cannot unmarshal {_json_type(patch)} into Go value of type jsonpatch.Patch")
    for op in patch:
        if not isinstance(op, dict):
            raise BadRequest(
                f"json: cannot unmarshal {_json_type(op)} into Go value of type jsonpatch.Operation"
            )
    if len(patch) > MAX_OPERATIONS:
        raise RequestEntityTooLarge(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(patch)}"
        )
    return patch


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _apply_op(state: _Document, op: dict[str, Any]) -> None:
    kind = op.get("op")
    handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise _OpError(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}", "")
    handler(state, op)


def _pointer(op: dict[str, Any], kind: str, member: str = "path") -> tuple[str, list[str]]:
    """The JSON pointer in ``op[member]`` and its unescaped tokens (``~1`` -> ``/``, ``~0`` -> ``~``)."""
    raw = op.get(member)
    if not isinstance(raw, str):
        raise _OpError(f"{kind} operation failed to decode {member}: missing value", "")
    if raw == "":
        return raw, []
    if not raw.startswith("/"):
        raise _OpError(f'{kind} operation does not apply: invalid JSON pointer "{raw}"', raw)
    return raw, [t.replace("~1", "/").replace("~0", "~") for t in raw[1:].split("/")]


def _index(token: str, size: int, path: str, *, insert: bool = False) -> int:
    """An array index; negative counts from the end; ``insert`` allows ``size`` itself."""
    if not _INDEX.fullmatch(token):
        raise _OpError(f"value was not a proper array index: '{token}'", path)
    idx = int(token)
    limit = size + 1 if insert else size
    if idx < 0:
        if idx < -limit:
            raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced", path)
        idx += limit
    if idx >= limit:
        raise _OpError(f"Unable to access invalid index: {idx}: invalid index referenced", path)
    return idx


class _Document:
    """The document being patched, with copy-on-write of the containers it changes."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self._owned: dict[int, Any] = {}

    def _own(self, container: Any) -> Any:
        if id(container) in self._owned:
            return container
        copy: Any = dict(container) if isinstance(container, dict) else list(container)
        self._owned[id(copy)] = copy
        return copy

    def get(self, tokens: list[str], path: str, what: str) -> Any:
        """The value at ``tokens`` (``_MISSING`` for an absent object member)."""
        node = self.root
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            if isinstance(node, dict):
                node = node.get(token, _MISSING)
                if node is _MISSING and not last:
                    raise _OpError(f"{what}: {path}: missing value", path)
            elif isinstance(node, list):
                node = node[_index(token, len(node), path)]
            else:
                raise _OpError(f"{what}: {path}: missing value", path)
        return node

    def parent(self, tokens: list[str], path: str, what: str) -> Any:
        """The (owned, writable) container holding the last token of ``tokens``."""
        if not isinstance(self.root, (dict, list)):
            raise _OpError(f"{what}: {path}: missing value", path)
        self.root = node = self._own(self.root)
        for token in tokens[:-1]:
            if isinstance(node, dict):
                child = node.get(token)
                key: Any = token
            else:
                key = self._list_key(node, token, path, what)
                child = node[key]
            if not isinstance(child, (dict, list)):
                raise _OpError(f"{what}: {path}: missing value", path)
            node[key] = node = self._own(child)
        return node

    @staticmethod
    def _list_key(node: list[Any], token: str, path: str, what: str) -> int:
        try:
            return _index(token, len(node), path)
        except _OpError:
            raise _OpError(f"{what}: {path}: missing value", path) from None


def _add(state: _Document, op: dict[str, Any]) -> None:
    path, tokens = _pointer(op, "add")
    _insert(
        state, tokens, path, json_clone(op.get("value")), "add operation does not apply: doc is missing path"
    )


def _insert(state: _Document, tokens: list[str], path: str, value: Any, what: str) -> None:
    if not tokens:
        state.root = value
        return
    parent = state.parent(tokens, path, what)
    token = tokens[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif token == "-":
        parent.append(value)
    else:
        parent.insert(_index(token, len(parent), path, insert=True), value)


def _remove(state: _Document, op: dict[str, Any]) -> None:
    path, tokens = _pointer(op, "remove")
    _take(state, tokens, path, "remove operation does not apply: doc is missing path")


def _take(state: _Document, tokens: list[str], path: str, what: str) -> Any:
    """Remove and return the value at ``tokens``."""
    if not tokens:
        raise _OpError(f"{what}: {path}: missing value", path)
    parent = state.parent(tokens, path, what)
    token = tokens[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise _OpError(f"Unable to remove nonexistent key: {token}: missing value", path)
        return parent.pop(token)
    return parent.pop(_index(token, len(parent), path))


def _replace(state: _Document, op: dict[str, Any]) -> None:
    path, tokens = _pointer(op, "replace")
    value = json_clone(op.get("value"))
    if not tokens:
        if not isinstance(value, (dict, list)):
            raise _OpError("replace operation value must be object or array", path)
        state.root = value
        return
    parent = state.parent(tokens, path, "replace operation does not apply: doc is missing path")
    token = tokens[-1]
    if isinstance(parent, dict):
        parent[token] = value  # a missing member is added, as in evanphx/json-patch v4
        return
    try:
        idx = _index(token, len(parent), path)
    except _OpError:
        raise _OpError(
            f"replace operation does not apply: doc is missing key: {path}: missing value", path
        ) from None
    parent[idx] = value


def _move(state: _Document, op: dict[str, Any]) -> None:
    src, src_tokens = _pointer(op, "move", "from")
    path, tokens = _pointer(op, "move")
    if src == path:
        state.get(src_tokens, src, "move operation does not apply: doc is missing from path")
        return
    value = _take(state, src_tokens, src, "move operation does not apply: doc is missing from path")
    _insert(state, tokens, path, value, "move operation does not apply: doc is missing destination path")


def _copy(state: _Document, op: dict[str, Any]) -> None:
    src, src_tokens = _pointer(op, "copy", "from")
    path, tokens = _pointer(op, "copy")
    value = state.get(src_tokens, src, "copy operation does not apply: doc is missing from path")
    if value is _MISSING:
        raise _OpError(f"copy operation does not apply: doc is missing from path: {src}: missing value", src)
    what = "copy operation does not apply: doc is missing destination path"
    _insert(state, tokens, path, json_clone(value), what)


def _test(state: _Document, op: dict[str, Any]) -> None:
    path, tokens = _pointer(op, "test")
    actual = state.get(tokens, path, "test operation does not apply: is missing path")
    expected = op.get("value")
    if actual is _MISSING:
        if expected is None:
            return
    elif json_equal(actual, expected):
        return
    raise _OpError(f"testing value {path} failed: test failed", path)


_HANDLERS = {
    "add": _add,
    "remove": _remove,
    "replace": _replace,
    "move": _move,
    "copy": _copy,
    "test": _test,
}
