"""The three patch formats of the Kubernetes API: JSON merge patch (RFC 7386), JSON patch
(RFC 6902) and strategic merge patch (merge keys for the named lists of built-in types)."""

from __future__ import annotations

import copy
from typing import Any

# Lists of built-in types that strategic merge patch merges by a key instead of replacing.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "tolerations": "key",
}


class PatchError(ValueError):
    pass


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # directives ($patch, $retainKeys...): not emulated
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, MERGE_KEYS[key])
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    merged = copy.deepcopy(current)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            merged.append(copy.deepcopy(item))
            continue
        index = next(
            (
                i
                for i, old in enumerate(merged)
                if isinstance(old, dict) and old.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(op["path"])
        try:
            parent, last = _walk(doc, parts[:-1]), parts[-1] if parts else None
            if op["op"] == "test":
                if _walk(doc, parts) != op["value"]:
                    raise PatchError(f"test failed at {op['path']}")
            elif op["op"] in ("add", "replace"):
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)  # type: ignore[arg-type]
                    if op["op"] == "add":
                        parent.insert(index, copy.deepcopy(op["value"]))
                    else:
                        parent[index] = copy.deepcopy(op["value"])
                else:
                    if op["op"] == "replace" and last not in parent:
                        raise PatchError(f"replace of a missing path {op['path']}")
                    parent[last] = copy.deepcopy(op["value"])
            elif op["op"] == "remove":
                del parent[int(last) if isinstance(parent, list) else last]  # type: ignore[arg-type]
            else:
                raise PatchError(f"unsupported op {op['op']!r}")
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise PatchError(f"cannot apply {op['op']} at {op['path']}: {error}") from None
    return doc
