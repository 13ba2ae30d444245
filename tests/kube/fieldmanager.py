"""Server-side apply and ``metadata.managedFields``, as the API server's field manager
(structured-merge-diff) does them.

Every write records which manager owns which fields:

* an **apply** (``PATCH application/apply-patch+yaml?fieldManager=M``) merges the applied
  configuration into the object by the schema (structs and maps key by key, associative lists
  item by item on their ``x-kubernetes-list-map-keys``, sets by value, everything else
  atomically), makes M own exactly the fields of that configuration, and removes the fields M
  applied before and omits now, unless another manager owns them too. Changing a field another
  manager owns is a conflict (409) unless ``force=true``, which takes the field over;
* any other write (create, update, patch, the scale and status subresources) is an **update**:
  its manager takes every field it added or changed, from whoever owned it, without conflicts.

Field paths use the notation of ``fieldsV1``: ``f:<field>``, ``k:<item keys as JSON>`` for an
item of an associative list, ``v:<value as JSON>`` for an item of a set.

Not emulated: the ``Manager`` time precision games, managedFields given by a client (ignored;
a real server can reset them), and conversion of field sets between API versions.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from tests.kube.schemas import Obj, Schema

Path = tuple[str, ...]
MISSING: Any = object()  # a path the object does not hold
# Metadata fields no manager owns: the API server sets them (stripMeta in the field manager).
SERVER_METADATA = {
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
}


class FieldManagerError(Exception):
    """A write the field manager refuses: ``code`` and ``reason`` are the HTTP answer's."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass
class Entry:
    """One element of ``metadata.managedFields``."""

    manager: str
    operation: str  # Apply | Update
    api_version: str
    subresource: str = ""
    time: str = ""
    fields: set[Path] = field(default_factory=set)
    stored: Obj | None = None  # the JSON it was read from, reused while nothing changed
    stored_fields: frozenset[Path] = frozenset()

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def to_json(self) -> Obj:
        unchanged = self.fields == self.stored_fields and self.time == (self.stored or {}).get(
            "time"
        )
        if self.stored is not None and unchanged:
            return self.stored
        entry: Obj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(self.fields),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry

    @staticmethod
    def from_json(entry: Obj) -> Entry:
        fields = decode(entry.get("fieldsV1") or {})
        return Entry(
            entry["manager"],
            entry["operation"],
            entry.get("apiVersion", ""),
            entry.get("subresource", ""),
            entry.get("time", ""),
            fields,
            entry,
            frozenset(fields),
        )


def entries(obj: Obj | None) -> list[Entry]:
    if obj is None:
        return []
    return [Entry.from_json(e) for e in obj.get("metadata", {}).get("managedFields") or []]


def _store(obj: Obj, found: list[Entry], mine: Entry) -> None:
    """Write the entries back, in their order (a new one last); empty ones go away."""
    ordered = [mine if e.key == mine.key else e for e in found]
    if all(e.key != mine.key for e in found):
        ordered.append(mine)
    kept = [e.to_json() for e in ordered if e.fields]
    if kept:
        obj["metadata"]["managedFields"] = kept
    else:
        obj["metadata"].pop("managedFields", None)


# ---------------------------------------------------------------------- fieldsV1


def encode(paths: set[Path]) -> Obj:
    """A set of paths as the nested ``fieldsV1`` object (``"."`` marks a member that also
    has members below it)."""
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        if path:
            node["."] = {}
    return _tidy(tree)


def _tidy(node: Obj) -> Obj:
    children = {k: _tidy(v) for k, v in node.items() if k != "."}
    if "." in node and children:
        return {".": {}, **children}
    return children


