"""Defaulting and validation of the built-in kinds the operator writes, as the API server's
registry does them: ``pkg/apis/*/v1/defaults.go`` (defaulting on decode), the strategies'
create-time preparation, and ``pkg/apis/*/validation`` plus
``k8s.io/apimachinery/pkg/api/validation`` (422 Invalid field errors). Objects are the JSON
dicts clients send (camelCase); type checking against the OpenAPI schema is another module's job.

Public API: :func:`default` (in place, by apiVersion and kind), :func:`validate` (field errors of
a create, or of an update when ``old`` is the stored object), :func:`prepare_update` (what the
registry carries over from the stored object before validating an update), :class:`DecodeError`
(the body cannot be decoded at all: the API server answers 400, not 422).

Errors are worded as ``field.Error.Error()`` renders them since v1.34: ``<path>: <Type>:
<value>: <detail>``, values as Go's JSON (structs of the internal API types with their Go field
names), repeated messages dropped as ``ToAggregate`` does.

Covered, per kind:

* every kind: metadata.name (DNS-1123 subdomain; DNS-1035 label for Service; DNS-1123 label for
  Namespace; only path-segment rules for PodDisruptionBudget, whose strategy leaves metadata to
  the generic checks), metadata.namespace format, labels, annotations (keys, 256 KiB in all),
  ownerReferences (required fields, one controller, no Event owner), finalizers (qualified
  names, unqualified ones must be standard, not both orphan and foregroundDeletion);
* Deployment, ReplicaSet: defaults; replicas, minReadySeconds, revisionHistoryLimit,
  progressDeadlineSeconds, selector (required, non-empty, valid, matching the template labels,
  immutable on update), strategy and rollingUpdate, restartPolicy Always, no
  activeDeadlineSeconds, and the pod template;
* pod templates and Pods: PodSpec, Container, Probe, handler and Volume defaults, resource
  quantities rounded up to milli and canonical; containers and initContainers (names, images,
  ports, host ports, env and envFrom, volumeMounts, pull and termination-message policies,
  resources, probes, lifecycle handlers, securityContext), volumes (names, exactly one source,
  details of secret, configMap, downwardAPI, projected, hostPath, emptyDir, PVC, NFS and CSI
  sources, file modes), restartPolicy, dnsPolicy, nodeSelector, pod securityContext,
  tolerations, topologySpreadConstraints, readinessGates, serviceAccountName, nodeName,
  hostname, subdomain, priorityClassName, preemptionPolicy, activeDeadlineSeconds, host-network
  ports; Pods also get the Pod-only defaults (enableServiceLinks, requests from limits, host
  ports under hostNetwork, status phase and QoS class) and the update rule (only images,
  activeDeadlineSeconds and added tolerations may change);
* Service: defaults, single-stack IPv4 ipFamilies, clusterIP/clusterIPs normalisation; ports
  (names, numbers, protocols, targetPorts, duplicates), type, selector, session affinity,
  clusterIPs and ipFamilies, externalIPs, traffic policies, load-balancer fields,
  healthCheckNodePort; on update clusterIPs and ipFamilies may not change;
* HorizontalPodAutoscaler (autoscaling/v2): defaults; replica bounds, scaleTargetRef, every
  metric source and target, behavior rules and policies;
* PodDisruptionBudget (policy/v1): minAvailable/maxUnavailable, selector, unhealthy-pod policy;
* Secret: type default, keys, base64 data, 1 MiB in all, keys typed secrets require, type and
  ``immutable`` on update; ConfigMap: keys, data/binaryData overlap, 1 MiB, ``immutable``;
* Namespace: finalizer, status and kubernetes.io/metadata.name defaults, finalizer names;
  ServiceAccount: its metadata.

Not covered (accepted as they come): affinity internals, resource claims and DRA, ephemeral
containers beyond their prohibition, volumeDevices, pod-level resources, resize policies, Windows
options, AppArmor and seccomp beyond their type, dnsConfig details, hostAliases, overhead,
os-specific rules, annotations with a meaning for Pods (mirror, seccomp, AppArmor, deletion
cost), sysctl namespaces, most feature-gated fields, generateName (the caller generates names),
allocation of clusterIPs and node ports and their ranges (the caller allocates, before
:func:`validate`, as the registry does), admission plugins (service-account volumes, default
tolerations, priority), the content of dockercfg secrets, and the diff the API server appends
to a forbidden Pod update. Events are not validated.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Any

from tests.kube import quantity
from tests.kube.quantity import QuantityError

__all__ = ["DecodeError", "Obj", "default", "prepare_update", "validate"]

Obj = dict[str, Any]


class DecodeError(ValueError):
    """The body cannot be decoded into its kind (a bad quantity, bad base64): the API server
    answers 400 ``<Kind> in version "<v>" cannot be handled as a <Kind>: <message>``."""


# --- Field errors, as field.Error renders them -----------------------------------------------

# MaxLenError's unit: "characters" in util/validation, "bytes" in newer apimachinery code.
_LENGTH_UNIT = "characters"
_NEGATIVE = "must be greater than or equal to 0"
_NOT_POSITIVE = "must be greater than zero"
_IMMUTABLE = "field is immutable"
_FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"
_MORE_THAN_ONE_VOLUME = "may not specify more than 1 volume type"
_ONE_HANDLER = "may not specify more than 1 handler type"
_INIT_ONLY_WITH_ALWAYS = "may not be set for init containers without restartPolicy=Always"
_ONLY_LOAD_BALANCER = "may only be used when `type` is 'LoadBalancer'"
_TOTAL_ANNOTATION_SIZE = 256 * 1024
_MAX_SECRET_SIZE = 1024 * 1024
_MAX_INT32 = 2**31 - 1
_MAX_ID = 0xFFFFFFFF
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GO_ESCAPES |= {"\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _go_quote(text: str) -> str:
    """strconv.Quote."""
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _go_json(value: Any) -> str:
    """encoding/json.Marshal: compact, HTML characters escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _render(value: Any) -> str:
    """How ErrorBody prints a bad value: simple types plainly, anything else as JSON."""
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _go_json(value)


def _error(path: str, body: str, detail: str) -> str:
    return f"{path}: {body}: {detail}" if detail else f"{path}: {body}"


def _invalid(path: str, value: Any, detail: str) -> str:
    return _error(path, f"Invalid value: {_render(value)}", detail)


def _required(path: str, detail: str = "") -> str:
    return _error(path, "Required value", detail)


def _forbidden(path: str, detail: str) -> str:
    return _error(path, "Forbidden", detail)


def _duplicate(path: str, value: Any) -> str:
    return f"{path}: Duplicate value: {_render(value)}"


def _not_found(path: str, value: Any) -> str:
    return f"{path}: Not found: {_render(value)}"


def _not_supported(path: str, value: Any, supported: Iterable[str]) -> str:
    detail = "supported values: " + ", ".join(_go_quote(v) for v in supported)
    return _error(path, f"Unsupported value: {_render(value)}", detail)


def _too_long(path: str, limit: int) -> str:
    return f"{path}: Too long: may not be more than {limit} {'byte' if limit == 1 else 'bytes'}"


def _nonnegative(value: Any, path: str) -> list[str]:
    number = _int(value)
    return [_invalid(path, number, _NEGATIVE)] if number is not None and number < 0 else []


def _immutable(new: Any, old: Any, path: str, shown: Any = None) -> list[str]:
    if _semantic(new) == _semantic(old):
        return []
    return [_invalid(path, new if shown is None else shown, _IMMUTABLE)]


def _semantic(value: Any) -> Any:
    """Semantic.DeepEqual's view of JSON: nil and empty maps and slices are equal."""
    if isinstance(value, dict):
        kept = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


# --- JSON access -----------------------------------------------------------------------------


def _map(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _seq(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(value: Any) -> list[Obj]:
    """The objects of a JSON list."""
    return [item for item in _seq(value) if isinstance(item, dict)]


def _maps(parent: Any, key: str) -> list[Obj]:
    return _items(_map(parent).get(key))


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _blen(text: str) -> int:
    """Go's len of a string: its bytes."""
    return len(text.encode("utf-8"))


def _fill(obj: Obj, key: str, value: Any) -> None:
    """Default a Go string or integer: its zero value ("" or 0) counts as unset too."""
    if obj.get(key) in (None, "", 0):
        obj[key] = copy.deepcopy(value)


def _fill_pointer(obj: Obj, key: str, value: Any) -> None:
    """Default a Go pointer, slice or map: only nil counts as unset."""
    if obj.get(key) is None:
        obj[key] = copy.deepcopy(value)


# --- Names, labels, selectors ----------------------------------------------------------------

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_KEY = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _LABEL_KEY + ")?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"
_PERCENT = "[0-9]+%"
_HTTP_HEADER = "[-A-Za-z0-9]+"
_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL = "(" + _SYSCTL_SEGMENT + "[\\./])*" + _SYSCTL_SEGMENT

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"
_HTTP_HEADER_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"
_ENV_NAME_MSG = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    """validation.RegexError, its doubled space before "or" included."""
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} {_LENGTH_UNIT}"


def _range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


def _dns1123_label(value: str) -> list[str]:
    errors = [_max_len(63)] if _blen(value) > 63 else []
    if _matches(_DNS1123_LABEL, value):
        return errors
    if _matches(_DNS1123_SUBDOMAIN, value):
        return [*errors, "must not contain dots"]
    return [*errors, _regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL, "my-name", "123-abc")]


def _dns1123_subdomain(value: str) -> list[str]:
    errors = [_max_len(253)] if _blen(value) > 253 else []
    if not _matches(_DNS1123_SUBDOMAIN, value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN, "example.com"))
    return errors


def _dns1035_label(value: str) -> list[str]:
    errors = [_max_len(63)] if _blen(value) > 63 else []
    if not _matches(_DNS1035_LABEL, value):
        errors.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL, "my-name", "abc-123"))
    return errors


