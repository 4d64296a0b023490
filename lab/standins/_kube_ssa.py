"""Server-side apply and field ownership as kube-apiserver 1.34 does it (structured-merge-diff v6).

Pure functions over plain JSON objects, guided by the schema (:class:`._kube_patch.SchemaNode`):

* field sets — a set of paths; a path is a tuple of serialized path elements, exactly the keys of
  the ``FieldsV1`` encoding: ``f:<field>``, ``k:{"name":"x"}`` (associative list element, keys
  sorted, compact JSON), ``v:<json>`` (element of a set list), ``i:<n>`` (unused: we never index);
  :func:`encode_fields` / :func:`decode_fields` convert to and from ``FieldsV1`` (``.`` marks a
  path that is a member *and* has children);
* :func:`field_set` — SMD ``TypedValue.ToFieldSet`` (what an applier owns);
* :func:`compare` — SMD ``TypedValue.Compare`` (added / modified / removed);
* :func:`merge` — SMD ``TypedValue.Merge`` (the applied configuration over the live object);
* :func:`apply` — SMD ``Updater.Apply``: merge, prune what this applier dropped (unless another
  manager still owns it), conflict with every other manager whose fields change value;
* :func:`update` — SMD ``Updater.Update`` plus the apiserver's ``managedFieldsUpdater`` (an
  ``Update`` entry takes over whatever the write added or modified);
* :func:`typed_error` — the errors of the typed conversion (``field not declared in schema``,
  an associative list element without its key).

Verified against kubernetes-sigs/structured-merge-diff (merge/update.go, merge/conflict.go,
typed/tofieldset.go, typed/compare.go, fieldpath/serialize.go, serialize-pe.go, element.go) and
kubernetes staging/src/k8s.io/apimachinery/pkg/util/managedfields/internal (conflict.go:
message and causes; fieldmanager encode: entry order; stripmeta: fields nobody owns).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ._kube_patch import SchemaNode

Path = tuple[str, ...]

# stripmeta.go: these exact paths are never owned (their children may be).
STRIPPED: frozenset[Path] = frozenset({("f:apiVersion",), ("f:kind",), ("f:metadata",)} | {
    ("f:metadata", f"f:{name}") for name in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                             "clusterName", "generation", "managedFields", "resourceVersion")})
# List-map key fields with a default in the 1.34 OpenAPI: SMD fills a missing key from it since
# Kubernetes 1.20/1.21 (kubernetes/kubernetes#98576, structured-merge-diff#130, #183).
KEY_DEFAULTS = {"protocol": "TCP"}


# -- schema shapes -----------------------------------------------------------------------------
def _shape(node: SchemaNode, value: Any) -> str:
    """How SMD treats a value here: scalar, atomic, map (granular), listmap, set."""
    schema = node.schema
    if isinstance(value, dict):
        return "atomic" if schema.get("x-kubernetes-map-type") == "atomic" else "map"
    if not isinstance(value, list):
        return "scalar"
    kind = schema.get("x-kubernetes-list-type")
    if kind == "map" or (kind is None and _list_keys(node)):
        return "listmap"
    if kind == "set" or (kind is None and "merge" in node.strategy):
        return "set"
    return "atomic"


def _list_keys(node: SchemaNode) -> list[str]:
    keys = node.schema.get("x-kubernetes-list-map-keys")
    if keys:
        return list(keys)
    return [node.merge_key] if node.merge_key else []


def _declared(node: SchemaNode, key: str) -> bool:
    return key in (node.schema.get("properties") or {})


def element_key(node: SchemaNode, element: Any) -> str:
    """The ``k:{...}`` element of an associative list element (keys sorted, compact JSON)."""
    item = element if isinstance(element, dict) else {}
    keys = {k: item.get(k, KEY_DEFAULTS.get(k)) for k in sorted(_list_keys(node))}
    return "k:" + json.dumps({k: v for k, v in keys.items() if v is not None}, separators=(",", ":"))


def value_key(element: Any) -> str:
    """The ``v:<json>`` element of a set list member."""
    return "v:" + json.dumps(element, separators=(",", ":"))


def _children(node: SchemaNode, value: Any, shape: str) -> list[tuple[str, Any, SchemaNode]]:
    """(path element, child value, child schema) of a granular map or associative/set list."""
    if shape == "map":
        return [(f"f:{k}", v, node.child(k)) for k, v in value.items()]
    if shape == "listmap":
        items = node.items()
        return [(element_key(node, e), e, items) for e in value]
    if shape == "set":
        return [(value_key(e), e, node.items()) for e in value]
    return []


# -- ToFieldSet ----------------------------------------------------------------------------------
def field_set(value: Any, node: SchemaNode, prefix: Path = ()) -> set[Path]:
    """SMD ``ToFieldSet``: leaves, atomic values, list elements, map entries and empty/null fields."""
    out: set[Path] = set()
    shape = _shape(node, value)
    if shape in ("scalar", "atomic"):
        return {prefix} if prefix else out
    for pe, child, child_node in _children(node, value, shape):
        path = prefix + (pe,)
        out |= field_set(child, child_node, path)
        empty = child is None or (isinstance(child, dict) and not child)
        if shape != "map" or empty or not _declared(node, pe[2:]):
            out.add(path)
    return out


# -- Compare ---------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """SMD ``typed.Comparison``: paths added, modified (leaves) and removed between two objects."""

    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    def changed(self) -> set[Path]:
        return self.added | self.modified


_MISSING = object()


def compare(lhs: Any, rhs: Any, node: SchemaNode) -> Comparison:
    """SMD ``Compare``: every node only on the right is added, only on the left removed; differing
    scalars, atomic values and empty maps/lists (promoted to leaves) are modified."""
    result = Comparison()
    _compare(lhs, rhs, node, (), result)
    return result


def _compare(lhs: Any, rhs: Any, node: SchemaNode, path: Path, out: Comparison) -> None:
    shape = _shape(node, rhs if rhs is not _MISSING else lhs)
    if shape in ("map", "listmap", "set") and None in (lhs, rhs):  # null: present, with no children
        lhs, rhs = (type(rhs)() if lhs is None else lhs), (type(lhs)() if rhs is None else rhs)
    if shape in ("map", "listmap", "set") and _both_empty(lhs, rhs):
        shape = "atomic"
    if shape in ("scalar", "atomic") or type(lhs) is not type(rhs) and _MISSING not in (lhs, rhs):
        _leaf(lhs, rhs, path, out)
        return
    left = {pe: (v, n) for pe, v, n in _children(node, lhs, shape)} if lhs is not _MISSING else {}
    right = {pe: (v, n) for pe, v, n in _children(node, rhs, shape)} if rhs is not _MISSING else {}
    for pe in list(left) + [p for p in right if p not in left]:
        lv, ln = left.get(pe, (_MISSING, None))
        rv, rn = right.get(pe, (_MISSING, None))
        _compare(lv, rv, rn or ln, path + (pe,), out)
    if path:
        if lhs is _MISSING:
            out.added.add(path)
        elif rhs is _MISSING:
            out.removed.add(path)


def _both_empty(lhs: Any, rhs: Any) -> bool:
    return all(v is _MISSING or v is None or (isinstance(v, (dict, list)) and not v) for v in (lhs, rhs))


def _leaf(lhs: Any, rhs: Any, path: Path, out: Comparison) -> None:
    if not path:
        return
    if lhs is _MISSING:
        out.added.add(path)
    elif rhs is _MISSING:
        out.removed.add(path)
    elif lhs != rhs:
        out.modified.add(path)


# -- Merge -------------------------------------------------------------------------------------------
def merge(lhs: Any, rhs: Any, node: SchemaNode) -> Any:
    """SMD ``Merge``: granular maps merge per key, associative lists per key, set lists are united;
    scalars and atomic values are replaced by the right side. Inputs stay untouched."""
    shape = _shape(node, rhs)
    if shape in ("scalar", "atomic") or type(lhs) is not type(rhs):
        return copy.deepcopy(rhs)
    if shape == "map":
        out = copy.deepcopy(lhs)
        for key, value in rhs.items():
            out[key] = merge(lhs[key], value, node.child(key)) if key in lhs else copy.deepcopy(value)
        return out
    if shape == "set":
        return _merge_list(lhs, rhs, value_key, lambda _, right: copy.deepcopy(right))
    return _merge_list(lhs, rhs, lambda e: element_key(node, e), lambda left, right: merge(left, right, node.items()))


def _merge_list(lhs: list[Any], rhs: list[Any], key: Callable[[Any], str],
                both: Callable[[Any, Any], Any]) -> list[Any]:
    """SMD ``mergingWalker.visitListItems`` order: elements on both sides follow the right side's
    order, elements only on the left keep their place, elements only on the right come where the
    right side has them (``[A, B]`` merged with ``[C, A]`` is ``[C, A, B]``)."""
    lkeys, rkeys = [key(e) for e in lhs], [key(e) for e in rhs]
    left, right = dict(zip(lkeys, lhs, strict=True)), dict(zip(rkeys, rhs, strict=True))
    shared = [k for k in rkeys if k in left]
    out: list[Any] = []
    done: set[str] = set()
    li = ri = 0
    while li < len(lkeys) or ri < len(rkeys):
        upcoming = shared[0] if shared else None
        if li < len(lkeys) and ri < len(rkeys):
            if lkeys[li] == rkeys[ri]:
                out.append(both(left[lkeys[li]], right[rkeys[ri]]))
                done.add(lkeys[li])
                shared = shared[1:]
                li, ri = li + 1, ri + 1
                continue
            if lkeys[li] in right and upcoming is not None and upcoming != lkeys[li]:
                li += 1
                continue
        if li < len(lkeys):
            if lkeys[li] not in right:
                out.append(copy.deepcopy(left[lkeys[li]]))
                li += 1
                continue
            if lkeys[li] in done:
                li += 1
        if ri < len(rkeys):
            k = rkeys[ri]
            done.add(k)
            out.append(both(left[k], right[k]) if k in left else copy.deepcopy(right[k]))
            ri += 1
            if upcoming == k:
                shared = shared[1:]
    return out


# -- removal ------------------------------------------------------------------------------------------
def remove_paths(obj: Any, paths: Iterable[Path], node: SchemaNode) -> Any:
    """A copy of ``obj`` without the values at ``paths`` (SMD ``RemoveItems``); a map or list that
    the removal leaves empty goes too (Go's ``omitempty`` drops it on the way out)."""
    out = copy.deepcopy(obj)
    for path in sorted(paths, key=len):  # shallow first: a removed element takes its fields along
        _remove(out, path, node)
    return out


def _remove(value: Any, path: Path, node: SchemaNode) -> bool:
    """Remove ``path`` under ``value``; True when ``value`` became empty because of it."""
    shape = _shape(node, value)
    if shape not in ("map", "listmap", "set") or not path:
        return False
    head, rest = path[0], path[1:]
    for index, (pe, child, child_node) in enumerate(_children(node, value, shape)):
        if pe != head:
            continue
        if rest and not _remove(child, rest, child_node):
            return False
        if isinstance(value, dict):
            del value[head[2:]]
        else:
            del value[index]
        return not value
    return False


# -- FieldsV1 -------------------------------------------------------------------------------------------
def _sort_key(pe: str) -> tuple[int, str]:
    """SMD ``PathElement.Compare``: field names, then keys, then values, then indexes."""
    return ({"f": 0, "k": 1, "v": 2, "i": 3}.get(pe[:1], 4), pe)


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` document of a field set (``fieldpath.Set.ToJSON``)."""
    tree: dict[str, Any] = {}
    members: set[Path] = set(paths)
    for path in members:
        node = tree
        for pe in path:
            node = node.setdefault(pe, {})
    return _emit(tree, (), members)


def _emit(tree: dict[str, Any], prefix: Path, members: set[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prefix in members and tree and prefix:
        out["."] = {}
    for pe in sorted(tree, key=_sort_key):
        out[pe] = _emit(tree[pe], prefix + (pe,), members)
    return out


def decode_fields(doc: dict[str, Any], prefix: Path = ()) -> set[Path]:
    """The field set of a ``fieldsV1`` document (``fieldpath.Set.FromJSON``)."""
    out: set[Path] = set()
    for pe, sub in (doc or {}).items():
        if pe == ".":
            out.add(prefix)
            continue
        path = prefix + (pe,)
        if not sub:
            out.add(path)
        else:
            out |= decode_fields(sub, path)
    return out


def path_string(path: Path) -> str:
    """``fieldpath.Path.String``: ``.spec.containers[name="app"].image``, ``[="x"]`` for set values."""
    parts = []
    for pe in path:
        kind, text = pe[:1], pe[2:]
        if kind == "f":
            parts.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            parts.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(keys.items())) + "]")
        elif kind == "v":
            parts.append(f"[={text}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


# -- managers -------------------------------------------------------------------------------------------
@dataclass
class Manager:
    """One ``metadata.managedFields`` entry."""

    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    fields: set[Path]
    time: str | None = None
    subresource: str = ""

    @property
    def ident(self) -> tuple[str, str, str, str]:
        """BuildManagerIdentifier: appliers are one manager whatever the apiVersion they used."""
        return (self.manager, self.operation, "" if self.operation == "Apply" else self.api_version,
                self.subresource)

    def printed(self) -> str:
        """``printManager`` of conflict.go (the identifier carries no time)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        return f"{text} using {self.api_version}" if self.operation == "Update" else text

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = encode_fields(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def read_managers(entries: Any) -> list[Manager]:
    """Managers of a ``metadata.managedFields`` list (entries without a manager set are dropped)."""
    out = []
    for e in entries if isinstance(entries, list) else []:
        if isinstance(e, dict) and e.get("operation") in ("Apply", "Update"):
            out.append(Manager(str(e.get("manager", "")), e["operation"], str(e.get("apiVersion", "")),
                               decode_fields(e.get("fieldsV1") or {}), e.get("time"),
                               str(e.get("subresource", ""))))
    return out


def write_managers(managers: list[Manager]) -> list[dict[str, Any]]:
    """Encoded entries, sorted like ``sortEncodedManagedFields``: operation, time, manager,
    apiVersion, subresource (``Apply`` sorts before ``Update``)."""
    kept = [m for m in managers if m.fields]
    kept.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource))
    return [m.entry() for m in kept]


# -- conflicts ------------------------------------------------------------------------------------------
@dataclass
class Conflict(Exception):
    """Apply conflicts: (manager, path) pairs (``merge.Conflicts``)."""

    conflicts: list[tuple[Manager, Path]]

    def message(self) -> str:
        """``getConflictMessage`` of conflict.go."""
        if len(self.conflicts) == 1:
            owner, path = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {owner.printed()}: {path_string(path)}"
        lines = []
        for owner, paths in self._grouped():
            lines.append(f"conflicts with {owner.printed()}:")
            lines.extend(f"- {path_string(p)}" for p in paths)
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        """``details.causes``: one ``FieldManagerConflict`` per conflicting path."""
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {owner.printed()}",
                 "field": path_string(p)} for owner, paths in self._grouped() for p in paths]

    def _grouped(self) -> list[tuple[Manager, list[Path]]]:
        groups: dict[tuple[str, str, str, str], tuple[Manager, list[Path]]] = {}
        for owner, path in self.conflicts:
            groups.setdefault(owner.ident, (owner, []))[1].append(path)
        return [(o, sorted(ps, key=lambda p: [_sort_key(e) for e in p]))
                for _, (o, ps) in sorted(groups.items())]


# -- Update / Apply -----------------------------------------------------------------------------------
CURRENT_OPERATION = ("current-operation", "", "", "")  # managedfieldsupdater.go's temporary manager


def _kept(paths: Iterable[Path], ignored: tuple[Path, ...]) -> set[Path]:
    """Drop stripped metadata and the reset fields (``ExcludeSetFilter``: a path and its children)."""
    return {p for p in paths if p not in STRIPPED and not any(p[:len(i)] == i for i in ignored)}


def _settle(live: Any, new: Any, node: SchemaNode, managers: list[Manager], actor: tuple[str, str, str, str],
            force: bool, ignored: tuple[Path, ...]) -> Comparison:
    """SMD ``Updater.update``: other managers lose what changes (or raise Conflict), and what is removed."""
    diff = compare(live, new, node)
    changed = _kept(diff.changed(), ignored)
    clashes = [(m, p) for m in managers if m.ident != actor for p in sorted(m.fields & changed)]
    if clashes and not force:
        raise Conflict(clashes)
    for m in managers:
        if m.ident != actor:
            m.fields -= changed | diff.removed
    return diff


def update(live: dict[str, Any] | None, new: dict[str, Any], node: SchemaNode, managers: list[Manager],
           manager: str, api_version: str, now: str, subresource: str = "",
           ignored: tuple[Path, ...] = ()) -> list[Manager]:
    """An ``Update`` (create, PUT, non-apply PATCH) by ``manager``: it takes every field the write
    added or modified from whoever had it; its entry's time moves only when it took something."""
    actor = Manager(manager, "Update", api_version, set(), subresource=subresource)
    base = _strip(live) if live is not None else zero_skeleton(_strip(new), node)
    # managedFieldsUpdater runs the write as "current-operation": the writer's own entry is an
    # "other" manager too (it loses what the write removes) before the operation is folded into it.
    diff = _settle(base, _strip(new), node, managers, CURRENT_OPERATION, True, ignored)
    taken = _kept(diff.changed(), ignored)
    mine = next((m for m in managers if m.ident == actor.ident), None)
    if taken:
        if mine is None:
            mine = actor
            managers.append(mine)
        mine.fields |= taken
        mine.api_version, mine.time = api_version, now
    return [m for m in managers if m.fields]


@dataclass
class Applied:
    """The outcome of an apply: the merged object and the managers (the applier's entry is
    ``mine``; its time is the caller's to move, once defaults show whether anything changed)."""

    obj: dict[str, Any]
    managers: list[Manager]
    mine: Manager


def apply(live: dict[str, Any], applied: dict[str, Any], node: SchemaNode, managers: list[Manager],
          manager: str, api_version: str, force: bool = False, ignored: tuple[Path, ...] = (),
          subresource: str = "") -> Applied:
    """SMD ``Updater.Apply``: merge the configuration, prune what this applier applied last time and
    no longer does (unless another manager still owns it, see :func:`_prune`), then settle ownership;
    raises :class:`Conflict` without ``force``. The applier owns exactly :func:`field_set` of its
    configuration (minus stripped metadata and reset fields)."""
    live = _strip(live)
    merged = merge(live, _strip(applied), node)
    mine = next((m for m in managers if m.ident == (manager, "Apply", "", subresource)), None)
    owned = _kept(field_set(_strip(applied), node), ignored)
    if mine is not None:
        merged = _prune(merged, mine.fields - owned, managers, mine, owned, node)
    else:
        mine = Manager(manager, "Apply", api_version, set(), subresource=subresource)
        managers.append(mine)
    _settle(live, merged, node, managers, mine.ident, force, ignored)
    mine.fields, mine.api_version = owned, api_version
    return Applied(merged, [m for m in managers if m.fields], mine)


def _prune(merged: Any, dropped: set[Path], managers: list[Manager], mine: Manager, owned: set[Path],
           node: SchemaNode) -> Any:
    """Remove what this applier dropped unless some manager still owns it (``prune`` +
    ``addBackOwnedItems``). Ownership protects a path exactly; a named field (``f:``) is also kept
    for an owned path below it (``EnsureNamedFieldsAreMembers``), a list element is not: dropping
    an element removes it whole even if another manager owns a field inside (SMD test
    ``remove_one_with_dangling_subitem_keep_one``)."""
    kept = set().union(*(m.fields for m in managers if m is not mine)) | owned
    below = {p[:i] for p in kept for i in range(1, len(p))}
    doomed = {p for p in dropped if p not in kept and not (p[-1].startswith("f:") and p in below)}
    return remove_paths(merged, doomed, node)


def _strip(obj: Any) -> Any:
    """The object as the field manager sees it: no ``metadata.managedFields``."""
    if not isinstance(obj, dict) or "managedFields" not in (obj.get("metadata") or {}):
        return obj
    out = dict(obj)
    out["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return out


# -- typed conversion ------------------------------------------------------------------------------------
def typed_error(value: Any, node: SchemaNode) -> str | None:
    """The error of the typed conversion of an applied configuration, or None; several come as
    ``errors:`` and one indented line each (typed ``ValidationErrors.Error``)."""
    errors = typed_errors(value, node)
    if not errors:
        return None
    return errors[0] if len(errors) == 1 else "\n  ".join(["errors:", *errors])


def typed_errors(value: Any, node: SchemaNode, prefix: Path = ()) -> list[str]:
    """typed/validate.go over the schema: ``.spec.foo: field not declared in schema`` (the rest of
    that map is not looked at), or ``<list>: element 0: associative list with keys has an element
    that omits all key fields ["name"] (and doesn't have default values for any key fields)``
    (typed/helpers.go; the rest of that list is not looked at), or ``<list>: duplicate entries for
    key [name="a"]`` (an apply patch is converted without ``AllowDuplicates``).

    A schema with ``properties`` and no ``additionalProperties`` is a struct: any other key is
    undeclared. Schemas without either (untyped, ``x-kubernetes-preserve-unknown-fields``) accept all.
    """
    shape = _shape(node, value)
    if shape == "map":
        return _map_errors(value, node, prefix)
    if shape == "listmap":
        missing = _keyless(value, node)
        if missing is not None:
            keys = "[" + " ".join(json.dumps(k) for k in _list_keys(node)) + "]"
            return [f"{path_string(prefix)}: element {missing}: associative list with keys has an element that "
                    f"omits all key fields {keys} (and doesn't have default values for any key fields)"]
    errors: list[str] = []
    if shape in ("listmap", "set"):
        seen: set[str] = set()
        for pe, element, child_node in _children(node, value, shape):
            if pe in seen:
                errors.append(f"{path_string(prefix)}: duplicate entries for key {path_string((pe,))}")
            seen.add(pe)
            errors += typed_errors(element, child_node, prefix + (pe,))
    return errors


def _map_errors(value: dict[str, Any], node: SchemaNode, prefix: Path) -> list[str]:
    props = node.schema.get("properties")
    open_ended = isinstance(node.schema.get("additionalProperties"), dict) or \
        node.schema.get("x-kubernetes-preserve-unknown-fields")
    errors: list[str] = []
    for key, child in value.items():
        if props is not None and key not in props and not open_ended:
            return [*errors, f"{path_string(prefix + (f'f:{key}',))}: field not declared in schema"]
        errors += typed_errors(child, node.child(key), prefix + (f"f:{key}",))
    return errors


def _keyless(value: list[Any], node: SchemaNode) -> int | None:
    """Index of the first element with none of the key fields (and no default for any)."""
    keys = _list_keys(node)
    for index, element in enumerate(value):
        if not any((isinstance(element, dict) and k in element) or k in KEY_DEFAULTS for k in keys):
            return index
    return None


def zero_skeleton(obj: Any, node: SchemaNode) -> Any:
    """What a create compares against: the zero value of the Go type, approximated as an empty
    object for every struct reached through struct fields (the apiserver's live object of a create
    is ``New()``, whose non-pointer struct fields serialise as ``{}``; pointers cannot be told apart
    in the OpenAPI schema, so all are taken as values)."""
    if not isinstance(obj, dict) or _shape(node, obj) != "map" or not node.schema.get("properties"):
        return {}
    out: dict[str, Any] = {k: zero_skeleton(v, node.child(k)) for k, v in obj.items()
                           if isinstance(v, dict) and v and node.child(k).schema.get("properties")
                           and _shape(node.child(k), v) == "map"}
    for key in node.schema.get("required") or ():  # required lists have no omitempty: null
        if isinstance(obj.get(key), list):
            out[key] = None
    return out