def decode(tree: Obj, prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, below in tree.items():
        if element == ".":
            paths.add(prefix)
            continue
        path = (*prefix, element)
        if below:
            paths |= decode(below, path)
        else:
            paths.add(path)
    return paths


# ---------------------------------------------------------------------- field sets


def _item_element(item: Any, schema: Schema, path: Path) -> str:
    if schema.list_type == "set":
        return "v:" + json.dumps(item, separators=(",", ":"))
    keys: Obj = {}
    defaults = schema.key_defaults()
    for key in sorted(schema.map_keys):
        value = item.get(key, defaults.get(key, MISSING)) if isinstance(item, dict) else MISSING
        if value is MISSING:
            raise FieldManagerError(
                422,
                "Invalid",
                f"{_dotted(path)}: element {json.dumps(item)} of an associative list with keys "
                f"{list(schema.map_keys)} omits key field {key!r} (and it has no default value)",
            )
        keys[key] = value
    return "k:" + json.dumps(keys, separators=(",", ":"), sort_keys=True)


def field_values(
    value: Any, schema: Schema, path: Path = (), strict: bool = False
) -> dict[Path, Any]:
    """The fields ``value`` sets, as structured-merge-diff's ToFieldSet counts them (leaves,
    atomic values, list items, and map entries that are null, empty, or free keys), each with
    its value. ``strict`` (an applied configuration) refuses two items with the same key."""
    found: dict[Path, Any] = {}
    if isinstance(value, list):
        if schema.list_type == "atomic":
            return {path: value}
        for item in value:
            item_path = (*path, _item_element(item, schema, path))
            if strict and item_path in found:
                raise FieldManagerError(
                    422,
                    "Invalid",
                    f"{_dotted(path)}: duplicate entries for key {_key_text(item_path[-1])}",
                )
            found.update(field_values(item, schema.items(), item_path, strict))
            found[item_path] = item
        return found
    if isinstance(value, dict) and not schema.atomic and not schema.scalar_union:
        for name, child in value.items():
            child_path = (*path, f"f:{name}")
            found.update(field_values(child, schema.field(name), child_path, strict))
            if child is None or child == {} or not schema.declares(name):
                found[child_path] = child
        return found
    return {path: value}


def field_set(value: Any, schema: Schema, strict: bool = False) -> set[Path]:
    return set(field_values(value, schema, (), strict))


def _scoped(paths: set[Path], subresource: str) -> set[Path]:
    """Drop what no manager owns: apiVersion, kind, server-set metadata; and ``status`` for
    writes of the main resource, everything but ``status`` for writes of /status."""

    def owned(path: Path) -> bool:
        if not path or path[0] in ("f:apiVersion", "f:kind"):
            return False
        if path[0] == "f:metadata" and (len(path) == 1 or path[1][2:] in SERVER_METADATA):
            return False
        return (path[0] == "f:status") == (subresource == "status")

    return {p for p in paths if owned(p)}


def _key_text(element: str) -> str:
    """``k:{"name":"MODE"}`` as the API server prints keys: ``[name="MODE"]``."""
    keys = json.loads(element[2:]) if element.startswith("k:") else {"": element[2:]}
    return "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"


def _with_named_parents(paths: set[Path], schema: Schema) -> set[Path]:
    """``paths`` and every struct field above them (map keys and list items are not added)."""
    found = set(paths)
    for path in paths:
        node = schema
        for depth, element in enumerate(path[:-1]):
            if element.startswith("f:") and node.declares(element[2:]):
                found.add(path[: depth + 1])
            node = _step(node, element)
    return found


def _dotted(path: Path) -> str:
    return "".join(
        "." + element[2:] if element.startswith("f:") else _key_text(element) for element in path
    )


# ---------------------------------------------------------------------- values at paths


def value_at(obj: Any, path: Path, schema: Schema) -> Any:
    for element in path:
        if element.startswith("f:"):
            if not isinstance(obj, dict) or element[2:] not in obj:
                return MISSING
            obj, schema = obj[element[2:]], schema.field(element[2:])
        else:
            if not isinstance(obj, list):
                return MISSING
            items = schema.items()
            obj = next((i for i in obj if _item_element(i, schema, ()) == element), MISSING)
            schema = items
            if obj is MISSING:
                return MISSING
    return obj


def _changes(before: dict[Path, Any], after: dict[Path, Any], paths: set[Path]) -> set[Path]:
    """The paths among ``paths`` that are new in ``after`` or hold a new value there (field
    values of both sides); a path with members below it changes only through them."""
    prefixes = {p[:i] for p in paths for i in range(len(p))}
    return {
        p for p in paths if p not in before or (p not in prefixes and before[p] != after.get(p))
    }


# ---------------------------------------------------------------------- merge and removal


def merge(live: Any, config: Any, schema: Schema) -> Any:
    """The applied ``config`` merged into ``live`` the way server-side apply merges."""
    if isinstance(config, dict) and isinstance(live, dict) and not schema.atomic:
        merged = dict(live)
        for name, value in config.items():
            merged[name] = merge(live.get(name, MISSING), value, schema.field(name))
        return merged
    if isinstance(config, list) and isinstance(live, list) and schema.list_type != "atomic":
        return _merge_list(live, config, schema)
    return copy.deepcopy(config)


def _merge_list(live: list[Any], config: list[Any], schema: Schema) -> list[Any]:
    """Items merged by key. Shared items take the applied order, items only in ``live`` keep
    their place among them (structured-merge-diff's interleaving)."""

    def key(item: Any) -> str:
        return _item_element(item, schema, ())

    live_keys, config_keys = [key(i) for i in live], [key(i) for i in config]
    by_live = dict(zip(live_keys, live, strict=True))
    by_config = dict(zip(config_keys, config, strict=True))
    merged: list[Any] = []
    emitted: set[str] = set()
    next_config = 0
    for live_key in live_keys:
        if live_key not in by_config:
            merged.append(by_live[live_key])  # only live has it: it stays where it was
            continue
        # Emit applied items up to this shared one, in their applied order.
        while next_config < len(config_keys) and live_key not in emitted:
            name = config_keys[next_config]
            next_config += 1
            if name not in emitted:
                merged.append(merge(by_live.get(name, MISSING), by_config[name], schema.items()))
                emitted.add(name)
    for name in config_keys[next_config:]:
        if name not in emitted:
            merged.append(merge(by_live.get(name, MISSING), by_config[name], schema.items()))
            emitted.add(name)
    return merged


def remove(obj: Any, path: Path, schema: Schema) -> None:
    """Remove what ``path`` names from ``obj`` in place (nothing if it is not there)."""
    *parents, last = path
    holder, holder_schema = obj, schema
    for element in parents:
        holder = value_at(holder, (element,), holder_schema)
        if holder is MISSING:
            return
        holder_schema = _step(holder_schema, element)
    if last.startswith("f:") and isinstance(holder, dict):
        holder.pop(last[2:], None)
    elif isinstance(holder, list):
        holder[:] = [i for i in holder if _item_element(i, holder_schema, ()) != last]


def _step(schema: Schema, element: str) -> Schema:
    return schema.field(element[2:]) if element.startswith("f:") else schema.items()


# ---------------------------------------------------------------------- the two operations


def apply(
    live: Obj | None,
    config: Obj,
    manager: str,
    force: bool,
    schema: Schema,
    subresource: str,
    now: str,
) -> Obj:
    """The object after ``manager`` applies ``config`` (its managedFields updated; defaulting
    and validation are the caller's). Raises :class:`FieldManagerError` on conflicts."""
    api_version = config.get("apiVersion", "")
    applied = _scoped(field_set(config, schema, strict=True), subresource)
    found = entries(live)
    mine = next(
        (e for e in found if e.key == (manager, "Apply", subresource)),
        Entry(manager, "Apply", api_version, subresource),
    )
    base = copy.deepcopy(live) if live is not None else {}
    base.get("metadata", {}).pop("managedFields", None)
    merged = merge(base, config, schema)
    changed = _changes(field_values(base, schema), field_values(merged, schema), applied)
    others = [e for e in found if e.key != mine.key]
    conflicts = sorted((e.manager, e.subresource, p) for e in others for p in e.fields & changed)
    if conflicts and not force:
        raise FieldManagerError(409, "Conflict", _conflict_message(conflicts, api_version))
    for entry in others:
        entry.fields -= changed
    # What this manager applied before and no one owns now goes, with the struct fields that
    # only held it (structured-merge-diff's prune: EnsureNamedFieldsAreMembers on both sides).
    still_owned = _with_named_parents(set().union(applied, *(e.fields for e in others)), schema)
    for path in sorted(_with_named_parents(mine.fields, schema) - still_owned, key=len):
        remove(merged, path, schema)
    if mine.fields != applied or changed:
        mine.time = now
    mine.fields, mine.api_version = applied, api_version
    result: Obj = merged
    result.setdefault("metadata", {})
    _store(result, found, mine)
    return result


def _conflict_message(conflicts: list[tuple[str, str, Path]], api_version: str) -> str:
    lines = [
        f'conflict with "{manager}"'
        + (f' with subresource "{sub}"' if sub else "")
        + f" using {api_version}: {_dotted(path)}"
        for manager, sub, path in conflicts
    ]
    count = f"{len(lines)} conflict" + ("s" if len(lines) > 1 else "")
    return f"Apply failed with {count}: " + "; ".join(lines)


def update(
    old: Obj | None, new: Obj, manager: str, schema: Schema, subresource: str, now: str
) -> None:
    """Record in ``new`` (in place) that ``manager`` made every change from ``old``: it owns
    what it added or changed; nobody owns what it removed."""
    api_version = new.get("apiVersion", "")
    before = old
    after = {
        **new,
        "metadata": {k: v for k, v in new.get("metadata", {}).items() if k != "managedFields"},
    }
    after_values = field_values(after, schema)
    before_values = field_values(before, schema) if before is not None else {}
    now_set = _scoped(set(after_values), subresource)
    old_set = _scoped(set(before_values), subresource)
    changed = _changes(before_values, after_values, now_set)
    removed = old_set - now_set
    found = entries(old)
    mine = next(
        (e for e in found if e.key == (manager, "Update", subresource)),
        Entry(manager, "Update", api_version, subresource),
    )
    for entry in found:
        if entry.key != mine.key:
            entry.fields -= changed | removed
    if changed or removed & mine.fields:
        mine.time = now
    mine.fields = (mine.fields - removed) | changed
    new.setdefault("metadata", {})
    _store(new, found, mine)