def _path_segment(value: str) -> list[str]:
    """IsValidPathSegmentName: all a PodDisruptionBudget's name has to be."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{char}'" for char in "/%" if char in value]


def _qualified_name(value: str) -> list[str]:
    """IsQualifiedName (content.IsLabelKey): an optional DNS subdomain prefix and '/', a name."""
    name_error = _regex_error(_LABEL_KEY_MSG, _LABEL_KEY, "MyName", "my.name", "123-abc")
    parts = value.split("/")
    if len(parts) > 2:
        return [
            f"a valid label key {name_error} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    errors = []
    if len(parts) == 2:
        if not parts[0]:
            errors.append("prefix part must be non-empty")
        errors += ["prefix part " + msg for msg in _dns1123_subdomain(parts[0]) if parts[0]]
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif _blen(name) > 63:
        errors.append("name part " + _max_len(63))
    if not _matches(_LABEL_KEY, name):
        errors.append("name part " + name_error)
    return errors


def _label_value(value: str) -> list[str]:
    errors = [_max_len(63)] if _blen(value) > 63 else []
    if not _matches(_LABEL_VALUE, value):
        example = _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE, "MyValue", "my_value", "12345")
        errors.append(example)
    return errors


def _config_key(value: str) -> list[str]:
    errors = [_max_len(253)] if _blen(value) > 253 else []
    if not _matches(_CONFIG_KEY, value):
        examples = ("key.name", "KEY_NAME", "key-name")
        errors.append(_regex_error(_CONFIG_KEY_MSG, _CONFIG_KEY, *examples))
    if value in (".", ".."):
        errors.append(f"must not be '{value}'")
    elif value.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def _port_name(value: str) -> list[str]:
    """IsValidPortName: an IANA_SVC_NAME."""
    errors = [_max_len(15)] if _blen(value) > 15 else []
    if not _matches("[-a-z0-9]+", value):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errors.append("must contain at least one letter (a-z)")
    if "--" in value:
        errors.append("must not contain consecutive hyphens")
    if value.startswith("-") or value.endswith("-"):
        errors.append("must not begin or end with a hyphen")
    return errors


def _port_number(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else [_range_error(1, 65535)]


def _env_name(value: str) -> list[str]:
    """IsRelaxedEnvVarName (RelaxedEnvironmentVariableValidation is GA)."""
    errors = [] if value else ["environment variable name must be non-empty"]
    if any(not " " <= char <= "~" or char == "=" for char in value):
        errors.append(_ENV_NAME_MSG)
    return errors


def _names(check: Callable[[str], list[str]], value: str, path: str) -> list[str]:
    return [_invalid(path, value, msg) for msg in check(value)]


def _labels(labels: Any, path: str) -> list[str]:
    errors = []
    for key, value in _map(labels).items():
        errors += _names(_qualified_name, key, path)
        errors += _names(_label_value, _str(value), path)
    return errors


def _annotations(annotations: Any, path: str) -> list[str]:
    errors = []
    total = 0
    for key, value in _map(annotations).items():
        # Annotation keys are qualified names in which case does not matter.
        errors += [_invalid(path, key, msg) for msg in _qualified_name(key.lower())]
        total += _blen(key) + _blen(_str(value))
    if total > _TOTAL_ANNOTATION_SIZE:
        errors.append(_too_long(path, _TOTAL_ANNOTATION_SIZE))
    return errors


def _selector_json(selector: Any) -> Any:
    """A *metav1.LabelSelector as JSON: its tags omit empty fields."""
    if not isinstance(selector, dict):
        return None
    shown: Obj = {}
    if _map(selector.get("matchLabels")):
        shown["matchLabels"] = dict(sorted(selector["matchLabels"].items()))
    expressions = []
    for expression in _maps(selector, "matchExpressions"):
        item = {"key": _str(expression.get("key")), "operator": expression.get("operator")}
        if _seq(expression.get("values")):
            item["values"] = expression["values"]
        expressions.append(item)
    if expressions:
        shown["matchExpressions"] = expressions
    return shown


def _label_selector(selector: Any, path: str) -> list[str]:
    """ValidateLabelSelector, values checked (AllowInvalidLabelValueInSelector is false)."""
    if not isinstance(selector, dict):
        return []
    errors = _labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expression in enumerate(_maps(selector, "matchExpressions")):
        where = f"{path}.matchExpressions[{i}]"
        operator = expression.get("operator")
        values = _seq(expression.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                detail = "must be specified when `operator` is 'In' or 'NotIn'"
                errors.append(_required(f"{where}.values", detail))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                errors.append(_forbidden(f"{where}.values", detail))
        else:
            errors.append(_invalid(f"{where}.operator", operator, "not a valid selector operator"))
        errors += _names(_qualified_name, _str(expression.get("key")), f"{where}.key")
        for j, value in enumerate(values):
            errors += _names(_label_value, _str(value), f"{where}.values[{j}]")
    return errors


def _selector_matches(selector: Any, labels: Obj) -> bool:
    """LabelSelectorAsSelector(selector).Matches(labels), for a selector that parses."""
    if not isinstance(selector, dict):
        return False  # a nil selector is labels.Nothing()
    if any(labels.get(k) != v for k, v in _map(selector.get("matchLabels")).items()):
        return False
    for expression in _maps(selector, "matchExpressions"):
        key, operator = _str(expression.get("key")), expression.get("operator")
        inside = key in labels and labels[key] in _seq(expression.get("values"))
        if (operator == "In" and not inside) or (operator == "NotIn" and inside):
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _selector_is_empty(selector: Any) -> bool:
    selector = _map(selector)
    return not _map(selector.get("matchLabels")) and not _maps(selector, "matchExpressions")


# --- Object metadata -------------------------------------------------------------------------

_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}


def _owner_json(reference: Obj) -> Obj:
    """A metav1.OwnerReference as JSON."""
    shown = {key: _str(reference.get(key)) for key in ("apiVersion", "kind", "name", "uid")}
    for key in ("controller", "blockOwnerDeletion"):
        if reference.get(key) is not None:
            shown[key] = reference[key]
    return shown


def _owner_references(references: Any, path: str) -> list[str]:
    errors = []
    controller = ""
    owners = _items(references)
    for reference in owners:
        api_version = _str(reference.get("apiVersion"))
        group, _, version = api_version.rpartition("/")
        if api_version.count("/") > 1 or not version:
            errors.append(_invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not _str(reference.get(key)):
                errors.append(_invalid(f"{path}.{key}", "", "must not be empty"))
        if (group, version, reference.get("kind")) == ("", "v1", "Event"):
            detail = "/v1, Kind=Event is disallowed from being an owner"
            errors.append(_invalid(path, _owner_json(reference), detail))
        if reference.get("controller") is not True:
            continue
        current = f"{_str(reference.get('kind'))}/{_str(reference.get('name'))}"
        if not controller:
            controller = current
            continue
        detail = 'Only one reference can have Controller set to true. Found "true" in '
        detail += f"references for {controller} and {current}"
        errors.append(_invalid(path, [_owner_json(owner) for owner in owners], detail))
    return errors


def _finalizers(finalizers: Any, path: str) -> list[str]:
    """apimachinery's ValidateFinalizers: errors on the list's path."""
    names = [_str(name) for name in _seq(finalizers)]
    errors = [error for name in names for error in _names(_qualified_name, name, path)]
    if "orphan" in names and "foregroundDeletion" in names:
        detail = "finalizer orphan and foregroundDeletion cannot be both set"
        errors.append(_invalid(path, names, detail))
    return errors


def _kube_finalizer(name: str, path: str) -> list[str]:
    """validateKubeFinalizerName: an unqualified finalizer must be a standard one."""
    if "/" in name or name in _STANDARD_FINALIZERS:
        return []
    detail = "name is neither a standard finalizer name nor is it fully qualified"
    return [_invalid(path, name, detail)]


def _metadata(
    obj: Obj,
    old: Obj | None,
    name_check: Callable[[str], list[str]],
    *,
    namespaced: bool = True,
    kube_finalizers: bool = True,
) -> list[str]:
    """ValidateObjectMeta on create; ValidateObjectMetaUpdate on update, where the name is not
    checked again (it cannot change). A cluster-scoped object's namespace is not checked: the
    API server clears it."""
    meta = _map(obj.get("metadata"))
    errors = []
    if old is None:
        name = _str(meta.get("name"))
        if name:
            errors += _names(name_check, name, "metadata.name")
        else:
            errors.append(_required("metadata.name", "name or generateName is required"))
    if namespaced and _str(meta.get("namespace")):
        errors += _names(_dns1123_label, meta["namespace"], "metadata.namespace")
    errors += _labels(meta.get("labels"), "metadata.labels")
    errors += _annotations(meta.get("annotations"), "metadata.annotations")
    errors += _owner_references(meta.get("ownerReferences"), "metadata.ownerReferences")
    errors += _finalizers(meta.get("finalizers"), "metadata.finalizers")
    if kube_finalizers:
        for i, name in enumerate(_seq(meta.get("finalizers"))):
            errors += _kube_finalizer(_str(name), f"metadata.finalizers[{i}]")
    return errors


# --- Quantities ------------------------------------------------------------------------------


def _quantity(value: Any) -> tuple[str, Decimal]:
    """A quantity as String() shows it, and its value."""
    try:
        text = quantity.canonical(value)
    except QuantityError as error:
        raise DecodeError(str(error)) from None
    return text, quantity.parse(text)


def _resource_list(resources: Any) -> dict[str, tuple[str, Decimal]]:
    """A ResourceList after SetDefaults_ResourceList (rounded up to milli), by resource name."""
    parsed = {}
    for name, value in _map(resources).items():
        try:
            text = quantity.canonical_resource(value)
        except QuantityError as error:
            raise DecodeError(str(error)) from None
        parsed[name] = (text, quantity.parse(text))
    return parsed


def _canonical_resources(resources: Any) -> None:
    if isinstance(resources, dict):
        resources |= {name: text for name, (text, _) in _resource_list(resources).items()}


def _canonical_quantity(parent: Obj, key: str) -> None:
    if parent.get(key) is not None:
        parent[key] = _quantity(parent[key])[0]


# --- Pod spec: defaults ----------------------------------------------------------------------

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?:(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?/)?"
    rf"(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def _image_tag(image: str) -> str:
    """parsers.ParseImageName's tag: "latest" when neither tag nor digest is given, "" when
    the reference does not parse (the pull policy then defaults to IfNotPresent)."""
    match = _IMAGE_REFERENCE.fullmatch(image)
    if match is None or match.end("path") > 255 or re.fullmatch("[a-f0-9]{64}", image):
        return ""  # not a reference, a name too long, or a bare image ID
    return match.group("tag") or ("" if match.group("digest") else "latest")


def _default_handler(handler: Any) -> None:
    if isinstance(_map(handler).get("httpGet"), dict):
        _fill(handler["httpGet"], "path", "/")
        _fill(handler["httpGet"], "scheme", "HTTP")
    if isinstance(_map(handler).get("grpc"), dict):
        _fill_pointer(handler["grpc"], "service", "")


def _default_probe(probe: Any) -> None:
    if isinstance(probe, dict):
        _fill(probe, "timeoutSeconds", 1)
        _fill(probe, "periodSeconds", 10)
        _fill(probe, "successThreshold", 1)
        _fill(probe, "failureThreshold", 3)
        _default_handler(probe)


def _default_field_ref(holder: Any) -> None:
    if isinstance(_map(holder).get("fieldRef"), dict):
        _fill(holder["fieldRef"], "apiVersion", "v1")


def _default_container(container: Obj) -> None:
    """SetDefaults_Container and the defaults of its members."""
    if not container.get("imagePullPolicy"):
        latest = _image_tag(_str(container.get("image"))) == "latest"
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    _fill(container, "terminationMessagePath", "/dev/termination-log")
    _fill(container, "terminationMessagePolicy", "File")
    for port in _maps(container, "ports"):
        _fill(port, "protocol", "TCP")
    for env in _maps(container, "env"):
        _default_field_ref(env.get("valueFrom"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe))
    for hook in ("postStart", "preStop"):
        _default_handler(_map(container.get("lifecycle")).get(hook))
    # A struct, not a pointer: the API server always writes it back, if only as {}.
    _fill_pointer(container, "resources", {})
    for key in ("limits", "requests"):
        _canonical_resources(_map(container.get("resources")).get(key))


# Volume sources in the order validateVolumeSource tries them; its "more than 1 volume type"
# error names two of them differently from their JSON names.
# fmt: off
_VOLUME_SOURCES = [
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
]
# fmt: on
_VOLUME_ERROR_NAMES = {"cephfs": "cephFS", "downwardAPI": "downwarAPI"}
_VOLUME_DEFAULTS: dict[str, list[tuple[str, Any]]] = {
    "iscsi": [("iscsiInterface", "default")],
    "rbd": [("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")],
    "scaleIO": [("storageMode", "ThinProvisioned"), ("fsType", "xfs")],
}
_VOLUME_POINTER_DEFAULTS: dict[str, list[tuple[str, Any]]] = {
    "secret": [("defaultMode", 0o644)],
    "configMap": [("defaultMode", 0o644)],
    "downwardAPI": [("defaultMode", 0o644)],
    "projected": [("defaultMode", 0o644)],
    "hostPath": [("type", "")],
    "azureDisk": [("cachingMode", "ReadWrite"), ("fsType", "ext4"), ("readOnly", False)],
}
_VOLUME_POINTER_DEFAULTS["azureDisk"].append(("kind", "Shared"))


def _default_volume(volume: Obj) -> None:
    if all(volume.get(key) is None for key in _VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source, defaults in _VOLUME_DEFAULTS.items():
        for key, value in defaults if isinstance(volume.get(source), dict) else []:
            _fill(volume[source], key, value)
    for source, defaults in _VOLUME_POINTER_DEFAULTS.items():
        for key, value in defaults if isinstance(volume.get(source), dict) else []:
            _fill_pointer(volume[source], key, value)
    for item in _maps(volume.get("downwardAPI"), "items"):
        _default_field_ref(item)
    for projection in _maps(volume.get("projected"), "sources"):
        for item in _maps(projection.get("downwardAPI"), "items"):
            _default_field_ref(item)
        if isinstance(projection.get("serviceAccountToken"), dict):
            _fill_pointer(projection["serviceAccountToken"], "expirationSeconds", 3600)
    if isinstance(volume.get("emptyDir"), dict):
        _canonical_quantity(volume["emptyDir"], "sizeLimit")
    claim = _map(_map(_map(volume.get("ephemeral")).get("volumeClaimTemplate")).get("spec"))
    if claim:
        _fill_pointer(claim, "volumeMode", "Filesystem")


def _default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and its members: what every PodSpec gets, templates included."""
    _fill(spec, "dnsPolicy", "ClusterFirst")
    _fill(spec, "restartPolicy", "Always")
    _fill_pointer(spec, "securityContext", {})
    _fill_pointer(spec, "terminationGracePeriodSeconds", 30)
    _fill(spec, "schedulerName", "default-scheduler")
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in _maps(spec, key):
            _default_container(container)
    for volume in _maps(spec, "volumes"):
        _default_volume(volume)
    _canonical_resources(spec.get("overhead"))


def _default_template(template: Any) -> None:
    if isinstance(_map(template).get("spec"), dict):
        _default_pod_spec(template["spec"])


# --- Pod spec: volumes -----------------------------------------------------------------------


def _no_backsteps(target: str, path: str) -> list[str]:
    """validatePathNoBacksteps."""
    if ".." in target.replace("\\", "/").split("/"):
        return [_invalid(path, target, "must not contain '..'")]
    return []


def _local_path(target: str, path: str, *, reserved: bool = True) -> list[str]:
    """validateLocalDescendingPath, and ValidateLocalNonReservedPath's leading '..' rule."""
    errors = [_invalid(path, target, "must be a relative path")] if target.startswith("/") else []
    errors += _no_backsteps(target, path)
    if reserved and target.startswith("..") and not target.startswith("../"):
        errors.append(_invalid(path, target, "must not start with '..'"))
    return errors


def _file_mode(value: Any, path: str) -> list[str]:
    mode = _int(value)
    return [_invalid(path, mode, _FILE_MODE)] if mode is not None and not 0 <= mode <= 0o777 else []


def _key_to_paths(items: Any, path: str) -> list[str]:
    errors = []
    for i, item in enumerate(_items(items)):
        where = f"{path}[{i}]"
        errors += [] if _str(item.get("key")) else [_required(f"{where}.key")]
        errors += [] if _str(item.get("path")) else [_required(f"{where}.path")]
        errors += _local_path(_str(item.get("path")), f"{where}.path")
        errors += _file_mode(item.get("mode"), f"{where}.mode")
    return errors


# fmt: off
_VOLUME_FIELD_PATHS = [
    "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
]
_ENV_FIELD_PATHS = [
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
    "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
]
# fmt: on
# What ConvertDownwardAPIFieldLabel accepts for v1 Pods.
_POD_FIELD_LABELS = {
    *_VOLUME_FIELD_PATHS,
    *_ENV_FIELD_PATHS,
    "spec.restartPolicy",
    "spec.schedulerName",
    "status.phase",
    "spec.host",
}
_RESOURCE_FIELDS = [
    f"{kind}.{name}"
    for kind in ("limits", "requests")
    for name in ("cpu", "ephemeral-storage", "memory")
]


