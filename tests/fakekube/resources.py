"""The resource types the fake serves, and what the real API server does to an object of each type before
storing it: schema validation (the official OpenAPI schema, through kubernetes-validate's files), name and
label rules, defaulting, and the fields that may be selected on.

A new type (batch/v1 Jobs, for the Jobs backend) is one more ``ResourceType`` in ``RESOURCES``.
"""
from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass

import jsonschema
import kubernetes_validate.utils as kv
import referencing

from .errors import ApiError, bad_request, invalid

BASE_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class ResourceType:
    plural: str
    kind: str
    group: str = ""
    version: str = "v1"
    fields: frozenset[str] = BASE_FIELDS
    #: DELETE answers with the deleted object (the real registry's ReturnDeletedObject), else a Status.
    return_deleted: bool = False
    #: Names are DNS-1035 labels (Services) rather than DNS-1123 subdomains.
    dns_label_name: bool = False
    #: Has a ``status`` subresource: the main resource's writes keep the stored status, and the other way.
    has_status: bool = False
    short: str = ""
    #: Lives in a namespace (Nodes do not: they are listed at /api/v1/nodes).
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)


RESOURCES: dict[tuple[str, str], ResourceType] = {r.key: r for r in (
    ResourceType("pods", "Pod", return_deleted=True, has_status=True, short="po",
                 fields=BASE_FIELDS | {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                       "spec.serviceAccountName", "status.phase", "status.podIP",
                                       "status.nominatedNodeName"}),
    ResourceType("services", "Service", return_deleted=True, has_status=True, dns_label_name=True, short="svc"),
    ResourceType("secrets", "Secret", fields=BASE_FIELDS | {"type"}),
    ResourceType("configmaps", "ConfigMap", short="cm"),
    ResourceType("persistentvolumeclaims", "PersistentVolumeClaim", return_deleted=True, has_status=True,
                 short="pvc"),
    ResourceType("events", "Event", short="ev", fields=BASE_FIELDS | {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type"}),
    ResourceType("networkpolicies", "NetworkPolicy", group="networking.k8s.io", short="netpol"),
    ResourceType("jobs", "Job", group="batch", has_status=True, fields=BASE_FIELDS | {"status.successful"}),
    ResourceType("nodes", "Node", has_status=True, short="no", namespaced=False,
                 fields=frozenset({"metadata.name", "spec.unschedulable"})),
)}

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
NAME_LABEL_LIMIT = 63


# -- the official schema -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _definitions(folder: str, version: str) -> dict:
    return kv.schema_contents(f"{folder}/_definitions.json", version)


@functools.lru_cache(maxsize=64)
def _validator(version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """kubernetes-validate's strict schema for one kind, loaded once (its own ``validate`` reads the
    definitions file on every call)."""
    chosen = [v for v in kv.all_versions() if kv.major_minor(v) <= kv.major_minor(version)][-1]
    folder = f"kubernetes-json-schema/v{chosen}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv.schema_contents(f"{folder}/{kind.lower()}-{group}.json", version)
    definitions = _definitions(folder, version)
    registry = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _path(error: jsonschema.ValidationError) -> str:
    field = ""
    for part in error.absolute_path:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field or "<root>"


def schema_causes(obj: dict, version: str) -> list[dict]:
    causes = []
    for error in sorted(_validator(version, obj["kind"], obj["apiVersion"]).iter_errors(obj), key=_path):
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            field = _path(error) + (f".{missing[0]}" if missing else "")
            causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": field.lstrip(".")})
        elif error.validator == "additionalProperties":
            causes.append({"reason": "FieldValueInvalid", "message": f"Unknown field: {error.message}",
                           "field": _path(error)})
        else:
            causes.append({"reason": "FieldValueInvalid", "message": f"Invalid value: {error.message}",
                           "field": _path(error)})
    return causes


# -- name and label rules the schema cannot say ----------------------------------------------------------

def _name_causes(rtype: ResourceType, name: str) -> list[dict]:
    if rtype.dns_label_name:
        ok = len(name) <= 63 and _DNS1035_LABEL.match(name)
        rule = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character (regex used for validation is "
                "'[a-z]([-a-z0-9]*[a-z0-9])?')")
    else:
        ok = len(name) <= 253 and _SUBDOMAIN.match(name)
        rule = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character")
    if ok:
        return []
    return [{"reason": "FieldValueInvalid", "message": f'Invalid value: "{name}": {rule}', "field": "metadata.name"}]


def _label_causes(labels: dict, field: str) -> list[dict]:
    causes = []
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix))) or not name or len(name) > 63 \
                or not _LABEL_VALUE.match(name):
            causes.append({"reason": "FieldValueInvalid", "field": field,
                           "message": f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                                      "'-', '_' or '.', and must start and end with an alphanumeric character"})
        if field.endswith("labels") and (not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value)):
            causes.append({"reason": "FieldValueInvalid", "field": f"{field}",
                           "message": f'Invalid value: "{value}": a valid label must be an empty string or consist '
                                      "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                                      "alphanumeric character, at most 63 characters"})
    return causes


_RESTART = ("Always", "OnFailure", "Never")
_DNS = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
_PULL = ("Always", "IfNotPresent", "Never")


def _unsupported(field: str, value, allowed: tuple[str, ...]) -> dict:
    return {"reason": "FieldValueNotSupported", "field": field,
            "message": f'Unsupported value: "{value}": supported values: ' + ", ".join(f'"{a}"' for a in allowed)}


def _pod_causes(pod: dict) -> list[dict]:
    causes = []
    spec = pod.get("spec") or {}
    names = set()
    for i, container in enumerate([*spec.get("initContainers", []), *spec.get("containers", [])]):
        name = container.get("name", "")
        if not _DNS1123_LABEL.match(name) or len(name) > 63:
            causes.append({"reason": "FieldValueInvalid", "field": f"spec.containers[{i}].name",
                           "message": f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower '
                                      "case alphanumeric characters or '-'"})
        if name in names:
            causes.append({"reason": "FieldValueDuplicate", "field": f"spec.containers[{i}].name",
                           "message": f'Duplicate value: "{name}"'})
        names.add(name)
    for field, value, allowed in (("spec.restartPolicy", spec.get("restartPolicy"), _RESTART),
                                  ("spec.dnsPolicy", spec.get("dnsPolicy"), _DNS)):
        if value is not None and value not in allowed:
            causes.append(_unsupported(field, value, allowed))
    for i, container in enumerate(spec.get("containers", [])):
        policy = container.get("imagePullPolicy")
        if policy is not None and policy not in _PULL:
            causes.append(_unsupported(f"spec.containers[{i}].imagePullPolicy", policy, _PULL))
        if not container.get("image"):
            causes.append({"reason": "FieldValueRequired", "field": f"spec.containers[{i}].image", "message": "Required value"})
    volumes = {v.get("name") for v in spec.get("volumes", [])}
    for i, container in enumerate(spec.get("containers", [])):
        for j, mount in enumerate(container.get("volumeMounts", [])):
            if mount.get("name") not in volumes:
                causes.append({"reason": "FieldValueNotFound", "field": f"spec.containers[{i}].volumeMounts[{j}].name",
                               "message": f'Not found: "{mount.get("name")}"'})
    return causes


def _data_causes(obj: dict) -> list[dict]:
    causes = []
    for field in ("data", "binaryData", "stringData"):
        for key in (obj.get(field) or {}):
            if not _CONFIG_KEY.match(key) or len(key) > 253:
                causes.append({"reason": "FieldValueInvalid", "field": f"{field}[{key}]",
                               "message": f'Invalid value: "{key}": a valid config key must consist of alphanumeric '
                                          "characters, '-', '_' or '.'"})
    return causes


def _job_causes(job: dict) -> list[dict]:
    """A Job's name becomes a label value of its Pods (63 at most); its Pods may not restart in place."""
    causes = []
    name = (job.get("metadata") or {}).get("name") or ""
    if len(name) > NAME_LABEL_LIMIT:
        causes.append({"reason": "FieldValueInvalid", "field": "metadata.name",
                       "message": f'Invalid value: "{name}": must be no more than 63 characters'})
    template = (job.get("spec") or {}).get("template") or {}
    policy = (template.get("spec") or {}).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        causes.append({"reason": "FieldValueNotSupported" if policy else "FieldValueRequired",
                       "field": "spec.template.spec.restartPolicy",
                       "message": (f'Unsupported value: "{policy}": ' if policy else "Required value: ")
                       + 'supported values: "OnFailure", "Never"'})
    for cause in _pod_causes(template):
        causes.append(cause | {"field": "spec.template." + cause["field"]})
    return causes


def check_job_update(old: dict, new: dict) -> None:
    """A Job's template is immutable (suspend, parallelism and activeDeadlineSeconds may change)."""
    if (old.get("spec") or {}).get("template") != (new.get("spec") or {}).get("template"):
        name = old["metadata"]["name"]
        raise ApiError(422, "Invalid", f'Job.batch "{name}" is invalid: spec.template: Invalid value: ...: field is '
                       "immutable", {"name": name, "group": "batch", "kind": "Job", "causes": [
                           {"reason": "FieldValueInvalid", "message": "Invalid value: field is immutable",
                            "field": "spec.template"}]})


def job_selector(job: dict) -> None:
    """The selector and template labels the real server gives a Job at creation, from its uid."""
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    spec = job["spec"]
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    template_meta = spec["template"].setdefault("metadata", {})
    template_meta["labels"] = dict(template_meta.get("labels") or {}) | {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
        "controller-uid": uid, "job-name": name}


def validate(rtype: ResourceType, obj: dict, version: str) -> None:
    """Raises 422 Invalid for what the real server refuses."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes = schema_causes(obj, version)
    if name:
        causes += _name_causes(rtype, name)
    else:
        causes.append({"reason": "FieldValueRequired", "field": "metadata.name",
                       "message": "Required value: name or generateName is required"})
    causes += _label_causes(meta.get("labels") or {}, "metadata.labels")
    causes += _label_causes(meta.get("annotations") or {}, "metadata.annotations")
    if rtype.kind == "Pod":
        causes += _pod_causes(obj)
    if rtype.kind in ("Secret", "ConfigMap"):
        causes += _data_causes(obj)
    if rtype.kind == "Job":
        causes += _job_causes(obj)
    if causes:
        raise invalid(rtype.kind, name, causes)


def decode_secret(rtype: ResourceType, obj: dict) -> None:
    """Secrets: data is base64 (a body that is not cannot even be decoded: 400), stringData is folded into
    data and never stored, as the real server does."""
    fields = ("data",) if rtype.kind == "Secret" else ("binaryData",) if rtype.kind == "ConfigMap" else ()
    for field in fields:
        for key, value in (obj.get(field) or {}).items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise bad_request(f'{rtype.kind} in version "v1" cannot be handled as a {rtype.kind}: '
                                  f"illegal base64 data in {field}[{key}]") from None
    if rtype.kind == "Secret" and "stringData" in obj:
        data = obj.setdefault("data", {}) or {}
        for key, value in (obj.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


# -- defaulting ------------------------------------------------------------------------------------------

def _pull_policy(image: str) -> str:
    tag = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in tag and (":" not in tag or tag.endswith(":latest")) else "IfNotPresent"


def _qos(spec: dict) -> str:
    containers = spec.get("containers", [])
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        if not {"cpu", "memory"} <= limits.keys() or any(requests.get(k, limits[k]) != limits[k] for k in limits):
            return "Burstable"
    return "Guaranteed"


def _default_probe(probe: dict) -> None:
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        probe.setdefault(key, value)
    if "httpGet" in probe:
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def default(rtype: ResourceType, obj: dict, service_ip) -> None:
    """What the real API server's defaulting adds, for the fields clients read back."""
    if rtype.kind == "Pod":
        spec = obj.setdefault("spec", {})
        for key, value in (("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
                           ("terminationGracePeriodSeconds", 30), ("schedulerName", "default-scheduler"),
                           ("serviceAccountName", "default"), ("securityContext", {}), ("enableServiceLinks", True),
                           ("priority", 0), ("preemptionPolicy", "PreemptLowerPriority")):
            spec.setdefault(key, value)
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("tolerations", [
            {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            for t in ("not-ready", "unreachable")])
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            container.setdefault("imagePullPolicy", _pull_policy(container.get("image", "")))
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            resources = container.setdefault("resources", {})
            if resources.get("limits"):
                # Requests default to the limits, as the real defaulting does.
                resources["requests"] = resources.get("limits", {}) | (resources.get("requests") or {})
            for port in container.get("ports", []):
                port.setdefault("protocol", "TCP")
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in container:
                    _default_probe(container[probe])
        for volume in spec.get("volumes", []):
            for kind in ("secret", "configMap"):
                if kind in volume:
                    volume[kind].setdefault("defaultMode", 0o644)
    elif rtype.kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec.get("clusterIP") != "None":
            spec.setdefault("clusterIP", service_ip())
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif rtype.kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif rtype.kind == "PersistentVolumeClaim":
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        spec.setdefault("storageClassName", "standard")
    elif rtype.kind == "Job":
        spec = obj.setdefault("spec", {})
        for key, value in (("backoffLimit", 6), ("completions", 1), ("parallelism", 1), ("suspend", False),
                           ("completionMode", "NonIndexed"), ("podReplacementPolicy", "TerminatingOrFailed")):
            spec.setdefault(key, value)
        default(RESOURCES[("", "pods")], spec.setdefault("template", {}), service_ip)
    elif rtype.kind == "NetworkPolicy":
        spec = obj.setdefault("spec", {})
        spec.setdefault("policyTypes", ["Ingress"] + (["Egress"] if "egress" in spec else []))


def initial_status(rtype: ResourceType, obj: dict) -> dict | None:
    """The status a new object starts with (a client's status on create is dropped)."""
    if rtype.kind == "Pod":
        return {"phase": "Pending", "qosClass": _qos(obj.get("spec") or {})}
    if rtype.kind == "Service":
        return {"loadBalancer": {}}
    if rtype.kind == "PersistentVolumeClaim":
        return {"phase": "Pending"}
    return None


def check_pod_update(old: dict, new: dict) -> None:
    """A pod's spec is immutable but for its images (and a few fields hebi does not use)."""
    def without_images(spec: dict) -> dict:
        spec = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations")}
        spec["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers", [])]
        return spec
    if without_images(old.get("spec") or {}) != without_images(new.get("spec") or {}):
        raise ApiError(422, "Invalid", f'Pod "{old["metadata"]["name"]}" is invalid: spec: Forbidden: pod updates may '
                       "not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
                       "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
                       "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
                       {"name": old["metadata"]["name"], "kind": "Pod",
                        "causes": [{"reason": "FieldValueForbidden", "message": "Forbidden: pod updates may not change "
                                    "fields other than `spec.containers[*].image`", "field": "spec"}]})