def _field_selector(selector: Obj, supported: list[str], path: str) -> list[str]:
    """validateObjectFieldSelector."""
    api_version, field_path = _str(selector.get("apiVersion")), _str(selector.get("fieldPath"))
    if not api_version:
        return [_required(f"{path}.apiVersion")]
    if not field_path:
        return [_required(f"{path}.fieldPath")]
    subscripted = re.fullmatch(r"(.+)\['(.*)'\]", field_path)
    problem = ""
    if api_version != "v1":
        problem = f"unsupported pod version: {api_version}"
    elif subscripted and subscripted[1] not in ("metadata.annotations", "metadata.labels"):
        problem = f"field label does not support subscript: {field_path}"
    elif not subscripted and field_path not in _POD_FIELD_LABELS:
        problem = f"field label not supported: {field_path}"
    if problem:
        detail = f"error converting fieldPath: {problem}"
        return [_invalid(f"{path}.fieldPath", field_path, detail)]
    if subscripted:
        key = subscripted[2].lower() if subscripted[1] == "metadata.annotations" else subscripted[2]
        return _names(_qualified_name, key, path)
    converted = "spec.nodeName" if field_path == "spec.host" else field_path
    if converted not in supported:
        return [_not_supported(f"{path}.fieldPath", converted, supported)]
    return []


def _resource_field_selector(selector: Obj, path: str, *, volume: bool) -> list[str]:
    resource = _str(selector.get("resource"))
    if volume and not _str(selector.get("containerName")):
        return [_required(f"{path}.containerName")]
    if not resource:
        return [_required(f"{path}.resource")]
    hugepages = resource.startswith(("requests.hugepages-", "limits.hugepages-"))
    if resource not in _RESOURCE_FIELDS and not hugepages:
        return [_not_supported(f"{path}.resource", resource, _RESOURCE_FIELDS)]
    return []


def _downward_api_file(item: Obj, path: str) -> list[str]:
    errors = [] if _str(item.get("path")) else [_required(f"{path}.path")]
    errors += _local_path(_str(item.get("path")), f"{path}.path")
    if isinstance(item.get("fieldRef"), dict):
        errors += _field_selector(item["fieldRef"], _VOLUME_FIELD_PATHS, f"{path}.fieldRef")
        if item.get("resourceFieldRef") is not None:
            detail = "fieldRef and resourceFieldRef can not be specified simultaneously"
            errors.append(_invalid(path, "resource", detail))
    elif isinstance(item.get("resourceFieldRef"), dict):
        where = f"{path}.resourceFieldRef"
        errors += _resource_field_selector(item["resourceFieldRef"], where, volume=True)
    else:
        errors.append(_required(path, "one of fieldRef and resourceFieldRef is required"))
    return errors + _file_mode(item.get("mode"), f"{path}.mode")


def _service_account_token(token: Obj, where: str, path: str) -> list[str]:
    seconds = _int(token.get("expirationSeconds")) or 0
    errors = []
    if seconds < 600:
        detail = "may not specify a duration less than 10 minutes"
        errors.append(_invalid(f"{where}.expirationSeconds", seconds, detail))
    if seconds > 1 << 32:
        detail = "may not specify a duration larger than 2^32 seconds"
        errors.append(_invalid(f"{where}.expirationSeconds", seconds, detail))
    # Upstream reports the path on the projected volume's path, not the source's.
    if not _str(token.get("path")):
        return [*errors, _required(f"{path}.path")]
    return errors + _local_path(_str(token["path"]), f"{path}.path")


def _projection_sources(projected: Obj, path: str) -> list[str]:
    errors = []
    kinds = ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")
    for i, source in enumerate(_maps(projected, "sources")):
        where = f"{path}.sources[{i}]"
        for key in ("secret", "configMap"):
            if isinstance(source.get(key), dict):
                if not _str(source[key].get("name")):
                    errors.append(_required(f"{where}.{key}.name"))
                errors += _key_to_paths(source[key].get("items"), f"{where}.{key}.items")
        for item in _maps(source.get("downwardAPI"), "items"):
            errors += _downward_api_file(item, f"{where}.downwardAPI")
        if isinstance(source.get("serviceAccountToken"), dict):
            token = source["serviceAccountToken"]
            errors += _service_account_token(token, f"{where}.serviceAccountToken", path)
        if sum(source.get(kind) is not None for kind in kinds) > 1:
            errors.append(_forbidden(where, "may not specify more than 1 volume type per source"))
    return errors


_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File"]
_HOST_PATH_TYPES += ["FileOrCreate", "Socket"]


def _volume_source_details(kind: str, source: Obj, path: str) -> list[str]:
    errors = []
    if kind == "emptyDir" and source.get("sizeLimit") is not None:
        if _quantity(source["sizeLimit"])[1] < 0:
            detail = "SizeLimit field must be a valid resource quantity"
            errors.append(_forbidden(f"{path}.sizeLimit", detail))
    elif kind == "hostPath":
        if not _str(source.get("path")):
            return [_required(f"{path}.path")]
        errors += _no_backsteps(source["path"], f"{path}.path")
        if source.get("type") is not None and source["type"] not in _HOST_PATH_TYPES:
            errors.append(_not_supported(f"{path}.type", source["type"], _HOST_PATH_TYPES))
    elif kind in ("secret", "configMap"):
        name_key = "secretName" if kind == "secret" else "name"
        errors += [] if _str(source.get(name_key)) else [_required(f"{path}.{name_key}")]
        errors += _file_mode(source.get("defaultMode"), f"{path}.defaultMode")
        errors += _key_to_paths(source.get("items"), f"{path}.items")
    elif kind == "persistentVolumeClaim" and not _str(source.get("claimName")):
        errors.append(_required(f"{path}.claimName"))
    elif kind == "nfs":
        errors += [] if _str(source.get("server")) else [_required(f"{path}.server")]
        errors += [] if _str(source.get("path")) else [_required(f"{path}.path")]
        if not _str(source.get("path")).startswith("/"):
            nfs_path = _str(source.get("path"))
            errors.append(_invalid(f"{path}.path", nfs_path, "must be an absolute path"))
    elif kind == "csi":
        driver = _str(source.get("driver"))
        errors += [] if driver else [_required(f"{path}.driver")]
        errors += [_too_long(f"{path}.driver", 63)] if _blen(driver) > 63 else []
        errors += [
            _invalid(f"{path}.driver", driver, m) for m in _dns1123_subdomain(driver.lower())
        ]
    elif kind == "downwardAPI":
        errors += _file_mode(source.get("defaultMode"), f"{path}.defaultMode")
        for item in _maps(source, "items"):
            errors += _downward_api_file(item, path)
    elif kind == "projected":
        errors += _file_mode(source.get("defaultMode"), f"{path}.defaultMode")
        errors += _projection_sources(source, path)
    return errors


def _volume_source(volume: Obj, path: str) -> list[str]:
    """validateVolumeSource: exactly one source."""
    errors = []
    present = [kind for kind in _VOLUME_SOURCES if volume.get(kind) is not None]
    for kind in present[1:]:
        name = _VOLUME_ERROR_NAMES.get(kind, kind)
        errors.append(_forbidden(f"{path}.{name}", _MORE_THAN_ONE_VOLUME))
    if not present:
        return [_required(path, "must specify a volume type")]
    return (
        _volume_source_details(present[0], _map(volume[present[0]]), f"{path}.{present[0]}")
        + errors
    )


def _volumes(volumes: Any, path: str) -> tuple[dict[str, Obj], list[str]]:
    """ValidateVolumes: the valid volumes by name, and the errors."""
    errors: list[str] = []
    valid: dict[str, Obj] = {}
    for i, volume in enumerate(_items(volumes)):
        where = f"{path}[{i}]"
        name = _str(volume.get("name"))
        found = _volume_source(volume, where)
        if name:
            found += _names(_dns1123_label, name, f"{where}.name")
        else:
            found.append(_required(f"{where}.name"))
        if name in valid:
            found.append(_duplicate(f"{where}.name", name))
        if found:
            errors += found
        else:
            valid[name] = volume
    return valid, errors


# --- Pod spec: containers --------------------------------------------------------------------


def _container_ports(ports: Any, path: str) -> list[str]:
    errors = []
    names: set[str] = set()
    for i, port in enumerate(_items(ports)):
        where = f"{path}[{i}]"
        name = _str(port.get("name"))
        if name and _port_name(name):
            errors += _names(_port_name, name, f"{where}.name")
        elif name in names:
            errors.append(_duplicate(f"{where}.name", name))
        elif name:
            names.add(name)
        container_port = _int(port.get("containerPort")) or 0
        if not container_port:
            errors.append(_required(f"{where}.containerPort"))
        for msg in _port_number(container_port) if container_port else []:
            errors.append(_invalid(f"{where}.containerPort", container_port, msg))
        host_port = _int(port.get("hostPort")) or 0
        for msg in _port_number(host_port) if host_port else []:
            errors.append(_invalid(f"{where}.hostPort", host_port, msg))
        errors += _protocol(port.get("protocol"), f"{where}.protocol")
    return errors


def _protocol(protocol: Any, path: str) -> list[str]:
    if not protocol:
        return [_required(path)]
    if protocol not in ("SCTP", "TCP", "UDP"):
        return [_not_supported(path, protocol, ["SCTP", "TCP", "UDP"])]
    return []


def _key_selector(selector: Obj, path: str) -> list[str]:
    """A configMapKeyRef or secretKeyRef: the name is checked even when empty."""
    errors = _names(_dns1123_subdomain, _str(selector.get("name")), f"{path}.name")
    key = _str(selector.get("key"))
    return errors + (_names(_config_key, key, f"{path}.key") if key else [_required(f"{path}.key")])


def _env_value_from(var: Obj, path: str) -> list[str]:
    value_from = var.get("valueFrom")
    if not isinstance(value_from, dict):
        return []
    errors = []
    sources = 0
    if isinstance(value_from.get("fieldRef"), dict):
        sources += 1
        errors += _field_selector(value_from["fieldRef"], _ENV_FIELD_PATHS, f"{path}.fieldRef")
    if isinstance(value_from.get("resourceFieldRef"), dict):
        sources += 1
        where = f"{path}.resourceFieldRef"
        errors += _resource_field_selector(value_from["resourceFieldRef"], where, volume=False)
    for key in ("configMapKeyRef", "secretKeyRef"):
        if isinstance(value_from.get(key), dict):
            sources += 1
            errors += _key_selector(value_from[key], f"{path}.{key}")
    if not sources:
        detail = "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
        errors.append(_invalid(path, "", detail + "`secretKeyRef`"))
    elif _str(var.get("value")):
        errors.append(_invalid(path, "", "may not be specified when `value` is not empty"))
    elif sources > 1:
        errors.append(_invalid(path, "", "may not have more than one field specified at a time"))
    return errors


def _env(env: Any, path: str) -> list[str]:
    errors = []
    for i, var in enumerate(_items(env)):
        name = _str(var.get("name"))
        if name:
            errors += _names(_env_name, name, f"{path}[{i}].name")
        else:
            errors.append(_required(f"{path}[{i}].name"))
        errors += _env_value_from(var, f"{path}[{i}].valueFrom")
    return errors


def _env_from(sources: Any, path: str) -> list[str]:
    errors = []
    for i, source in enumerate(_items(sources)):
        where = f"{path}[{i}]"
        if _str(source.get("prefix")):
            errors += _names(_env_name, source["prefix"], f"{where}.prefix")
        refs = [key for key in ("configMapRef", "secretRef") if isinstance(source.get(key), dict)]
        for key in refs:
            name = _str(source[key].get("name"))
            # Checked as a name prefix: a trailing '-' is tolerated.
            masked = name[:-1] + "a" if name.endswith("-") else name
            if not name:
                errors.append(_required(f"{where}.{key}.name"))
            errors += [
                _invalid(f"{where}.{key}.name", name, m) for m in _dns1123_subdomain(masked) if name
            ]
        # Upstream reports these on the list's path.
        if not refs:
            errors.append(_invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(refs) > 1:
            detail = "may not have more than one field specified at a time"
            errors.append(_invalid(path, "", detail))
    return errors


def _volume_mounts(container: Obj, volumes: dict[str, Obj], path: str) -> list[str]:
    errors = []
    mount_paths: set[str] = set()
    privileged = _map(container.get("securityContext")).get("privileged") is True
    for i, mount in enumerate(_maps(container, "volumeMounts")):
        where = f"{path}[{i}]"
        name, mount_path = _str(mount.get("name")), _str(mount.get("mountPath"))
        errors += [] if name else [_required(f"{where}.name")]
        errors += [] if name in volumes else [_not_found(f"{where}.name", name)]
        errors += [] if mount_path else [_required(f"{where}.mountPath")]
        if mount_path in mount_paths:
            errors.append(_invalid(f"{where}.mountPath", mount_path, "must be unique"))
        mount_paths.add(mount_path)
        # Upstream reports subPath, subPathExpr and propagation on the list's path.
        sub_path, expression = _str(mount.get("subPath")), _str(mount.get("subPathExpr"))
        if sub_path:
            errors += _local_path(sub_path, f"{path}.subPath", reserved=False)
        if expression and sub_path:
            detail = "subPathExpr and subPath are mutually exclusive"
            errors.append(_invalid(f"{where}.subPathExpr", expression, detail))
        if expression:
            errors += _local_path(expression, f"{path}.subPathExpr", reserved=False)
        propagation = mount.get("mountPropagation")
        modes = ["Bidirectional", "HostToContainer", "None"]
        if propagation is not None and propagation not in modes:
            errors.append(_not_supported(f"{path}.mountPropagation", propagation, modes))
        if propagation == "Bidirectional" and not privileged:
            detail = "Bidirectional mount propagation is available only to privileged containers"
            errors.append(_forbidden(f"{path}.mountPropagation", detail))
    return errors


def _enum(value: Any, path: str, supported: list[str]) -> list[str]:
    """A required string field with a fixed set of values."""
    if not value:
        return [_required(path)]
    return [] if value in supported else [_not_supported(path, value, supported)]


# Resource names the quota and container rules consider standard (no "/" in them).
# fmt: off
_STANDARD_RESOURCES = {
    "cpu", "memory", "ephemeral-storage", "storage", "pods", "services", "replicationcontrollers",
    "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "services.nodeports",
    "services.loadbalancers", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "requests.storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
}
# fmt: on


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_extended(name: str) -> bool:
    prefixed = name.startswith("requests.")
    return not _is_native(name) and not prefixed and not _qualified_name("requests." + name)


def _resource_name(name: str, path: str) -> list[str]:
    """validateContainerResourceName."""
    errors = _names(_qualified_name, name, path)
    if errors:
        return errors
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not name.startswith(
            ("hugepages-", "requests.hugepages-")
        ):
            errors.append(
                _invalid(path, name, "must be a standard resource type or fully qualified")
            )
        if name not in ("cpu", "memory", "ephemeral-storage") and not _is_hugepages(name):
            errors.append(_invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and not _is_extended(name):
        errors.append(_invalid(path, name, "doesn't follow extended resource name standard"))
    return errors


def _resource_value(name: str, text: str, value: Decimal, path: str) -> list[str]:
    errors = [_invalid(path, text, _NEGATIVE)] if value < 0 else []
    if _is_extended(name) and (value * 1000).to_integral_value(ROUND_UP) % 1000:
        errors.append(_invalid(path, text, "must be an integer"))
    if _is_hugepages(name):
        try:
            page = quantity.parse(name.removeprefix("hugepages-"))
        except QuantityError:
            page = Decimal(0)
        whole = value.to_integral_value(ROUND_UP)
        if page <= 0 or page != page.to_integral_value() or whole % page:
            errors.append(
                _invalid(path, text, f"{text} is not positive integer multiple of {name}")
            )
    return errors


def _resources(resources: Any, path: str) -> list[str]:
    """validateResourceRequirements of a container."""
    limits = _resource_list(_map(resources).get("limits"))
    requests = _resource_list(_map(resources).get("requests"))
    errors = []
    for kind, listed in (("limits", limits), ("requests", requests)):
        for name, (text, value) in listed.items():
            errors += _resource_name(name, f"{path}.{kind}[{name}]")
            errors += _resource_value(name, text, value, f"{path}.{kind}[{name}]")
    for name, (text, value) in requests.items():
        overcommit = _is_native(name) and not _is_hugepages(name)
        if name not in limits:
            if not overcommit:
                detail = "Limit must be set for non overcommitable resources"
                errors.append(_required(f"{path}.limits", detail))
            continue
        limit_text, limit = limits[name]
        if value != limit and not overcommit:
            detail = f"must be equal to {name} limit of {limit_text}"
            errors.append(_invalid(f"{path}.requests", text, detail))
        elif value > limit:
            detail = f"must be less than or equal to {name} limit of {limit_text}"
            errors.append(_invalid(f"{path}.requests", text, detail))
    named = set(limits) | set(requests)
    if any(_is_hugepages(name) for name in named) and not named & {"cpu", "memory"}:
        errors.append(_forbidden(path, "HugePages require cpu or memory"))
    return errors


def _id_range(value: Any, path: str) -> list[str]:
    number = _int(value)
    if number is None or 0 <= number <= _MAX_ID:
        return []
    return [_invalid(path, number, _range_error(0, _MAX_ID))]


def _seccomp_profile(profile: Any, path: str) -> list[str]:
    if not isinstance(profile, dict):
        return []
    kind = profile.get("type")
    if not kind:
        return [_required(f"{path}.type", "type is required when seccompProfile is set")]
    supported = ["Localhost", "RuntimeDefault", "Unconfined"]
    if kind not in supported:
        return [_not_supported(f"{path}.type", kind, supported)]
    if kind == "Localhost" and profile.get("localhostProfile") is None:
        detail = "must be set when seccomp type is Localhost"
        return [_required(f"{path}.localhostProfile", detail)]
    return []


# The internal core.SecurityContext's fields, in order: how it shows in an error.
_SECURITY_CONTEXT_FIELDS = {
    "Capabilities": "capabilities",
    "Privileged": "privileged",
    "SELinuxOptions": "seLinuxOptions",
    "WindowsOptions": "windowsOptions",
    "RunAsUser": "runAsUser",
    "RunAsGroup": "runAsGroup",
    "RunAsNonRoot": "runAsNonRoot",
    "ReadOnlyRootFilesystem": "readOnlyRootFilesystem",
    "AllowPrivilegeEscalation": "allowPrivilegeEscalation",
    "ProcMount": "procMount",
    "SeccompProfile": "seccompProfile",
    "AppArmorProfile": "appArmorProfile",
}


def _security_context(context: Any, path: str) -> list[str]:
    """ValidateSecurityContext of a container (privileged containers are allowed)."""
    if not isinstance(context, dict):
        return []
    errors = _id_range(context.get("runAsUser"), f"{path}.runAsUser")
    errors += _id_range(context.get("runAsGroup"), f"{path}.runAsGroup")
    proc_mount = context.get("procMount")
    if proc_mount is not None and proc_mount not in ("Default", "Unmasked"):
        errors.append(_not_supported(f"{path}.procMount", proc_mount, ["Default", "Unmasked"]))
    errors += _seccomp_profile(context.get("seccompProfile"), f"{path}.seccompProfile")
    if context.get("allowPrivilegeEscalation") is False:
        shown = {go: context.get(name) for go, name in _SECURITY_CONTEXT_FIELDS.items()}
        detail = "cannot set `allowPrivilegeEscalation` to false and "
        if context.get("privileged") is True:
            errors.append(_invalid(path, shown, detail + "`privileged` to true"))
        if "CAP_SYS_ADMIN" in _seq(_map(context.get("capabilities")).get("add")):
            errors.append(_invalid(path, shown, detail + "`capabilities.Add` CAP_SYS_ADMIN"))
    return errors


def _port_number_or_name(port: Any, path: str) -> list[str]:
    if isinstance(port, str):
        return _names(_port_name, port, path)
    number = _int(port) or 0
    return [_invalid(path, number, msg) for msg in _port_number(number)]


def _action(kind: str, action: Obj, path: str, grace: int | None) -> list[str]:
    """One handler action: exec, httpGet, tcpSocket, grpc or sleep."""
    if kind == "exec":
        return [] if _seq(action.get("command")) else [_required(f"{path}.command")]
    if kind in ("tcpSocket", "grpc"):
        return _port_number_or_name(action.get("port"), f"{path}.port")
    if kind == "sleep":
        seconds = _int(action.get("seconds")) or 0
        if grace is not None and not 0 <= seconds <= grace:
            detail = f"must be non-negative and less than terminationGracePeriodSeconds ({grace})"
            return [_invalid(path, seconds, detail)]
        return []
    errors = [] if _str(action.get("path")) else [_required(f"{path}.path")]
    errors += _port_number_or_name(action.get("port"), f"{path}.port")
    if action.get("scheme") not in ("HTTP", "HTTPS"):
        errors.append(
            _not_supported(f"{path}.scheme", action.get("scheme") or "", ["HTTP", "HTTPS"])
        )
    for header in _maps(action, "httpHeaders"):
        if not _matches(_HTTP_HEADER, _str(header.get("name"))):
            detail = _regex_error(_HTTP_HEADER_MSG, _HTTP_HEADER, "X-Header-Name")
            errors.append(_invalid(f"{path}.httpHeaders", _str(header.get("name")), detail))
    return errors


def _handler(handler: Obj, path: str, grace: int | None, *, lifecycle: bool) -> list[str]:
    """validateHandler: exactly one action (probes can use grpc, lifecycle hooks sleep)."""
    kinds = ("exec", "httpGet", "tcpSocket", "sleep" if lifecycle else "grpc")
    present = [kind for kind in kinds if handler.get(kind) is not None]
    if not present:
        return [_required(path, "must specify a handler type")]
    errors = _action(present[0], _map(handler[present[0]]), f"{path}.{present[0]}", grace)
    return errors + [_forbidden(f"{path}.{kind}", _ONE_HANDLER) for kind in present[1:]]


def _probe(probe: Any, path: str, kind: str, grace: int | None) -> list[str]:
    if not isinstance(probe, dict):
        return []
    errors = _handler(probe, path, grace, lifecycle=False)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds"):
        errors += _nonnegative(probe.get(key), f"{path}.{key}")
    for key in ("successThreshold", "failureThreshold"):
        errors += _nonnegative(probe.get(key), f"{path}.{key}")
    grace_override = probe.get("terminationGracePeriodSeconds")
    if (_int(grace_override) or 1) <= 0:
        where = f"{path}.terminationGracePeriodSeconds"
        errors.append(_invalid(where, grace_override, "must be greater than 0"))
    if kind in ("liveness", "startup") and probe.get("successThreshold") != 1:
        errors.append(
            _invalid(f"{path}.successThreshold", probe.get("successThreshold"), "must be 1")
        )
    if kind == "readiness" and grace_override is not None:
        where = f"{path}.terminationGracePeriodSeconds"
        errors.append(_invalid(where, grace_override, "must not be set for readinessProbes"))
    return errors


def _probes_and_lifecycle(container: Obj, path: str, grace: int | None) -> list[str]:
    errors = []
    for hook in ("postStart", "preStop"):
        if isinstance(_map(container.get("lifecycle")).get(hook), dict):
            where = f"{path}.lifecycle.{hook}"
            errors += _handler(container["lifecycle"][hook], where, grace, lifecycle=True)
    for kind in ("liveness", "readiness", "startup"):
        errors += _probe(container.get(f"{kind}Probe"), f"{path}.{kind}Probe", kind, grace)
    return errors


def _container_common(container: Obj, volumes: dict[str, Obj], path: str) -> list[str]:
    """validateContainerCommon: what regular and init containers share."""
    name = _str(container.get("name"))
    errors = _names(_dns1123_label, name, f"{path}.name") if name else [_required(f"{path}.name")]
    errors += [] if _str(container.get("image")) else [_required(f"{path}.image")]
    policies = ["File", "FallbackToLogsOnError"]
    errors += _enum(
        container.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy", policies
    )
    errors += _container_ports(container.get("ports"), f"{path}.ports")
    errors += _env(container.get("env"), f"{path}.env")
    errors += _env_from(container.get("envFrom"), f"{path}.envFrom")
    errors += _volume_mounts(container, volumes, f"{path}.volumeMounts")
    pull_policies = ["Always", "IfNotPresent", "Never"]
    errors += _enum(container.get("imagePullPolicy"), f"{path}.imagePullPolicy", pull_policies)
    errors += _resources(container.get("resources"), f"{path}.resources")
    return errors + _security_context(container.get("securityContext"), f"{path}.securityContext")


def _host_port_conflicts(containers: list[Obj], path: str, first: int = 0) -> list[str]:
    errors = []
    seen: set[str] = set()
    for i, container in enumerate(containers, start=first):
        for j, port in enumerate(_maps(container, "ports")):
            host_port = _int(port.get("hostPort")) or 0
            key = f"{_str(port.get('protocol'))}/{_str(port.get('hostIP'))}/{host_port}"
            if host_port and key in seen:
                errors.append(_duplicate(f"{path}[{i}].ports[{j}].hostPort", key))
            seen.add(key)
    return errors


def _containers(
    containers: list[Obj], volumes: dict[str, Obj], path: str, grace: int | None
) -> list[str]:
    if not containers:
        return [_required(path)]
    errors = []
    names: set[str] = set()
    for i, container in enumerate(containers):
        where = f"{path}[{i}]"
        errors += _container_common(container, volumes, where)
        name = _str(container.get("name"))
        if name in names:
            errors.append(_duplicate(f"{where}.name", name))
        names.add(name)
        errors += _probes_and_lifecycle(container, where, grace)
        if container.get("restartPolicy") is not None:
            detail = "may not be set for non-init containers"
            errors.append(_forbidden(f"{where}.restartPolicy", detail))
    return errors + _host_port_conflicts(containers, path)


def _init_containers(spec: Obj, volumes: dict[str, Obj], path: str, grace: int | None) -> list[str]:
    errors = []
    names = {_str(container.get("name")) for container in _maps(spec, "containers")}
    for i, container in enumerate(_maps(spec, "initContainers")):
        where = f"{path}[{i}]"
        errors += _container_common(container, volumes, where)
        restart = container.get("restartPolicy")
        if restart is not None and restart != "Always":
            errors.append(_not_supported(f"{where}.restartPolicy", restart, ["Always"]))
        name = _str(container.get("name"))
        if name in names:
            errors.append(_duplicate(f"{where}.name", name))
        elif name:
            names.add(name)
        # Init containers run one at a time: only a container's own ports can collide.
        errors += _host_port_conflicts([container], path, first=i)
        if restart == "Always":  # a sidecar
            errors += _probes_and_lifecycle(container, where, grace)
            continue
        for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if container.get(key) is not None:
                errors.append(_forbidden(f"{where}.{key}", _INIT_ONLY_WITH_ALWAYS))
    return errors


# --- Pod spec: scheduling and the whole spec ---------------------------------------------------


def _toleration(toleration: Obj, path: str) -> list[str]:
    key, value = _str(toleration.get("key")), _str(toleration.get("value"))
    operator, effect = toleration.get("operator") or "", toleration.get("effect") or ""
    errors = _names(_qualified_name, key, f"{path}.key") if key else []
    if not key and operator != "Exists":
        detail = 'operator must be Exists when `key` is empty, which means "match all values and '
        errors.append(_invalid(f"{path}.operator", operator, detail + 'all keys"'))
    if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
        detail = "effect must be 'NoExecute' when `tolerationSeconds` is set"
        errors.append(_invalid(f"{path}.effect", effect, detail))
    if operator in ("Equal", "") and _label_value(value):
        errors.append(_invalid(f"{path}.operator", value, ";".join(_label_value(value))))
    elif operator == "Exists" and value:
        detail = "value must be empty when `operator` is 'Exists'"
        errors.append(_invalid(f"{path}.operator", value, detail))
    elif operator not in ("Equal", "", "Exists"):
        errors.append(_not_supported(f"{path}.operator", operator, ["Equal", "Exists"]))
    effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
    if effect and effect not in effects:
        errors.append(_not_supported(f"{path}.effect", effect, effects))
    return errors


def _spread_constraint(constraint: Obj, later: list[Obj], path: str) -> list[str]:
    skew = _int(constraint.get("maxSkew")) or 0
    errors = [_invalid(f"{path}.maxSkew", skew, _NOT_POSITIVE)] if skew <= 0 else []
    key = _str(constraint.get("topologyKey"))
    errors += [] if key else [_required(f"{path}.topologyKey", "can not be empty")]
    action = constraint.get("whenUnsatisfiable") or ""
    if action not in ("DoNotSchedule", "ScheduleAnyway"):
        supported = ["DoNotSchedule", "ScheduleAnyway"]
        errors.append(_not_supported(f"{path}.whenUnsatisfiable", action, supported))
    if any(
        (_str(c.get("topologyKey")), c.get("whenUnsatisfiable") or "") == (key, action)
        for c in later
    ):
        errors.append(
            _duplicate(f"{path}.{{topologyKey, whenUnsatisfiable}}", f"{{{key}, {action}}}")
        )
    domains = _int(constraint.get("minDomains"))
    if domains is not None and domains <= 0:
        errors.append(_invalid(f"{path}.minDomains", domains, _NOT_POSITIVE))
    if domains is not None and action != "DoNotSchedule":
        detail = f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
        errors.append(_invalid(f"{path}.minDomains", domains, detail))
    for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
        if constraint.get(policy) not in (None, "Honor", "Ignore"):
            errors.append(
                _not_supported(f"{path}.{policy}", constraint[policy], ["Honor", "Ignore"])
            )
    selector = constraint.get("labelSelector")
    keys = [_str(k) for k in _seq(constraint.get("matchLabelKeys"))]
    if keys and not isinstance(selector, dict):
        detail = "must not be specified when labelSelector is not set"
        errors.append(_forbidden(f"{path}.matchLabelKeys", detail))
    taken = set(_map(_map(selector).get("matchLabels")))
    taken |= {_str(expression.get("key")) for expression in _maps(selector, "matchExpressions")}
    for j, label_key in enumerate(keys):
        errors += _names(_qualified_name, label_key, f"{path}.matchLabelKeys[{j}]")
        if label_key in taken:
            detail = "exists in both matchLabelKeys and labelSelector"
            errors.append(_invalid(f"{path}.matchLabelKeys[{j}]", label_key, detail))
    return errors + _label_selector(selector, f"{path}.labelSelector")


def _pod_security_context(spec: Obj, path: str) -> list[str]:
    """validatePodSpecSecurityContext (hostPID and shareProcessNamespace live in the internal
    security context, hence the paths)."""
    context = _map(spec.get("securityContext"))
    errors = []
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        errors += _id_range(context.get(key), f"{path}.{key}")
    for i, group in enumerate(_seq(context.get("supplementalGroups"))):
        errors += _id_range(group, f"{path}.supplementalGroups[{i}]")
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        detail = "ShareProcessNamespace and HostPID cannot both be enabled"
        errors.append(_invalid(f"{path}.shareProcessNamespace", True, detail))
    names: set[str] = set()
    for i, sysctl in enumerate(_maps(context, "sysctls")):
        name, where = _str(sysctl.get("name")), f"{path}.sysctls[{i}].name"
        if not name:
            errors.append(_required(where))
        elif _blen(name) > 253 or not _matches(_SYSCTL, name):
            detail = f"must have at most 253 characters and match regex ^{_SYSCTL}$"
            errors.append(_invalid(where, name, detail))
        elif name in names:
            errors.append(_duplicate(where, name))
        names.add(name)
    policy = context.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        supported = ["Always", "OnRootMismatch"]
        errors.append(_not_supported(f"{path}.fsGroupChangePolicy", policy, supported))
    return errors + _seccomp_profile(context.get("seccompProfile"), f"{path}.seccompProfile")


def _host_network_ports(spec: Obj, path: str, *, is_pod: bool) -> list[str]:
    """With hostNetwork, a host port must equal its container port (templates may leave it 0:
    the Pod's defaulting fills it)."""
    errors = []
    for i, container in enumerate(_maps(spec, "containers") if spec.get("hostNetwork") else []):
        for j, port in enumerate(_maps(container, "ports")):
            host, target = _int(port.get("hostPort")) or 0, _int(port.get("containerPort")) or 0
            if (is_pod or host) and host != target:
                where = f"{path}.containers[{i}].ports[{j}].hostPort"
                errors.append(
                    _invalid(where, host, "must match `containerPort` when `hostNetwork` is true")
                )
    return errors


def _pod_spec(spec: Obj, path: str, *, is_pod: bool) -> list[str]:
    """ValidatePodSpec."""
    grace = _int(spec.get("terminationGracePeriodSeconds"))
    errors = [] if grace is not None else [_required(f"{path}.terminationGracePeriodSeconds")]
    volumes, found = _volumes(spec.get("volumes"), f"{path}.volumes")
    errors += found
    errors += _containers(_maps(spec, "containers"), volumes, f"{path}.containers", grace)
    errors += _init_containers(spec, volumes, f"{path}.initContainers", grace)
    errors += _host_network_ports(spec, path, is_pod=is_pod)
    errors += _enum(
        spec.get("restartPolicy"), f"{path}.restartPolicy", ["Always", "OnFailure", "Never"]
    )
    dns_policies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
    errors += _enum(spec.get("dnsPolicy"), f"{path}.dnsPolicy", dns_policies)
    errors += _labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    errors += _pod_security_context(spec, f"{path}.securityContext")
    if spec.get("dnsPolicy") == "None" and spec.get("dnsConfig") is None:
        detail = "must provide `dnsConfig` when `dnsPolicy` is None"
        errors.append(_required(f"{path}.dnsConfig", detail))
    elif spec.get("dnsPolicy") == "None" and not _seq(_map(spec["dnsConfig"]).get("nameservers")):
        detail = "must provide at least one DNS nameserver when `dnsPolicy` is None"
        errors.append(_required(f"{path}.dnsConfig.nameservers", detail))
    for i, gate in enumerate(_maps(spec, "readinessGates")):
        where = f"{path}.readinessGates[{i}].conditionType"
        errors += _names(_qualified_name, _str(gate.get("conditionType")), where)
    constraints = _maps(spec, "topologySpreadConstraints")
    for i, constraint in enumerate(constraints):
        where = f"{path}.topologySpreadConstraints[{i}]"
        errors += _spread_constraint(constraint, constraints[i + 1 :], where)
    for key in ("serviceAccountName", "nodeName"):
        errors += (
            _names(_dns1123_subdomain, spec[key], f"{path}.{key}") if _str(spec.get(key)) else []
        )
    deadline = _int(spec.get("activeDeadlineSeconds"))
    if deadline is not None and not 1 <= deadline <= _MAX_INT32:
        errors.append(
            _invalid(f"{path}.activeDeadlineSeconds", deadline, _range_error(1, _MAX_INT32))
        )
    for key in ("hostname", "subdomain"):
        errors += _names(_dns1123_label, spec[key], f"{path}.{key}") if _str(spec.get(key)) else []
    for i, toleration in enumerate(_maps(spec, "tolerations")):
        errors += _toleration(toleration, f"{path}.tolerations[{i}]")
    if _str(spec.get("priorityClassName")):
        errors += _names(_dns1123_subdomain, spec["priorityClassName"], f"{path}.priorityClassName")
    preemption = spec.get("preemptionPolicy")
    if preemption is not None:
        errors += _enum(preemption, f"{path}.preemptionPolicy", ["PreemptLowerPriority", "Never"])
    return errors


def _pod_template(template: Obj, path: str) -> list[str]:
    """ValidatePodTemplateSpec."""
    meta = _map(template.get("metadata"))
    errors = _labels(meta.get("labels"), f"{path}.labels")
    errors += _annotations(meta.get("annotations"), f"{path}.annotations")
    errors += _pod_spec(_map(template.get("spec")), f"{path}.spec", is_pod=False)
    if _seq(_map(template.get("spec")).get("ephemeralContainers")):
        detail = "ephemeral containers not allowed in pod template"
        errors.append(_forbidden(f"{path}.spec.ephemeralContainers", detail))
    return errors


# --- apps/v1 Deployment and ReplicaSet -------------------------------------------------------


def _default_deployment(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    _fill_pointer(spec, "replicas", 1)
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        _fill(strategy, "type", "RollingUpdate")
        rolling = (
            strategy.setdefault("rollingUpdate", {})
            if strategy["type"] == "RollingUpdate"
            else None
        )
        if isinstance(rolling, dict):
            _fill_pointer(rolling, "maxUnavailable", "25%")
            _fill_pointer(rolling, "maxSurge", "25%")
    _fill_pointer(spec, "revisionHistoryLimit", 10)
    _fill_pointer(spec, "progressDeadlineSeconds", 600)
    _default_template(spec.get("template"))


def _default_replica_set(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        _fill_pointer(spec, "replicas", 1)
        _default_template(spec.get("template"))


def _int_or_percent(value: Any) -> int:
    """getIntOrPercentValue: a percentage's number, an integer, or Atoi of another string."""
    if isinstance(value, str):
        match = re.fullmatch(r"([0-9]+)%|([-+]?[0-9]+)", value)
        return int(match[1] or match[2]) if match else 0
    return _int(value) or 0


def _positive_int_or_percent(value: Any, path: str) -> list[str]:
    if not isinstance(value, str):
        return _nonnegative(value, path)
    if _matches(_PERCENT, value):
        return []
    return [_invalid(path, value, _regex_error(_PERCENT_MSG, _PERCENT, "1%", "93%"))]


def _at_most_100_percent(value: Any, path: str) -> list[str]:
    if isinstance(value, str) and _matches(_PERCENT, value) and int(value[:-1]) > 100:
        return [_invalid(path, value, "must not be greater than 100%")]
    return []


def _strategy(strategy: Obj, path: str) -> list[str]:
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "Recreate" and rolling is not None:
        detail = "may not be specified when strategy `type` is 'Recreate'"
        return [_forbidden(f"{path}.rollingUpdate", detail)]
    if kind == "Recreate":
        return []
    if kind == "RollingUpdate" and not isinstance(rolling, dict):
        return [_required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
    if kind == "RollingUpdate" and isinstance(rolling, dict):
        where = f"{path}.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errors = _positive_int_or_percent(unavailable, f"{where}.maxUnavailable")
        errors += _positive_int_or_percent(surge, f"{where}.maxSurge")
        if _int_or_percent(unavailable) == 0 and _int_or_percent(surge) == 0:
            detail = "may not be 0 when `maxSurge` is 0"
            errors.append(_invalid(f"{where}.maxUnavailable", unavailable, detail))
        return errors + _at_most_100_percent(unavailable, f"{where}.maxUnavailable")
    # The internal DeploymentStrategy has no JSON tags: its Go field names show.
    if isinstance(rolling, dict):
        rolling = {
            "MaxUnavailable": rolling.get("maxUnavailable", 0),
            "MaxSurge": rolling.get("maxSurge", 0),
        }
    shown = {"Type": kind or "", "RollingUpdate": rolling}
    return [_not_supported(path, shown, ["Recreate", "RollingUpdate"])]


def _replicated_pods(spec: Obj, kind: str) -> list[str]:
    """The selector and template rules Deployments and ReplicaSets share."""
    selector = spec.get("selector")
    selector_errors = _label_selector(selector, "spec.selector")
    errors = [*selector_errors] if isinstance(selector, dict) else [_required("spec.selector")]
    if isinstance(selector, dict) and _selector_is_empty(selector):
        # ReplicaSets say "deployment" too, upstream.
        detail = "empty selector is invalid for deployment"
        errors.append(_invalid("spec.selector", _selector_json(selector), detail))
    if selector_errors:
        # LabelSelectorAsSelector failed: the template is not looked at.
        return [
            *errors,
            _invalid("spec.selector", _selector_json(selector), "invalid label selector"),
        ]
    template = _map(spec.get("template"))
    labels = _map(template.get("metadata")).get("labels")
    everything = isinstance(selector, dict) and _selector_is_empty(selector)
    if not everything and not _selector_matches(selector, _map(labels)):
        shown = dict(sorted(labels.items())) if isinstance(labels, dict) else None
        detail = "`selector` does not match template `labels`"
        errors.append(_invalid("spec.template.metadata.labels", shown, detail))
    errors += _pod_template(template, "spec.template")
    template_spec = _map(template.get("spec"))
    if template_spec.get("restartPolicy") != "Always":
        restart = template_spec.get("restartPolicy") or ""
        errors.append(_not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
    if template_spec.get("activeDeadlineSeconds") is not None:
        detail = f"activeDeadlineSeconds in {kind} is not Supported"
        errors.append(_forbidden("spec.template.spec.activeDeadlineSeconds", detail))
    return errors


def _selector_immutable(spec: Obj, old: Obj | None) -> list[str]:
    """apps/v1 forbids changing a selector (the strategies check it after the spec)."""
    if old is None:
        return []
    selector = spec.get("selector")
    old_selector = _map(old.get("spec")).get("selector")
    return _immutable(selector, old_selector, "spec.selector", _selector_json(selector))


def _validate_deployment(obj: Obj, old: Obj | None) -> list[str]:
    spec = _map(obj.get("spec"))
    errors = _metadata(obj, old, _dns1123_subdomain)
    errors += _nonnegative(spec.get("replicas"), "spec.replicas")
    errors += _replicated_pods(spec, "Deployment")
    errors += _strategy(_map(spec.get("strategy")), "spec.strategy")
    errors += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errors += _nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = _int(spec.get("progressDeadlineSeconds"))
    errors += _nonnegative(deadline, "spec.progressDeadlineSeconds")
    if deadline is not None and deadline <= (_int(spec.get("minReadySeconds")) or 0):
        detail = "must be greater than minReadySeconds"
        errors.append(_invalid("spec.progressDeadlineSeconds", deadline, detail))
    return errors + _selector_immutable(spec, old)


def _validate_replica_set(obj: Obj, old: Obj | None) -> list[str]:
    spec = _map(obj.get("spec"))
    errors = _metadata(obj, old, _dns1123_subdomain)
    errors += _nonnegative(spec.get("replicas"), "spec.replicas")
    errors += _nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errors += _replicated_pods(spec, "ReplicaSet")
    return errors + _selector_immutable(spec, old)


# --- v1 Pod ----------------------------------------------------------------------------------


def _qos_class(spec: Obj) -> str:
    """ComputePodQOS: sums of the positive cpu and memory requests and limits."""
    totals: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
    guaranteed = True
    for container in _maps(spec, "containers") + _maps(spec, "initContainers"):
        for kind, sums in totals.items():
            listed = _resource_list(_map(container.get("resources")).get(kind))
            found = {
                name
                for name, (_, value) in listed.items()
                if name in ("cpu", "memory") and value > 0
            }
            for name in found:
                sums[name] = sums.get(name, Decimal(0)) + listed[name][1]
            guaranteed = guaranteed and (kind == "requests" or found == {"cpu", "memory"})
    if not totals["requests"] and not totals["limits"]:
        return "BestEffort"
    return "Guaranteed" if guaranteed and totals["requests"] == totals["limits"] else "Burstable"


def _default_pod(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    # SetDefaults_Pod (Pods, not templates): requests default to limits...
    for container in _maps(spec, "containers") + _maps(spec, "initContainers"):
        resources = _map(container.get("resources"))
        if isinstance(resources.get("limits"), dict):
            requests = resources.setdefault("requests", {})
            for name, value in resources["limits"].items():
                requests.setdefault(name, value)
    _fill_pointer(spec, "enableServiceLinks", True)
    # ...and under hostNetwork a host port defaults to its container port.
    for container in _maps(spec, "containers") + _maps(spec, "initContainers"):
        for port in _maps(container, "ports") if spec.get("hostNetwork") is True else []:
            _fill(port, "hostPort", port.get("containerPort"))
    _default_pod_spec(spec)
    # PrepareForCreate: a new Pod is Pending, its QoS class computed.
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        _fill(status, "phase", "Pending")
        _fill(status, "qosClass", _qos_class(spec))


_UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _pod_update(spec: Obj, old_spec: Obj) -> list[str]:
    """ValidatePodUpdate's immutability rules."""
    errors = []
    for key in ("containers", "initContainers"):
        if len(_maps(spec, key)) != len(_maps(old_spec, key)):
            return [_forbidden(f"spec.{key}", "pod updates may not add or remove containers")]
        for i, container in enumerate(_maps(spec, key)):
            image = _str(container.get("image"))
            errors += [] if image else [_required(f"spec.{key}[{i}].image")]
    deadline, old_deadline = (
        _int(spec.get("activeDeadlineSeconds")),
        _int(old_spec.get("activeDeadlineSeconds")),
    )
    if deadline is not None and not 0 <= deadline <= _MAX_INT32:
        return [
            *errors,
            _invalid("spec.activeDeadlineSeconds", deadline, _range_error(0, _MAX_INT32)),
        ]
    if deadline is not None and old_deadline is not None and old_deadline < deadline:
        detail = "must be less than or equal to previous value"
        return [*errors, _invalid("spec.activeDeadlineSeconds", deadline, detail)]
    if deadline is None and old_deadline is not None:
        detail = "must not update from a positive integer to nil value"
        errors.append(_invalid("spec.activeDeadlineSeconds", None, detail))

    def without_seconds(toleration: Any) -> Obj:
        return {k: v for k, v in _map(toleration).items() if k != "tolerationSeconds"}

    kept = [without_seconds(t) for t in _seq(spec.get("tolerations"))]
    if any(without_seconds(t) not in kept for t in _seq(old_spec.get("tolerations"))):
        detail = "existing toleration can not be modified except its tolerationSeconds"
        errors.append(_forbidden("spec.tolerations", detail))
    # Compare the rest, with what may change taken from the stored Pod.
    munged = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        for container, stored in zip(_maps(munged, key), _maps(old_spec, key), strict=False):
            container["image"] = stored.get("image")
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    if _semantic(munged) != _semantic(old_spec):
        detail = f"pod updates may not change fields other than {_UPDATABLE_POD_FIELDS}"
        errors.append(_forbidden("spec", detail))
    return errors


def _validate_pod(obj: Obj, old: Obj | None) -> list[str]:
    spec = _map(obj.get("spec"))
    errors = _metadata(obj, old, _dns1123_subdomain)
    errors += _pod_spec(spec, "spec", is_pod=True)
    for key in ("containers", "initContainers"):
        for i, container in enumerate(_maps(spec, key)):
            image = _str(container.get("image"))
            if image != image.strip():
                detail = "must not have leading or trailing whitespace"
                errors.append(_invalid(f"spec.{key}[{i}].image", image, detail))
    if old is not None:
        return errors + _pod_update(spec, _map(old.get("spec")))
    if _seq(spec.get("ephemeralContainers")):
        errors.append(_forbidden("spec.ephemeralContainers", "cannot be set on create"))
    return errors


# --- v1 Service ------------------------------------------------------------------------------


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(_seq(spec.get("externalIPs")))
    )


def _needs_health_check(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _default_service(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    _fill(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    client_ip = _map(_map(spec.get("sessionAffinityConfig")).get("clientIP"))
    if spec["sessionAffinity"] == "ClientIP" and client_ip.get("timeoutSeconds") is None:
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    _fill(spec, "type", "ClusterIP")
    for port in _maps(spec, "ports"):
        _fill(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec):
        _fill(spec, "externalTrafficPolicy", "Cluster")
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        _fill_pointer(spec, "internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        _fill_pointer(spec, "allocateLoadBalancerNodePorts", True)
    # NormalizeClusterIPs on create: a client that sets only clusterIP gets clusterIPs too.
    if _str(spec.get("clusterIP")) and not _seq(spec.get("clusterIPs")):
        spec["clusterIPs"] = [spec["clusterIP"]]
    # What the IP allocator of a single-stack IPv4 cluster fills in.
    if spec["type"] != "ExternalName":
        headless_without_selector = spec.get("clusterIPs") == ["None"] and not spec.get("selector")
        policy = "RequireDualStack" if headless_without_selector else "SingleStack"
        _fill_pointer(spec, "ipFamilyPolicy", policy)
        if not _seq(spec.get("ipFamilies")):
            spec["ipFamilies"] = ["IPv4"]


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _valid_ip(value: str, path: str) -> list[str]:
    if _ip(value) is None:
        return [
            _invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
        ]
    return []


def _service_ports(ports: list[Obj]) -> list[str]:
    errors = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        where, name = f"spec.ports[{i}]", _str(port.get("name"))
        if len(ports) > 1 and not name:
            errors.append(_required(f"{where}.name"))
        elif name:
            errors += _names(_dns1123_label, name, f"{where}.name")
            errors += [_duplicate(f"{where}.name", name)] if name in names else []
            names.add(name)
        number = _int(port.get("port")) or 0
        errors += [_invalid(f"{where}.port", number, msg) for msg in _port_number(number)]
        errors += _protocol(port.get("protocol"), f"{where}.protocol")
        errors += _port_number_or_name(port.get("targetPort"), f"{where}.targetPort")
        if port.get("appProtocol") is not None:
            errors += _names(_qualified_name, _str(port["appProtocol"]), f"{where}.appProtocol")
    # A (protocol, port) pair, and a (protocol, nodePort) pair, may appear once.
    for key in ("nodePort", "port"):
        seen: set[tuple[Any, Any]] = set()
        for i, port in enumerate(ports):
            pair = (port.get("protocol"), port.get(key))
            if key == "nodePort" and not _int(pair[1]):
                continue
            if pair in seen and key == "nodePort":
                errors.append(_duplicate(f"spec.ports[{i}].nodePort", pair[1]))
            elif pair in seen:
                # The internal core.ServicePort: Go field names and zero values show.
                shown = {"Name": "", "Protocol": pair[0] or "", "AppProtocol": None}
                shown |= {"Port": pair[1], "TargetPort": 0, "NodePort": 0}
                errors.append(_duplicate(f"spec.ports[{i}]", shown))
            seen.add(pair)
    return errors


def _service_cluster_ips(spec: Obj) -> list[str]:
    """ValidateServiceClusterIPsRelatedFields."""
    cluster_ip = _str(spec.get("clusterIP"))
    ips = [_str(ip) for ip in _seq(spec.get("clusterIPs"))]
    errors = []
    if cluster_ip and not ips:
        errors.append(_required("spec.clusterIPs"))
    elif cluster_ip and ips[0] != cluster_ip:
        errors.append(_invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    elif not cluster_ip and ips:
        detail = "must be empty when `clusterIP` is not specified"
        errors.append(_invalid("spec.clusterIPs", ips, detail))
    families = [_str(family) for family in _seq(spec.get("ipFamilies"))]
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            errors.append(_not_supported(f"spec.ipFamilies[{i}]", family, ["IPv4", "IPv6"]))
        if family in families[:i]:
            errors.append(_duplicate(f"spec.ipFamilies[{i}]", family))
    policies = ["PreferDualStack", "RequireDualStack", "SingleStack"]
    if spec.get("ipFamilyPolicy") not in (None, *policies):
        errors.append(_not_supported("spec.ipFamilyPolicy", spec["ipFamilyPolicy"], policies))
    bad = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None" and len(ips) > 1:
            bad = True
            detail = "'None' must be the first and only value"
            errors.append(_invalid("spec.clusterIPs", ips, detail))
        elif i > 0 or ip != "None":
            found = _valid_ip(ip, f"spec.clusterIPs[{i}]")
            bad = bad or bool(found)
            errors += found
    if len(ips) > 2:
        errors.append(_invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    if bad:
        return errors  # further checks would only repeat the problem
    versions = [address.version for address in map(_ip, ips) if address is not None]
    if len(ips) > 1 and len(set(versions)) != len(versions):
        detail = "may specify no more than one IP for each IP family"
        errors.append(_invalid("spec.clusterIPs", ips, detail))
    for i, (version, family) in enumerate(zip(versions, families, strict=False)):
        if (family, version) in (("IPv4", 6), ("IPv6", 4)):
            detail = f"expected an {family} value as indicated by `ipFamilies[{i}]`"
            errors.append(_invalid(f"spec.clusterIPs[{i}]", ips[i], detail))
    return errors


def _traffic_policies(spec: Obj) -> list[str]:
    errors = []
    external = spec.get("externalTrafficPolicy") or ""
    if not _externally_accessible(spec) and external:
        detail = "may only be set for externally-accessible services"
        errors.append(_invalid("spec.externalTrafficPolicy", external, detail))
    elif _externally_accessible(spec):
        errors += _enum(external, "spec.externalTrafficPolicy", ["Cluster", "Local"])
    health = _int(spec.get("healthCheckNodePort")) or 0
    if not _needs_health_check(spec) and health:
        detail = (
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        )
        errors.append(_invalid("spec.healthCheckNodePort", health, detail))
    elif _needs_health_check(spec) and not health:
        errors.append(_required("spec.healthCheckNodePort"))
    elif _needs_health_check(spec):
        errors += [_invalid("spec.healthCheckNodePort", health, m) for m in _port_number(health)]
    internal = spec.get("internalTrafficPolicy")
    if internal is None and spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer"):
        errors.append(_required("spec.internalTrafficPolicy"))
    if internal is not None and internal not in ("Cluster", "Local"):
        errors.append(_not_supported("spec.internalTrafficPolicy", internal, ["Cluster", "Local"]))
    distributions = ["PreferClose", "PreferSameNode", "PreferSameZone"]
    if spec.get("trafficDistribution") not in (None, *distributions):
        distribution = spec["trafficDistribution"]
        errors.append(_not_supported("spec.trafficDistribution", distribution, distributions))
    return errors


def _load_balancer_fields(spec: Obj) -> list[str]:
    kind = spec.get("type")
    errors = []
    ranges = _seq(spec.get("loadBalancerSourceRanges"))
    # Upstream spells this path with a capital L.
    if ranges and kind != "LoadBalancer":
        errors.append(_forbidden("spec.LoadBalancerSourceRanges", _ONLY_LOAD_BALANCER))
    for i, cidr in enumerate(ranges):
        try:
            ipaddress.ip_network(_str(cidr).strip(), strict=False)
        except ValueError:
            detail = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
            errors.append(
                _invalid(f"spec.LoadBalancerSourceRanges[{i}]", _str(cidr).strip(), detail)
            )
    allocate = spec.get("allocateLoadBalancerNodePorts")
    if allocate is not None and kind != "LoadBalancer":
        errors.append(_forbidden("spec.allocateLoadBalancerNodePorts", _ONLY_LOAD_BALANCER))
    if allocate is None and kind == "LoadBalancer":
        errors.append(_required("allocateLoadBalancerNodePorts"))  # sic: no "spec."
    if spec.get("loadBalancerClass") is not None and kind != "LoadBalancer":
        errors.append(_forbidden("spec.loadBalancerClass", _ONLY_LOAD_BALANCER))
    elif spec.get("loadBalancerClass") is not None:
        errors += _names(_qualified_name, _str(spec["loadBalancerClass"]), "spec.loadBalancerClass")
    return errors


def _validate_service(obj: Obj, old: Obj | None) -> list[str]:
    spec = _map(obj.get("spec"))
    kind = spec.get("type") or ""
    headless = spec.get("clusterIPs") == ["None"]
    errors = _metadata(obj, old, _dns1035_label)
    errors += _service_update(spec, _map(old.get("spec"))) if old is not None else []
    if not _maps(spec, "ports") and not headless and kind != "ExternalName":
        errors.append(_required("spec.ports"))
    if kind in ("LoadBalancer", "NodePort") and headless:
        detail = f"may not be set to 'None' for {kind} services"
        errors.append(_invalid("spec.clusterIPs[0]", "None", detail))
    if kind == "ExternalName":
        for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key) not in (None, []):
                errors.append(_forbidden(f"spec.{key}", "may not be set for ExternalName services"))
        name = _str(spec.get("externalName")).removesuffix(".")
        errors += (
            _names(_dns1123_subdomain, name, "spec.externalName")
            if name
            else [_required("spec.externalName")]
        )
    errors += _service_ports(_maps(spec, "ports"))
    errors += _labels(spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity")
    errors += _enum(affinity, "spec.sessionAffinity", ["ClientIP", "None"])
    timeout = _int(
        _map(_map(spec.get("sessionAffinityConfig")).get("clientIP")).get("timeoutSeconds")
    )
    if affinity == "ClientIP" and timeout is not None and not 0 < timeout <= 86400:
        detail = "must be greater than 0 and less than 86400"
        errors.append(
            _invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout, detail)
        )
    if affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        detail = "must not be set when session affinity is None"
        errors.append(_forbidden("spec.sessionAffinityConfig", detail))
    errors += _service_cluster_ips(spec) if kind != "ExternalName" else []
    for i, ip in enumerate(_seq(spec.get("externalIPs"))):
        errors += _valid_ip(_str(ip), f"spec.externalIPs[{i}]")
    errors += _enum(kind, "spec.type", ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
    for i, port in enumerate(_maps(spec, "ports") if kind == "ClusterIP" else []):
        if _int(port.get("nodePort")):
            detail = "may not be used when `type` is 'ClusterIP'"
            errors.append(_forbidden(f"spec.ports[{i}].nodePort", detail))
    return errors + _load_balancer_fields(spec) + _traffic_policies(spec)


def _service_update(spec: Obj, old_spec: Obj) -> list[str]:
    """The update-only rules of ValidateServiceUpdate."""
    errors: list[str] = []
    if "ExternalName" not in (spec.get("type"), old_spec.get("type")):
        errors += _cluster_ips_update(spec, old_spec)
        errors += _ip_families_update(spec, old_spec)
    both_load_balancers = spec.get("type") == "LoadBalancer" == old_spec.get("type")
    if both_load_balancers and spec.get("loadBalancerClass") != old_spec.get("loadBalancerClass"):
        class_ = spec.get("loadBalancerClass")
        errors.append(_invalid("spec.loadBalancerClass", class_, "may not change once set"))
    both_health_checked = _needs_health_check(spec) and _needs_health_check(old_spec)
    if both_health_checked and spec.get("healthCheckNodePort") != old_spec.get(
        "healthCheckNodePort"
    ):
        errors.append(_forbidden("spec.healthCheckNodePort", _IMMUTABLE))
    return errors


def _cluster_ips_update(spec: Obj, old_spec: Obj) -> list[str]:
    """validateUpgradeDowngradeClusterIPs."""
    new, old = _seq(spec.get("clusterIPs")), _seq(old_spec.get("clusterIPs"))
    if new == old == ["None"]:
        return []
    errors = []
    if len(new) == len(old):
        for i, ip in enumerate(old):
            if new[i] != ip:
                errors.append(_invalid(f"spec.clusterIPs[{i}]", new, "may not change once set"))
    elif len(old) > len(new):
        if not new:
            errors.append(_invalid("spec.clusterIPs[0]", new, "primary clusterIP can not be unset"))
        elif new[0] != old[0]:
            errors.append(_invalid("spec.clusterIPs[0]", new, "may not change once set"))
        if len(new) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            detail = "must be set to 'SingleStack' when releasing the secondary clusterIP"
            errors.append(_invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"), detail))
    elif old and new[0] != old[0]:
        errors.append(_invalid("spec.clusterIPs[0]", new, "may not change once set"))
    return errors


def _ip_families_update(spec: Obj, old_spec: Obj) -> list[str]:
    """validateUpgradeDowngradeIPFamilies (headless services may change families)."""
    if ["None"] in (spec.get("clusterIPs"), old_spec.get("clusterIPs")):
        return []
    new, old = _seq(spec.get("ipFamilies")), _seq(old_spec.get("ipFamilies"))
    ips = _seq(spec.get("clusterIPs"))
    errors = []
    if len(new) == len(old) and new != old:
        errors.append(_invalid("spec.ipFamilies[0]", new, "may not change once set"))
    elif len(old) > len(new):
        if not ips:
            errors.append(_invalid("spec.ipFamilies[0]", new, "primary ipFamily can not be unset"))
        if new and new[0] != old[0]:
            errors.append(_invalid("spec.ipFamilies[0]", ips, "may not change once set"))
        if len(new) == 1 and spec.get("ipFamilyPolicy") != "SingleStack":
            detail = "must be set to 'SingleStack' when releasing the secondary ipFamily"
            errors.append(_invalid("spec.ipFamilyPolicy", spec.get("ipFamilyPolicy"), detail))
    elif new and old and new[0] != old[0]:
        errors.append(_invalid("spec.ipFamilies[0]", ips, "may not change once set"))
    return errors


# --- autoscaling/v2 HorizontalPodAutoscaler ----------------------------------------------------

_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
# No stabilization window: unless the object sets one, the controller's
# --horizontal-pod-autoscaler-downscale-stabilization (300s) applies.
_SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}
_METRIC_SOURCES = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}


def _default_hpa(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    _fill_pointer(spec, "minReplicas", 1)
    if not _seq(spec.get("metrics")):
        target = {"type": "Utilization", "averageUtilization": 80}
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
    if isinstance(spec.get("behavior"), dict):
        behavior = spec["behavior"]
        for key, defaults in (("scaleUp", _SCALE_UP), ("scaleDown", _SCALE_DOWN)):
            given = {k: v for k, v in _map(behavior.get(key)).items() if v is not None}
            behavior[key] = copy.deepcopy(defaults) | given
    for metric in _maps(spec, "metrics"):
        for source in _METRIC_SOURCES.values():
            target = _map(_map(metric.get(source)).get("target"))
            _canonical_quantity(target, "value")
            _canonical_quantity(target, "averageValue")


def _cross_version_reference(reference: Any, path: str) -> list[str]:
    errors = []
    for key in ("kind", "name"):
        value = _str(_map(reference).get(key))
        errors += (
            _names(_path_segment, value, f"{path}.{key}") if value else [_required(f"{path}.{key}")]
        )
    return errors


def _metric_identifier(identifier: Any, path: str) -> list[str]:
    name = _str(_map(identifier).get("name"))
    if not name:
        return [_required(f"{path}.name", "must specify a metric name")]
    return _names(_path_segment, name, f"{path}.name")


def _metric_target(target: Obj, path: str) -> list[str]:
    kind = target.get("type") or ""
    errors = [] if kind else [_required(f"{path}.type", "must specify a metric target type")]
    if kind not in ("Utilization", "Value", "AverageValue"):
        detail = "must be either Utilization, Value, or AverageValue"
        errors.append(_invalid(f"{path}.type", kind, detail))
    for key in ("value", "averageValue"):
        if target.get(key) is not None and _quantity(target[key])[1] <= 0:
            errors.append(_invalid(f"{path}.{key}", _quantity(target[key])[0], "must be positive"))
    utilization = _int(target.get("averageUtilization"))
    if utilization is not None and utilization < 1:
        errors.append(_invalid(f"{path}.averageUtilization", utilization, "must be greater than 0"))
    return errors


def _metric_source(kind: str, source: Obj, path: str) -> list[str]:
    target = _map(source.get("target"))
    errors = []
    if kind == "object":
        errors += _cross_version_reference(source.get("describedObject"), f"{path}.describedObject")
    if kind in ("object", "pods", "external"):
        errors += _metric_identifier(source.get("metric"), f"{path}.metric")
    if kind in ("resource", "containerResource") and not _str(source.get("name")):
        errors.append(_required(f"{path}.name", "must specify a resource name"))
    container = _str(source.get("container"))
    if kind == "containerResource" and not container:
        errors.append(_required(f"{path}.container", "must specify a container"))
    elif kind == "containerResource":
        errors += _names(_dns1123_label, container, f"{path}.container")
    errors += _metric_target(target, f"{path}.target")
    value, average = target.get("value") is not None, target.get("averageValue") is not None
    utilization = target.get("averageUtilization") is not None
    where = f"{path}.target"
    if kind == "object" and not value and not average:
        detail = "must set either a target value or averageValue"
        errors.append(_required(f"{where}.averageValue", detail))
    if kind == "external" and not value and not average:
        detail = "must set either a target value for metric or a per-pod target"
        errors.append(_required(f"{where}.averageValue", detail))
    if kind == "external" and value and average:
        detail = "may not set both a target value for metric and a per-pod target"
        errors.append(_forbidden(f"{where}.value", detail))
    if kind == "pods" and not average:
        detail = "must specify a positive target averageValue"
        errors.append(_required(f"{where}.averageValue", detail))
    if kind in ("resource", "containerResource") and not utilization and not average:
        detail = "must set either a target raw value or a target utilization"
        errors.append(_required(f"{where}.averageUtilization", detail))
    if kind in ("resource", "containerResource") and utilization and average:
        detail = "may not set both a target raw value and a target utilization"
        errors.append(_forbidden(f"{where}.averageValue", detail))
    return errors


def _metric(metric: Obj, path: str) -> list[str]:
    """validateMetricSpec: a known type and exactly its member."""
    kind = metric.get("type") or ""
    errors = [] if kind else [_required(f"{path}.type", "must specify a metric source type")]
    if kind not in _METRIC_SOURCES:
        errors.append(_not_supported(f"{path}.type", kind, sorted(_METRIC_SOURCES)))
    members = ("object", "external", "pods", "resource", "containerResource")
    present = [member for member in members if metric.get(member) is not None]
    if present:  # only the first member given is looked into
        errors += _metric_source(present[0], _map(metric[present[0]]), f"{path}.{present[0]}")
    expected = _METRIC_SOURCES.get(kind, "")
    if expected and metric.get(expected) is None:
        detail = "must populate information for the given metric source"
        errors.append(_required(f"{path}.{expected}", detail))
    for member in present if len(present) != 1 else []:
        if member != expected:
            errors.append(
                _forbidden(f"{path}.{member}", "must populate the given metric source only")
            )
    return errors


def _scaling_rules(rules: Any, path: str) -> list[str]:
    if not isinstance(rules, dict):
        return []
    window = _int(rules.get("stabilizationWindowSeconds"))
    errors = []
    if window is not None and window < 0:
        detail = "must be greater than or equal to zero"
        errors.append(_invalid(f"{path}.stabilizationWindowSeconds", window, detail))
    if window is not None and window > 3600:
        detail = "must be less than or equal to 3600"
        errors.append(_invalid(f"{path}.stabilizationWindowSeconds", window, detail))
    if rules.get("selectPolicy") not in (None, "Disabled", "Max", "Min"):
        supported = ["Disabled", "Max", "Min"]
        errors.append(_not_supported(f"{path}.selectPolicy", rules["selectPolicy"], supported))
    policies = _maps(rules, "policies")
    if not policies:
        errors.append(_required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        where = f"{path}.policies[{i}]"
        if policy.get("type") not in ("Pods", "Percent"):
            errors.append(
                _not_supported(f"{where}.type", policy.get("type") or "", ["Percent", "Pods"])
            )
        value, period = _int(policy.get("value")) or 0, _int(policy.get("periodSeconds")) or 0
        errors += [_invalid(f"{where}.value", value, _NOT_POSITIVE)] if value <= 0 else []
        errors += [_invalid(f"{where}.periodSeconds", period, _NOT_POSITIVE)] if period <= 0 else []
        if period > 1800:
            errors.append(
                _invalid(f"{where}.periodSeconds", period, "must be less than or equal to 1800")
            )
    return errors


def _validate_hpa(obj: Obj, old: Obj | None) -> list[str]:
    spec = _map(obj.get("spec"))
    errors = _metadata(obj, old, _dns1123_subdomain)
    minimum, maximum = _int(spec.get("minReplicas")), _int(spec.get("maxReplicas")) or 0
    # HPAScaleToZero is alpha: 0 is only tolerated on objects that already have it.
    lower = 0 if old is not None and _map(old.get("spec")).get("minReplicas") == 0 else 1
    if minimum is not None and minimum < lower:
        detail = f"must be greater than or equal to {lower}"
        errors.append(_invalid("spec.minReplicas", minimum, detail))
    if maximum < 1:
        errors.append(_invalid("spec.maxReplicas", maximum, "must be greater than 0"))
    if minimum is not None and maximum < minimum:
        detail = "must be greater than or equal to `minReplicas`"
        errors.append(_invalid("spec.maxReplicas", maximum, detail))
    errors += _cross_version_reference(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    metrics = _maps(spec, "metrics")
    for i, metric in enumerate(metrics):
        errors += _metric(metric, f"spec.metrics[{i}]")
    if minimum == 0 and not any(m.get("type") in ("Object", "External") for m in metrics):
        detail = "must specify at least one Object or External metric to support scaling to zero replicas"
        errors.append(_forbidden("spec.metrics", detail))
    behavior = _map(spec.get("behavior"))
    errors += _scaling_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
    return errors + _scaling_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")


# --- policy/v1 PodDisruptionBudget -------------------------------------------------------------


def _validate_pdb(obj: Obj, old: Obj | None) -> list[str]:
    spec = _map(obj.get("spec"))
    errors = []
    minimum, maximum = spec.get("minAvailable"), spec.get("maxUnavailable")
    if minimum is not None and maximum is not None:
        # The internal PodDisruptionBudgetSpec has no JSON tags: its Go field names show.
        shown = {"MinAvailable": minimum, "Selector": _selector_json(spec.get("selector"))}
        shown |= {"MaxUnavailable": maximum}
        shown |= {"UnhealthyPodEvictionPolicy": spec.get("unhealthyPodEvictionPolicy")}
        errors.append(_invalid("spec", shown, "minAvailable and maxUnavailable cannot be both set"))
    for key, value in (("minAvailable", minimum), ("maxUnavailable", maximum)):
        if value is not None:
            errors += _positive_int_or_percent(value, f"spec.{key}")
            errors += _at_most_100_percent(value, f"spec.{key}")
    errors += _label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        supported = ["AlwaysAllow", "IfHealthyBudget"]
        errors.append(_not_supported("spec.unhealthyPodEvictionPolicy", policy, supported))
    if errors:
        return errors
    # The strategy leaves metadata to the generic checks, which only run once the spec passed
    # and hold names to path-segment rules.
    return _metadata(obj, old, _path_segment, kube_finalizers=False)


# --- v1 Secret, ConfigMap, Namespace, ServiceAccount ---------------------------------------------

_BASE64 = {
    char: i
    for i, char in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}
_NEWLINES = b"\r\n"


def _base64(value: Any) -> bytes:
    """A []byte field's JSON: base64.StdEncoding.Decode (padded, CR and LF skipped), with its
    CorruptInputError offsets."""
    if not isinstance(value, str):
        raise DecodeError("illegal base64 data at input byte 0")
    source = value.encode("utf-8")
    out = bytearray()
    at = 0

    def corrupt(offset: int) -> DecodeError:
        return DecodeError(f"illegal base64 data at input byte {offset}")

    def skip_newlines(position: int) -> int:
        while position < len(source) and source[position] in _NEWLINES:
            position += 1
        return position

    while True:  # decodeQuantum
        quantum: list[int] = []
        while len(quantum) < 4:
            if at == len(source):
                if quantum:
                    raise corrupt(at - len(quantum))
                return bytes(out)
            char, at = source[at], at + 1
            if char in _BASE64:
                quantum.append(_BASE64[char])
                continue
            if char in _NEWLINES:
                continue
            if char != ord("=") or len(quantum) < 2:
                raise corrupt(at - 1)
            if len(quantum) == 2:  # "==": the second "=" must follow
                at = skip_newlines(at)
                if at == len(source):
                    raise corrupt(len(source))
                if source[at] != ord("="):
                    raise corrupt(at - 1)
                at += 1
            if skip_newlines(at) < len(source):
                raise corrupt(skip_newlines(at))
            break
        bits = 0
        for digit in quantum + [0] * (4 - len(quantum)):
            bits = bits << 6 | digit
        out += bits.to_bytes(3, "big")[: len(quantum) - 1]
        if len(quantum) < 4:
            return bytes(out)


def _default_secret(obj: Obj) -> None:
    _fill(obj, "type", "Opaque")
    for value in _map(obj.get("data")).values():
        _base64(value)


def _immutable_contents(obj: Obj, old: Obj, keys: tuple[str, ...]) -> list[str]:
    if old.get("immutable") is not True:
        return []
    detail = "field is immutable when `immutable` is set"
    errors = [] if obj.get("immutable") is True else [_forbidden("immutable", detail)]
    return errors + [
        _forbidden(key, detail) for key in keys if _map(obj.get(key)) != _map(old.get(key))
    ]


_SECRET_KEYS = {
    "kubernetes.io/dockercfg": [".dockercfg"],
    "kubernetes.io/dockerconfigjson": [".dockerconfigjson"],
    "kubernetes.io/tls": ["tls.crt", "tls.key"],
}


def _validate_secret(obj: Obj, old: Obj | None) -> list[str]:
    errors = []
    if old is not None:
        errors += _immutable(obj.get("type") or "", old.get("type") or "", "type")
        errors += _immutable_contents(obj, old, ("data",))
    errors += _metadata(obj, old, _dns1123_subdomain)
    data = _map(obj.get("data"))
    for key in data:
        errors += _names(_config_key, key, f"data[{key}]")
    if sum(len(_base64(value)) for value in data.values()) > _MAX_SECRET_SIZE:
        errors.append(_too_long("data", _MAX_SECRET_SIZE))
    kind = obj.get("type") or ""
    annotations = _map(_map(obj.get("metadata")).get("annotations"))
    account = "kubernetes.io/service-account.name"
    if kind == "kubernetes.io/service-account-token" and not _str(annotations.get(account)):
        errors.append(_required(f"metadata.annotations[{account}]"))
    errors += [_required(f"data[{key}]") for key in _SECRET_KEYS.get(kind, []) if key not in data]
    if kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        errors += [_required("data[username]"), _required("data[password]")]
    if kind == "kubernetes.io/ssh-auth" and not _base64(data.get("ssh-privatekey", "")):
        errors.append(_required("data[ssh-privatekey]"))
    return errors


def _default_config_map(obj: Obj) -> None:
    for value in _map(obj.get("binaryData")).values():
        _base64(value)


def _validate_config_map(obj: Obj, old: Obj | None) -> list[str]:
    errors = _immutable_contents(obj, old, ("data", "binaryData")) if old is not None else []
    errors += _metadata(obj, old, _dns1123_subdomain)
    data, binary = _map(obj.get("data")), _map(obj.get("binaryData"))
    for key in data:
        errors += _names(_config_key, key, f"data[{key}]")
        if key in binary:
            errors.append(_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    for key in binary:
        errors += _names(_config_key, key, f"binaryData[{key}]")
    size = sum(_blen(_str(value)) for value in data.values())
    if size + sum(len(_base64(value)) for value in binary.values()) > _MAX_SECRET_SIZE:
        errors.append(_too_long("", _MAX_SECRET_SIZE))  # sic: the whole object's path
    return errors


def _default_namespace(obj: Obj) -> None:
    meta = obj.setdefault("metadata", {})
    if isinstance(meta, dict) and _str(meta.get("name")):
        if not isinstance(meta.get("labels"), dict):
            meta["labels"] = {}
        meta["labels"]["kubernetes.io/metadata.name"] = meta["name"]
    # PrepareForCreate: the kubernetes finalizer is always there, the phase Active.
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict) and not isinstance(spec.get("finalizers"), list):
        spec["finalizers"] = ["kubernetes"]
    elif isinstance(spec, dict) and "kubernetes" not in spec["finalizers"]:
        spec["finalizers"].append("kubernetes")
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        _fill(status, "phase", "Active")


def _validate_namespace(obj: Obj, old: Obj | None) -> list[str]:
    errors = _metadata(obj, old, _dns1123_label, namespaced=False)
    for name in _seq(_map(obj.get("spec")).get("finalizers")):
        errors += _names(_qualified_name, _str(name), "spec.finalizers")
        errors += _kube_finalizer(_str(name), "spec.finalizers")
    return errors


def _validate_service_account(obj: Obj, old: Obj | None) -> list[str]:
    return _metadata(obj, old, _dns1123_subdomain)


# --- The table, and the public API -------------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    default: Callable[[Obj], None]
    validate: Callable[[Obj, Obj | None], list[str]]


def _no_defaults(obj: Obj) -> None:
    """Kinds the API server does not default."""


_KINDS: dict[tuple[str, str], _Kind] = {
    ("apps/v1", "Deployment"): _Kind(_default_deployment, _validate_deployment),
    ("apps/v1", "ReplicaSet"): _Kind(_default_replica_set, _validate_replica_set),
    ("v1", "Pod"): _Kind(_default_pod, _validate_pod),
    ("v1", "Service"): _Kind(_default_service, _validate_service),
    ("v1", "Secret"): _Kind(_default_secret, _validate_secret),
    ("v1", "ConfigMap"): _Kind(_default_config_map, _validate_config_map),
    ("v1", "Namespace"): _Kind(_default_namespace, _validate_namespace),
    ("v1", "ServiceAccount"): _Kind(_no_defaults, _validate_service_account),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): _Kind(_default_hpa, _validate_hpa),
    ("policy/v1", "PodDisruptionBudget"): _Kind(_no_defaults, _validate_pdb),
}


def _kind(obj: Obj) -> _Kind | None:
    return _KINDS.get((_str(obj.get("apiVersion")), _str(obj.get("kind"))))


def default(obj: Obj) -> None:
    """Fill defaults in place, by (apiVersion, kind); unknown kinds are left alone. Quantities
    come out canonical. Raises :class:`DecodeError` for what would not decode."""
    kind = _kind(obj)
    if kind is not None:
        kind.default(obj)


def validate(obj: Obj, old: Obj | None = None) -> list[str]:
    """Field errors of a create (``old`` is None) or of an update (``old`` is the stored
    object), for an object :func:`default` was applied to; [] for unknown kinds. Raises
    :class:`DecodeError` for what would not decode."""
    kind = _kind(obj)
    # ToAggregate drops repeated messages.
    return list(dict.fromkeys(kind.validate(obj, old))) if kind else []


def prepare_update(obj: Obj, old: Obj) -> None:
    """What the registry does to an update before validating it, from the stored object: a
    Service keeps its allocated clusterIP(s), nodePorts (matched by port name) and
    healthCheckNodePort when the update leaves them out (patchAllocatedValues, then
    NormalizeClusterIPs); a Namespace keeps its spec.finalizers (they change via /finalize)."""
    identity = (obj.get("apiVersion"), obj.get("kind"))
    spec, old_spec = obj.get("spec"), _map(old.get("spec"))
    if identity != (old.get("apiVersion"), old.get("kind")) or not isinstance(spec, dict):
        return
    if identity == ("v1", "Namespace") and "finalizers" in old_spec:
        spec["finalizers"] = copy.deepcopy(old_spec["finalizers"])
    if identity == ("v1", "Service"):
        _patch_allocated_values(spec, old_spec)
        _normalize_cluster_ips(spec, old_spec)


def _patch_allocated_values(spec: Obj, old_spec: Obj) -> None:
    if "ExternalName" not in (spec.get("type"), old_spec.get("type")):
        if not _str(spec.get("clusterIP")) and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not _seq(spec.get("clusterIPs")) and _seq(old_spec.get("clusterIPs")):
            spec["clusterIPs"] = copy.deepcopy(old_spec["clusterIPs"])
    if {spec.get("type"), old_spec.get("type")} <= {"NodePort", "LoadBalancer"}:
        # A node port another port of the update already uses is not patched in twice.
        used = {_int(port.get("nodePort")) for port in _maps(old_spec, "ports")}
        used &= {_int(port.get("nodePort")) for port in _maps(spec, "ports")}
        by_name = {
            _str(port.get("name")): _int(port.get("nodePort")) for port in _maps(old_spec, "ports")
        }
        for port in _maps(spec, "ports"):
            previous = by_name.get(_str(port.get("name")))
            if not _int(port.get("nodePort")) and previous and previous not in used:
                port["nodePort"] = previous
    both_health_checked = _needs_health_check(spec) and _needs_health_check(old_spec)
    if both_health_checked and not _int(spec.get("healthCheckNodePort")):
        spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort")


def _normalize_cluster_ips(spec: Obj, old_spec: Obj) -> None:
    new_ip, old_ip = _str(spec.get("clusterIP")), _str(old_spec.get("clusterIP"))
    if new_ip == old_ip or _seq(spec.get("clusterIPs")) != _seq(old_spec.get("clusterIPs")):
        return
    # Only the singular field changed: the client meant both.
    if old_ip and not new_ip:
        spec.pop("clusterIPs", None)
    else:
        spec["clusterIPs"] = [new_ip]


def custom_resource_problems(obj: Obj, old: Obj | None = None) -> list[str]:
    """The metadata checks every object gets, for a custom resource: its name is a DNS-1123
    subdomain; labels, annotations, owner references and finalizers are valid."""
    return _metadata(obj, old, _dns1123_subdomain, kube_finalizers=False)
