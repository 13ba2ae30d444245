"""Defaulting and validation of built-in kinds, worded as the API server words them (messages
from pkg/apis/*/validation and k8s.io/apimachinery upstream)."""

import base64
import copy
import re

import pytest

from tests.kube.builtins import DecodeError, default, prepare_update, validate

SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
PERCENT = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
    "'93%', regex used for validation is '[0-9]+%')"
)
ENV_NAME = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)
PORTS_RANGE = "must be between 1 and 65535, inclusive"
ID_RANGE = "must be between 0 and 4294967295, inclusive"
FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"
DIGEST = "sha256:" + "a" * 64


# --- Objects -----------------------------------------------------------------------------------


def deployment(name="web", kind="Deployment"):
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def pod(*containers, **spec):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": list(containers) or [{"name": "a", "image": "a:1"}], **spec},
    }


def service(**spec):
    spec = {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc", "namespace": "default"},
        "spec": spec,
    }


def hpa(**spec):
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": 3,
        **spec,
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


def pdb(**spec):
    spec = {"selector": {"matchLabels": {"app": "web"}}, **spec}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec,
    }


def secret(data=None, **fields):
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": data or {"k": "dmFsdWU="},
        **fields,
    }


def config_map(data=None, **fields):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default"},
        "data": data or {"k": "v"},
        **fields,
    }


def namespace(name="team-a", **fields):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, **fields}


def defaulted(obj):
    obj = copy.deepcopy(obj)
    default(obj)
    return obj


def errors(obj, old=None):
    """What the API server answers: the errors of the defaulted object."""
    return validate(defaulted(obj), None if old is None else defaulted(old))


def put(obj, path, value):
    """Set a value by a path like 'spec.template.spec.containers[0].ports'."""
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    target = obj
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return obj


def changed(obj, **paths):
    """A copy of obj with values set at paths (double underscores for dots, _N_ for [N])."""
    obj = copy.deepcopy(obj)
    for path, value in paths.items():
        put(obj, re.sub(r"_(\d+)_", r"[\1].", path).replace("__", ".").rstrip("."), value)
    return obj


TEMPLATE = "spec.template.spec"
CONTAINER = "spec.template.spec.containers[0]"


def with_container(**fields):
    return put(
        deployment(), "spec.template.spec.containers[0]", {"name": "web", "image": "a:1", **fields}
    )


# --- Defaults ----------------------------------------------------------------------------------


def test_a_minimal_deployment_gets_the_real_defaulted_spec():
    assert defaulted(deployment())["spec"] == {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                    }
                ],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30,
            },
        },
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
        },
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }


def test_given_values_are_kept_and_recreate_gets_no_rolling_update():
    obj = changed(deployment(), spec__replicas=0, spec__strategy={"type": "Recreate"})
    obj["spec"]["revisionHistoryLimit"] = 0
    spec = defaulted(obj)["spec"]
    assert (spec["replicas"], spec["revisionHistoryLimit"]) == (0, 0)
    assert spec["strategy"] == {"type": "Recreate"}


def test_a_partial_rolling_update_is_completed():
    obj = changed(deployment(), spec__strategy={"rollingUpdate": {"maxSurge": 1}})
    assert defaulted(obj)["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"},
    }


def test_a_replica_set_gets_one_replica_and_no_strategy():
    spec = defaulted(deployment(kind="ReplicaSet"))["spec"]
    assert spec["replicas"] == 1
    assert "strategy" not in spec
    assert "revisionHistoryLimit" not in spec


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("registry.example.com:5000/team/app", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        (f"nginx@{DIGEST}", "IfNotPresent"),
        (f"nginx:latest@{DIGEST}", "Always"),
        ("Nginx", "IfNotPresent"),  # does not parse: no tag, not "latest"
        ("", "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image, policy):
    obj = defaulted(with_container(image=image))
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_a_given_pull_policy_is_kept():
    obj = defaulted(with_container(image="nginx", imagePullPolicy="Never"))
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_container_members_are_defaulted():
    container = defaulted(
        with_container(
            ports=[{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            livenessProbe={"httpGet": {"port": 80}},
            readinessProbe={"grpc": {"port": 9000}, "periodSeconds": 5},
            startupProbe={"exec": {"command": ["true"]}},
            lifecycle={"preStop": {"httpGet": {"port": 80}}},
            resources={"limits": {"cpu": "1000m", "memory": "1024Mi"}, "requests": {"cpu": "100u"}},
        )
    )["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 53, "protocol": "UDP"},
    ]
    assert container["env"][0]["valueFrom"]["fieldRef"] == {
        "apiVersion": "v1",
        "fieldPath": "metadata.name",
    }
    probe = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert container["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        **probe,
    }
    assert container["readinessProbe"] == {
        "grpc": {"port": 9000, "service": ""},
        **probe,
        "periodSeconds": 5,
    }
    assert container["startupProbe"] == {"exec": {"command": ["true"]}, **probe}
    assert container["lifecycle"] == {
        "preStop": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}}
    }
    # Resource quantities: rounded up to milli, then canonical.
    assert container["resources"] == {
        "limits": {"cpu": "1", "memory": "1Gi"},
        "requests": {"cpu": "1m"},
    }


def test_volumes_are_defaulted():
    volumes = [
        {"name": "scratch"},
        {"name": "s", "secret": {"secretName": "s"}},
        {"name": "c", "configMap": {"name": "c", "defaultMode": 256}},
        {"name": "h", "hostPath": {"path": "/var"}},
        {"name": "e", "emptyDir": {"sizeLimit": "1024Mi"}},
        {
            "name": "p",
            "projected": {
                "sources": [
                    {"serviceAccountToken": {"path": "token"}},
                    {
                        "downwardAPI": {
                            "items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]
                        }
                    },
                ]
            },
        },
    ]
    spec = defaulted(put(deployment(), f"{TEMPLATE}.volumes", volumes))["spec"]["template"]["spec"]
    assert spec["volumes"] == [
        {"name": "scratch", "emptyDir": {}},
        {"name": "s", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "c", "configMap": {"name": "c", "defaultMode": 256}},
        {"name": "h", "hostPath": {"path": "/var", "type": ""}},
        {"name": "e", "emptyDir": {"sizeLimit": "1Gi"}},
        {
            "name": "p",
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "n",
                                    "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"},
                                }
                            ]
                        }
                    },
                ],
            },
        },
    ]


def test_pod_only_defaults():
    obj = defaulted(
        pod(
            {
                "name": "a",
                "image": "a:1",
                "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
            },
            {"name": "b", "image": "b:1", "ports": [{"containerPort": 8080}]},
            hostNetwork=True,
        )
    )
    spec = obj["spec"]
    assert spec["enableServiceLinks"] is True
    assert spec["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert spec["containers"][1]["ports"] == [
        {"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}
    ]
    assert obj["status"] == {"phase": "Pending", "qosClass": "Burstable"}
    # A template is not a Pod: no enableServiceLinks there.
    assert "enableServiceLinks" not in defaulted(deployment())["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m"}}, "Guaranteed"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
        ({"requests": {"memory": "1Gi"}}, "Burstable"),
    ],
)
def test_a_new_pod_gets_its_qos_class(resources, qos):
    assert (
        defaulted(pod({"name": "a", "image": "a:1", "resources": resources}))["status"]["qosClass"]
        == qos
    )


def test_a_minimal_service_gets_the_real_defaulted_spec():
    assert defaulted(service())["spec"] == {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "internalTrafficPolicy": "Cluster",
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"ports": [{"port": 80, "targetPort": 0}]},
            {"ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]},
        ),
        (
            {"ports": [{"port": 80, "targetPort": "http"}]},
            {"ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}]},
        ),
        (
            {"type": "NodePort"},
            {"externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster"},
        ),
        (
            {"type": "LoadBalancer"},
            {"externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True},
        ),
        ({"externalIPs": ["203.0.113.9"]}, {"externalTrafficPolicy": "Cluster"}),
        (
            {"sessionAffinity": "ClientIP"},
            {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}},
        ),
        (
            {"clusterIP": "10.96.0.10"},
            {"clusterIPs": ["10.96.0.10"], "ipFamilyPolicy": "SingleStack"},
        ),
        (
            {"clusterIP": "None", "selector": None},
            {"clusterIPs": ["None"], "ipFamilyPolicy": "RequireDualStack"},
        ),
        ({"clusterIP": "None"}, {"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}),
    ],
)
def test_service_defaults(spec, expected):
    got = defaulted(service(**spec))["spec"]
    assert {key: got.get(key) for key in expected} == expected


def test_an_external_name_service_gets_no_ip_fields():
    spec = defaulted(service(type="ExternalName", externalName="db.example.com", ports=[]))["spec"]
    assert not {
        "ipFamilies",
        "ipFamilyPolicy",
        "internalTrafficPolicy",
        "externalTrafficPolicy",
    } & set(spec)


def test_hpa_defaults():
    assert defaulted(hpa())["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1,
        "maxReplicas": 3,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ],
    }


def test_hpa_behavior_gets_its_missing_parts_only():
    behavior = defaulted(hpa(behavior={"scaleUp": {"selectPolicy": "Min"}}))["spec"]["behavior"]
    assert behavior == {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Min",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15},
            ],
        },
        # No stabilization window: the controller's flag (300s) applies.
        "scaleDown": {
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
    }
    assert "behavior" not in defaulted(hpa())["spec"]


def test_hpa_target_quantities_are_canonical():
    metric = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "qps"},
            "target": {"type": "AverageValue", "averageValue": "1000m"},
        },
    }
    got = defaulted(hpa(metrics=[metric]))["spec"]["metrics"][0]
    assert got["pods"]["target"]["averageValue"] == "1"


def test_secret_namespace_and_other_kinds():
    assert defaulted(secret())["type"] == "Opaque"
    assert defaulted(secret(type="kubernetes.io/tls"))["type"] == "kubernetes.io/tls"
    ns = defaulted(namespace())
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert defaulted(namespace(spec={"finalizers": ["example.com/x"]}))["spec"]["finalizers"] == [
        "example.com/x",
        "kubernetes",
    ]
    for unchanged in (
        pdb(),
        config_map(),
        {"apiVersion": "example.com/v1", "kind": "Thing", "spec": {}},
    ):
        assert defaulted(unchanged) == unchanged


# --- Validation: metadata ----------------------------------------------------------------------


def test_a_valid_object_of_each_kind_has_no_errors():
    for obj in (
        deployment(),
        deployment(kind="ReplicaSet"),
        pod(),
        service(),
        hpa(),
        secret(),
        config_map(),
    ):
        assert errors(obj) == [], obj["kind"]
    assert errors(pdb(minAvailable="50%")) == []
    assert errors(namespace()) == []
    assert errors({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}) == []
    assert (
        validate({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "_"}}) == []
    )


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (deployment("9Lives"), f'metadata.name: Invalid value: "9Lives": {SUBDOMAIN}'),
        (service(), None),
        (
            changed(service(), metadata__name="9lives"),
            f'metadata.name: Invalid value: "9lives": {DNS1035}',
        ),
        (namespace("a.b"), 'metadata.name: Invalid value: "a.b": must not contain dots'),
        (namespace("Team"), f'metadata.name: Invalid value: "Team": {LABEL}'),
        (config_map(), None),
        (
            changed(config_map(), metadata__name=""),
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            deployment("a" * 254),
            f'metadata.name: Invalid value: "{"a" * 254}": must be no more than 253 characters',
        ),
        (
            changed(service(), metadata__name="a" * 64),
            f'metadata.name: Invalid value: "{"a" * 64}": must be no more than 63 characters',
        ),
        (
            changed(deployment(), metadata__namespace="Bad"),
            f'metadata.namespace: Invalid value: "Bad": {LABEL}',
        ),
        (
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "Bad_SA"}},
            f'metadata.name: Invalid value: "Bad_SA": {SUBDOMAIN}',
        ),
    ],
)
def test_names(obj, message):
    assert errors(obj) == ([] if message is None else [message])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"bad key": "v"}, f'metadata.labels: Invalid value: "bad key": {NAME_PART}'),
        ({"app": "-x"}, f'metadata.labels: Invalid value: "-x": {LABEL_VALUE}'),
        (
            {"app": "x" * 64},
            f'metadata.labels: Invalid value: "{"x" * 64}": must be no more than 63 characters',
        ),
        (
            {"Example.com/x": "v"},
            f'metadata.labels: Invalid value: "Example.com/x": prefix part {SUBDOMAIN}',
        ),
        ({"/x": "v"}, 'metadata.labels: Invalid value: "/x": prefix part must be non-empty'),
        (
            {"example.com/": "v"},
            [
                'metadata.labels: Invalid value: "example.com/": name part must be non-empty',
                f'metadata.labels: Invalid value: "example.com/": {NAME_PART}',
            ],
        ),
        (
            {"a/b/c": "v"},
            'metadata.labels: Invalid value: "a/b/c": a valid label key must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            "or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional "
            "DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        ({"example.com/Name_1.x": "", "app.kubernetes.io/name": "web"}, None),
    ],
)
def test_labels(labels, message):
    expected = message if isinstance(message, list) else [] if message is None else [message]
    assert errors(changed(config_map(), metadata__labels=labels)) == expected


def test_annotations():
    assert errors(changed(config_map(), metadata__annotations={"Example.com/Some_Key": "x"})) == []
    assert errors(changed(config_map(), metadata__annotations={"a b": "x"})) == [
        f'metadata.annotations: Invalid value: "a b": {NAME_PART}'
    ]
    big = {"a": "x" * (256 * 1024)}
    assert errors(changed(config_map(), metadata__annotations=big)) == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    ]


def owner(name="o", **fields):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": "u-1", **fields}


@pytest.mark.parametrize(
    ("references", "message"),
    [
        ([owner(uid="")], 'metadata.ownerReferences.uid: Invalid value: "": must not be empty'),
        ([owner(name="")], 'metadata.ownerReferences.name: Invalid value: "": must not be empty'),
        (
            [owner(apiVersion="")],
            'metadata.ownerReferences.apiVersion: Invalid value: "": version must not be empty',
        ),
        (
            [owner(apiVersion="apps/")],
            'metadata.ownerReferences.apiVersion: Invalid value: "apps/": version must not be empty',
        ),
        (
            [owner("a", controller=True), owner("b", controller=True)],
            'metadata.ownerReferences: Invalid value: [{"apiVersion":"apps/v1","kind":"Deployment","name":"a",'
            '"uid":"u-1","controller":true},{"apiVersion":"apps/v1","kind":"Deployment","name":"b","uid":"u-1",'
            '"controller":true}]: Only one reference can have Controller set to true. Found "true" in references '
            "for Deployment/a and Deployment/b",
        ),
        (
            [owner(apiVersion="v1", kind="Event")],
            'metadata.ownerReferences: Invalid value: {"apiVersion":"v1","kind":"Event","name":"o","uid":"u-1"}: '
            "/v1, Kind=Event is disallowed from being an owner",
        ),
        ([owner("a", controller=True), owner("b", controller=False)], None),
    ],
)
def test_owner_references(references, message):
    obj = changed(config_map(), metadata__ownerReferences=references)
    assert errors(obj) == ([] if message is None else [message])


@pytest.mark.parametrize(
    ("finalizers", "message"),
    [
        (["example.com/cleanup", "kubernetes", "orphan"], None),
        (
            ["cleanup"],
            'metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified',
        ),
        (["a b/c"], f'metadata.finalizers: Invalid value: "a b/c": prefix part {SUBDOMAIN}'),
        (
            ["orphan", "foregroundDeletion"],
            'metadata.finalizers: Invalid value: ["orphan","foregroundDeletion"]: '
            "finalizer orphan and foregroundDeletion cannot be both set",
        ),
    ],
)
def test_finalizers(finalizers, message):
    obj = changed(config_map(), metadata__finalizers=finalizers)
    assert errors(obj) == ([] if message is None else [message])


# --- Validation: Deployment and ReplicaSet -----------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (
            {"spec.selector": None},
            [
                "spec.selector: Required value",
                'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`',
            ],
        ),
        (
            {"spec.selector": {}},
            ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
        ),
        (
            {"spec.template.metadata.labels": {"app": "other"}},
            [
                'spec.template.metadata.labels: Invalid value: {"app":"other"}: `selector` does not match template `labels`'
            ],
        ),
        (
            {"spec.selector.matchLabels": {"app": "-bad"}},
            [
                f'spec.selector.matchLabels: Invalid value: "-bad": {LABEL_VALUE}',
                'spec.selector: Invalid value: {"matchLabels":{"app":"-bad"}}: invalid label selector',
            ],
        ),
        (
            {"spec.selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
            [
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                'spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"In"}]}: invalid label selector',
            ],
        ),
        (
            {
                "spec.selector": {
                    "matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]
                }
            },
            [
                "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                'spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Exists","values":["x"]}]}: '
                "invalid label selector",
            ],
        ),
        (
            {
                "spec.selector": {
                    "matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]
                }
            },
            [
                'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator',
                'spec.selector: Invalid value: {"matchExpressions":[{"key":"app","operator":"Near","values":["x"]}]}: '
                "invalid label selector",
            ],
        ),
        (
            {
                "spec.selector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]
                }
            },
            [],
        ),
        (
            {"spec.selector": {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}},
            [],
        ),
        (
            {
                "spec.selector": {
                    "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]
                }
            },
            [
                'spec.template.metadata.labels: Invalid value: {"app":"web"}: `selector` does not match template `labels`'
            ],
        ),
        (
            {"spec.replicas": -1},
            ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"spec.minReadySeconds": -1},
            ["spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"spec.revisionHistoryLimit": -1},
            ["spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"spec.minReadySeconds": 30, "spec.progressDeadlineSeconds": 30},
            [
                "spec.progressDeadlineSeconds: Invalid value: 30: must be greater than minReadySeconds"
            ],
        ),
        (
            {"spec.strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}},
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
            ],
        ),
        (
            {"spec.strategy": {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": "0%"}}},
            [
                'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'
            ],
        ),
        (
            {"spec.strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}},
            [
                'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%'
            ],
        ),
        ({"spec.strategy": {"rollingUpdate": {"maxSurge": "200%"}}}, []),
        (
            {"spec.strategy": {"rollingUpdate": {"maxSurge": "lots"}}},
            [f'spec.strategy.rollingUpdate.maxSurge: Invalid value: "lots": {PERCENT}'],
        ),
        (
            {"spec.strategy": {"rollingUpdate": {"maxSurge": -1}}},
            [
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"
            ],
        ),
        (
            {"spec.strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}},
            [
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
            ],
        ),
        (
            {"spec.strategy": {"type": "BlueGreen"}},
            [
                'spec.strategy: Unsupported value: {"Type":"BlueGreen","RollingUpdate":null}: supported values: "Recreate", "RollingUpdate"'
            ],
        ),
        (
            {f"{TEMPLATE}.restartPolicy": "Never"},
            [
                'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
            ],
        ),
        (
            {f"{TEMPLATE}.activeDeadlineSeconds": 60},
            [
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in Deployment is not Supported"
            ],
        ),
        (
            {"spec.template.metadata.labels": {"app": "web", "bad key": "x"}},
            [f'spec.template.labels: Invalid value: "bad key": {NAME_PART}'],
        ),
    ],
)
def test_deployment_rules(paths, expected):
    obj = deployment()
    for path, value in paths.items():
        put(obj, path, value)
    assert errors(obj) == expected


def test_replica_set_rules():
    replica_set = deployment(kind="ReplicaSet")
    assert errors(changed(replica_set, spec__selector={})) == [
        "spec.selector: Invalid value: {}: empty selector is invalid for deployment"  # sic
    ]
    assert errors(put(replica_set, f"{TEMPLATE}.activeDeadlineSeconds", 5)) == [
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"
    ]
    assert errors(changed(deployment(kind="ReplicaSet"), spec__minReadySeconds=-5)) == [
        "spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0"
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_the_selector_is_immutable(kind):
    old = deployment(kind=kind)
    moved = changed(old, spec__selector={"matchLabels": {"app": "api"}})
    put(moved, "spec.template.metadata.labels", {"app": "api"})
    assert errors(moved, old) == [
        'spec.selector: Invalid value: {"matchLabels":{"app":"api"}}: field is immutable'
    ]
    scaled = changed(old, spec__replicas=5)
    put(scaled, "spec.selector.matchExpressions", [])  # nil and empty are the same
    assert errors(scaled, old) == []


# --- Validation: pod specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "Web"}, [f'{CONTAINER}.name: Invalid value: "Web": {LABEL}']),
        ({"name": ""}, [f"{CONTAINER}.name: Required value"]),
        ({"image": ""}, [f"{CONTAINER}.image: Required value"]),
        (
            {"ports": [{"containerPort": 0}]},
            [f"{CONTAINER}.ports[0].containerPort: Required value"],
        ),
        (
            {"ports": [{"containerPort": 70000}]},
            [f"{CONTAINER}.ports[0].containerPort: Invalid value: 70000: {PORTS_RANGE}"],
        ),
        (
            {"ports": [{"containerPort": 80, "hostPort": 70000}]},
            [f"{CONTAINER}.ports[0].hostPort: Invalid value: 70000: {PORTS_RANGE}"],
        ),
        (
            {"ports": [{"containerPort": 80, "name": "HTTP"}]},
            [
                f'{CONTAINER}.ports[0].name: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
                f'{CONTAINER}.ports[0].name: Invalid value: "HTTP": must contain at least one letter (a-z)',
            ],
        ),
        (
            {"ports": [{"containerPort": 80, "name": "8080"}]},
            [
                f'{CONTAINER}.ports[0].name: Invalid value: "8080": must contain at least one letter (a-z)'
            ],
        ),
        (
            {"ports": [{"containerPort": 80, "name": "a--b"}]},
            [
                f'{CONTAINER}.ports[0].name: Invalid value: "a--b": must not contain consecutive hyphens'
            ],
        ),
        (
            {"ports": [{"containerPort": 80, "name": "-web"}]},
            [
                f'{CONTAINER}.ports[0].name: Invalid value: "-web": must not begin or end with a hyphen'
            ],
        ),
        (
            {"ports": [{"containerPort": 80, "name": "a-very-long-name"}]},
            [
                f'{CONTAINER}.ports[0].name: Invalid value: "a-very-long-name": must be no more than 15 characters'
            ],
        ),
        (
            {
                "ports": [
                    {"containerPort": 80, "name": "http"},
                    {"containerPort": 81, "name": "http"},
                ]
            },
            [f'{CONTAINER}.ports[1].name: Duplicate value: "http"'],
        ),
        (
            {"ports": [{"containerPort": 80, "protocol": "HTTP"}]},
            [
                f'{CONTAINER}.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'
            ],
        ),
        (
            {
                "ports": [
                    {"containerPort": 80, "hostPort": 8080},
                    {"containerPort": 81, "hostPort": 8080},
                ]
            },
            [f'{CONTAINER}.ports[1].hostPort: Duplicate value: "TCP//8080"'],
        ),
        ({"env": [{"name": ""}]}, [f"{CONTAINER}.env[0].name: Required value"]),
        (
            {"env": [{"name": "A=B"}]},
            [f'{CONTAINER}.env[0].name: Invalid value: "A=B": {ENV_NAME}'],
        ),
        (
            {"env": [{"name": "naïve"}]},
            [f'{CONTAINER}.env[0].name: Invalid value: "naïve": {ENV_NAME}'],
        ),
        ({"env": [{"name": "1st.var-name with space"}]}, []),
        (
            {
                "env": [
                    {
                        "name": "A",
                        "value": "x",
                        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                    }
                ]
            },
            [
                f'{CONTAINER}.env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty'
            ],
        ),
        (
            {"env": [{"name": "A", "valueFrom": {}}]},
            [
                f'{CONTAINER}.env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, '
                "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
            ],
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": ""}}}]},
            [f"{CONTAINER}.env[0].valueFrom.secretKeyRef.key: Required value"],
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "a b"}}}]},
            [
                f'{CONTAINER}.env[0].valueFrom.configMapKeyRef.key: Invalid value: "a b": {CONFIG_KEY}'
            ],
        ),
        (
            {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}]},
            [
                f'{CONTAINER}.env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.hostname": '
                "error converting fieldPath: field label not supported: spec.hostname"
            ],
        ),
        (
            {
                "env": [
                    {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}}
                ]
            },
            [
                f'{CONTAINER}.env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.restartPolicy": '
                'supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", '
                '"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"'
            ],
        ),
        (
            {
                "env": [
                    {
                        "name": "A",
                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}},
                    }
                ]
            },
            [],
        ),
        (
            {"envFrom": [{"prefix": "X_"}]},
            [
                f'{CONTAINER}.envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`'
            ],
        ),
        ({"envFrom": [{"configMapRef": {"name": "settings-"}}]}, []),
        (
            {"resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}},
            [
                f'{CONTAINER}.resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1'
            ],
        ),
        (
            {"resources": {"limits": {"memory": "-1"}}},
            [
                f'{CONTAINER}.resources.limits[memory]: Invalid value: "-1": must be greater than or equal to 0'
            ],
        ),
        (
            {"resources": {"requests": {"foo": "1"}}},
            [
                f'{CONTAINER}.resources.requests[foo]: Invalid value: "foo": must be a standard resource type or fully qualified',
                f'{CONTAINER}.resources.requests[foo]: Invalid value: "foo": must be a standard resource for containers',
            ],
        ),
        (
            {"resources": {"requests": {"example.com/gpu": "1"}}},
            [
                f"{CONTAINER}.resources.limits: Required value: Limit must be set for non overcommitable resources"
            ],
        ),
        (
            {
                "resources": {
                    "limits": {"example.com/gpu": "2"},
                    "requests": {"example.com/gpu": "1"},
                }
            },
            [
                f'{CONTAINER}.resources.requests: Invalid value: "1": must be equal to example.com/gpu limit of 2'
            ],
        ),
        (
            {"resources": {"limits": {"example.com/gpu": "500m"}}},
            [
                f'{CONTAINER}.resources.limits[example.com/gpu]: Invalid value: "500m": must be an integer'
            ],
        ),
        (
            {"resources": {"limits": {"hugepages-2Mi": "3Mi"}}},
            [
                f'{CONTAINER}.resources.limits[hugepages-2Mi]: Invalid value: "3Mi": 3Mi is not positive integer '
                "multiple of hugepages-2Mi",
                f"{CONTAINER}.resources: Forbidden: HugePages require cpu or memory",
            ],
        ),
        ({"resources": {"limits": {"hugepages-2Mi": "4Mi", "memory": "1Gi"}}}, []),
        (
            {"livenessProbe": {"httpGet": {"port": 80}, "periodSeconds": -1}},
            [
                f"{CONTAINER}.livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"
            ],
        ),
        (
            {"livenessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 2}},
            [f"{CONTAINER}.livenessProbe.successThreshold: Invalid value: 2: must be 1"],
        ),
        (
            {"startupProbe": {"tcpSocket": {"port": 80}, "successThreshold": 3}},
            [f"{CONTAINER}.startupProbe.successThreshold: Invalid value: 3: must be 1"],
        ),
        ({"readinessProbe": {"tcpSocket": {"port": 80}, "successThreshold": 3}}, []),
        (
            {"readinessProbe": {"periodSeconds": 5}},
            [f"{CONTAINER}.readinessProbe: Required value: must specify a handler type"],
        ),
        (
            {"readinessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}},
            [
                f"{CONTAINER}.readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"
            ],
        ),
        (
            {"readinessProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 5}},
            [
                f"{CONTAINER}.readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes"
            ],
        ),
        (
            {"livenessProbe": {"exec": {}}},
            [f"{CONTAINER}.livenessProbe.exec.command: Required value"],
        ),
        (
            {"livenessProbe": {"httpGet": {"port": 0}}},
            [f"{CONTAINER}.livenessProbe.httpGet.port: Invalid value: 0: {PORTS_RANGE}"],
        ),
        (
            {"livenessProbe": {"httpGet": {"port": "http", "scheme": "FTP"}}},
            [
                f'{CONTAINER}.livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"'
            ],
        ),
        (
            {"lifecycle": {"preStop": {"sleep": {"seconds": 60}}}},
            [
                f"{CONTAINER}.lifecycle.preStop.sleep: Invalid value: 60: must be non-negative and less than terminationGracePeriodSeconds (30)"
            ],
        ),
        (
            {"restartPolicy": "Always"},
            [f"{CONTAINER}.restartPolicy: Forbidden: may not be set for non-init containers"],
        ),
        (
            {"terminationMessagePolicy": "Sometimes"},
            [
                f'{CONTAINER}.terminationMessagePolicy: Unsupported value: "Sometimes": supported values: '
                '"File", "FallbackToLogsOnError"'
            ],
        ),
        (
            {"imagePullPolicy": "Sometimes"},
            [
                f'{CONTAINER}.imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"'
            ],
        ),
        (
            {"securityContext": {"runAsUser": -1}},
            [f"{CONTAINER}.securityContext.runAsUser: Invalid value: -1: {ID_RANGE}"],
        ),
        (
            {"securityContext": {"privileged": True, "allowPrivilegeEscalation": False}},
            [
                f'{CONTAINER}.securityContext: Invalid value: {{"Capabilities":null,"Privileged":true,'
                '"SELinuxOptions":null,"WindowsOptions":null,"RunAsUser":null,"RunAsGroup":null,"RunAsNonRoot":null,'
                '"ReadOnlyRootFilesystem":null,"AllowPrivilegeEscalation":false,"ProcMount":null,"SeccompProfile":null,'
                '"AppArmorProfile":null}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true'
            ],
        ),
        (
            {"securityContext": {"seccompProfile": {"type": "Strict"}}},
            [
                f'{CONTAINER}.securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: '
                '"Localhost", "RuntimeDefault", "Unconfined"'
            ],
        ),
        (
            {"volumeMounts": [{"name": "missing", "mountPath": "/m"}]},
            [f'{CONTAINER}.volumeMounts[0].name: Not found: "missing"'],
        ),
    ],
)
def test_container_rules(fields, expected):
    assert errors(with_container(**fields)) == expected


VOLUMES = "spec.template.spec.volumes"


@pytest.mark.parametrize(
    ("volumes", "mounts", "expected"),
    [
        ([{"name": "data"}], [{"name": "data", "mountPath": "/data"}], []),
        ([{"name": "Data"}], [], [f'{VOLUMES}[0].name: Invalid value: "Data": {LABEL}']),
        ([{"name": ""}], [], [f"{VOLUMES}[0].name: Required value"]),
        ([{"name": "a"}, {"name": "a"}], [], [f'{VOLUMES}[1].name: Duplicate value: "a"']),
        (
            [{"name": "a", "emptyDir": {}, "secret": {"secretName": "s"}}],
            [],
            [f"{VOLUMES}[0].secret: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            [{"name": "a", "secret": {"secretName": "s"}, "downwardAPI": {}}],
            [],
            [f"{VOLUMES}[0].downwarAPI: Forbidden: may not specify more than 1 volume type"],  # sic
        ),
        ([{"name": "a", "secret": {}}], [], [f"{VOLUMES}[0].secret.secretName: Required value"]),
        ([{"name": "a", "configMap": {}}], [], [f"{VOLUMES}[0].configMap.name: Required value"]),
        (
            [{"name": "a", "secret": {"secretName": "s", "defaultMode": 1000}}],
            [],
            [f"{VOLUMES}[0].secret.defaultMode: Invalid value: 1000: {FILE_MODE}"],
        ),
        (
            [{"name": "a", "configMap": {"name": "c", "items": [{"key": "k", "path": "../etc"}]}}],
            [],
            [
                f"{VOLUMES}[0].configMap.items[0].path: Invalid value: \"../etc\": must not contain '..'"
            ],
        ),
        (
            [{"name": "a", "configMap": {"name": "c", "items": [{"key": "k", "path": "/etc/x"}]}}],
            [],
            [
                f'{VOLUMES}[0].configMap.items[0].path: Invalid value: "/etc/x": must be a relative path'
            ],
        ),
        (
            [{"name": "a", "persistentVolumeClaim": {}}],
            [],
            [f"{VOLUMES}[0].persistentVolumeClaim.claimName: Required value"],
        ),
        (
            [{"name": "a", "hostPath": {"path": ""}}],
            [],
            [f"{VOLUMES}[0].hostPath.path: Required value"],
        ),
        (
            [{"name": "a", "emptyDir": {"sizeLimit": "-1Gi"}}],
            [],
            [
                f"{VOLUMES}[0].emptyDir.sizeLimit: Forbidden: SizeLimit field must be a valid resource quantity"
            ],
        ),
        (
            [{"name": "a"}],
            [{"name": "a", "mountPath": ""}],
            [f"{CONTAINER}.volumeMounts[0].mountPath: Required value"],
        ),
        (
            [{"name": "a"}],
            [{"name": "a", "mountPath": "/m"}, {"name": "a", "mountPath": "/m"}],
            [f'{CONTAINER}.volumeMounts[1].mountPath: Invalid value: "/m": must be unique'],
        ),
        (
            [{"name": "a"}],
            [{"name": "a", "mountPath": "/m", "subPath": "/abs"}],
            [
                f'{CONTAINER}.volumeMounts.subPath: Invalid value: "/abs": must be a relative path'
            ],  # sic: the list
        ),
        (
            [{"name": "a"}],
            [{"name": "a", "mountPath": "/m", "mountPropagation": "Bidirectional"}],
            [
                f"{CONTAINER}.volumeMounts.mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers"
            ],
        ),
        (
            # An invalid volume is not mountable either.
            [{"name": "A"}],
            [{"name": "A", "mountPath": "/m"}],
            [
                f'{VOLUMES}[0].name: Invalid value: "A": {LABEL}',
                f'{CONTAINER}.volumeMounts[0].name: Not found: "A"',
            ],
        ),
    ],
)
def test_volume_rules(volumes, mounts, expected):
    obj = with_container(volumeMounts=mounts)
    put(obj, VOLUMES, volumes)
    assert errors(obj) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"containers": []}, [f"{TEMPLATE}.containers: Required value"]),
        (
            {"containers": [{"name": "a", "image": "a:1"}, {"name": "a", "image": "b:1"}]},
            [f'{TEMPLATE}.containers[1].name: Duplicate value: "a"'],
        ),
        (
            {"initContainers": [{"name": "web", "image": "i:1"}]},
            [f'{TEMPLATE}.initContainers[0].name: Duplicate value: "web"'],
        ),
        (
            {
                "initContainers": [
                    {"name": "init", "image": "i:1", "readinessProbe": {"exec": {"command": ["x"]}}}
                ]
            },
            [
                f"{TEMPLATE}.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
            ],
        ),
        (
            {
                "initContainers": [
                    {
                        "name": "proxy",
                        "image": "i:1",
                        "restartPolicy": "Always",
                        "readinessProbe": {"exec": {"command": ["x"]}},
                    }
                ]
            },
            [],
        ),
        (
            {"initContainers": [{"name": "init", "image": "i:1", "restartPolicy": "OnFailure"}]},
            [
                f'{TEMPLATE}.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'
            ],
        ),
        (
            {"dnsPolicy": "Fancy"},
            [
                f'{TEMPLATE}.dnsPolicy: Unsupported value: "Fancy": supported values: "ClusterFirstWithHostNet", '
                '"ClusterFirst", "Default", "None"'
            ],
        ),
        (
            {"dnsPolicy": "None"},
            [
                f"{TEMPLATE}.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"
            ],
        ),
        (
            {"nodeSelector": {"disk": "ssd!"}},
            [f'{TEMPLATE}.nodeSelector: Invalid value: "ssd!": {LABEL_VALUE}'],
        ),
        (
            {"serviceAccountName": "Bad_SA"},
            [f'{TEMPLATE}.serviceAccountName: Invalid value: "Bad_SA": {SUBDOMAIN}'],
        ),
        ({"imagePullSecrets": [{"name": ""}]}, []),
        (
            {"hostname": "web.1"},
            [f'{TEMPLATE}.hostname: Invalid value: "web.1": must not contain dots'],
        ),
        (
            {"priorityClassName": "High"},
            [f'{TEMPLATE}.priorityClassName: Invalid value: "High": {SUBDOMAIN}'],
        ),
        (
            {"securityContext": {"runAsGroup": -1}},
            [f"{TEMPLATE}.securityContext.runAsGroup: Invalid value: -1: {ID_RANGE}"],
        ),
        (
            {"securityContext": {"fsGroup": 4294967296}},
            [f"{TEMPLATE}.securityContext.fsGroup: Invalid value: 4294967296: {ID_RANGE}"],
        ),
        (
            {"shareProcessNamespace": True, "hostPID": True},
            [
                f"{TEMPLATE}.securityContext.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"
            ],
        ),
        (
            {
                "hostNetwork": True,
                "containers": [
                    {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "hostPort": 81}]}
                ],
            },
            [
                f"{TEMPLATE}.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true"
            ],
        ),
        (
            {
                "hostNetwork": True,
                "containers": [{"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]}],
            },
            [],
        ),
        (
            {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]},
            [
                f"{TEMPLATE}.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'"
            ],
        ),
        (
            {"tolerations": [{"key": "k", "operator": "Is"}]},
            [
                f'{TEMPLATE}.tolerations[0].operator: Unsupported value: "Is": supported values: "Equal", "Exists"'
            ],
        ),
        (
            {"tolerations": [{"key": "k", "value": "v", "effect": "Sometimes"}]},
            [
                f'{TEMPLATE}.tolerations[0].effect: Unsupported value: "Sometimes": supported values: '
                '"NoSchedule", "PreferNoSchedule", "NoExecute"'
            ],
        ),
        (
            {"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 30}]},
            [
                f"{TEMPLATE}.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"
            ],
        ),
        (
            {"tolerations": [{"value": "v"}]},
            [
                f'{TEMPLATE}.tolerations[0].operator: Invalid value: "": operator must be Exists when `key` is empty, '
                'which means "match all values and all keys"'
            ],
        ),
        (
            {
                "tolerations": [
                    {"operator": "Exists"},
                    {"key": "k", "effect": "NoExecute", "tolerationSeconds": 5},
                ]
            },
            [],
        ),
        (
            {
                "topologySpreadConstraints": [
                    {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}
                ]
            },
            [
                f"{TEMPLATE}.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero"
            ],
        ),
        (
            {
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "", "whenUnsatisfiable": "DoNotSchedule"}
                ]
            },
            [
                f"{TEMPLATE}.topologySpreadConstraints[0].topologyKey: Required value: can not be empty"
            ],
        ),
        (
            {
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}
                ]
            },
            [
                f'{TEMPLATE}.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": '
                'supported values: "DoNotSchedule", "ScheduleAnyway"'
            ],
        ),
        (
            {
                "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                    {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                ]
            },
            [
                f'{TEMPLATE}.topologySpreadConstraints[0].{{topologyKey, whenUnsatisfiable}}: Duplicate value: "{{zone, DoNotSchedule}}"'
            ],
        ),
        (
            {"ephemeralContainers": [{"name": "debug", "image": "busybox"}]},
            [
                f"{TEMPLATE}.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template"
            ],
        ),
    ],
)
def test_pod_spec_rules(spec, expected):
    obj = deployment()
    obj["spec"]["template"]["spec"] |= spec
    assert errors(obj) == expected


def test_pod_rules():
    assert errors(pod({"name": "a", "image": " a:1"})) == [
        'spec.containers[0].image: Invalid value: " a:1": must not have leading or trailing whitespace'
    ]
    assert errors(pod(activeDeadlineSeconds=0)) == [
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"
    ]
    assert errors(pod(ephemeralContainers=[{"name": "debug", "image": "busybox"}])) == [
        "spec.ephemeralContainers: Forbidden: cannot be set on create"
    ]
    # A Pod under hostNetwork gets its host ports from the container ports, so they match.
    assert (
        errors(
            pod({"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]}, hostNetwork=True)
        )
        == []
    )


def test_pod_updates():
    old = pod({"name": "a", "image": "a:1"}, tolerations=[{"key": "k", "operator": "Exists"}])
    assert (
        errors(changed(old, spec__containers_0_image="a:2", spec__activeDeadlineSeconds=60), old)
        == []
    )
    assert errors(changed(old, spec__containers_0_env=[{"name": "X", "value": "1"}]), old) == [
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)"
    ]
    assert errors(changed(old, spec__tolerations=[]), old) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    ]
    assert errors(changed(old, spec__containers=[old["spec"]["containers"][0]] * 2), old) == [
        'spec.containers[1].name: Duplicate value: "a"',
        "spec.containers: Forbidden: pod updates may not add or remove containers",
    ]


def test_bad_quantities_do_not_decode():
    with pytest.raises(DecodeError) as raised:
        default(with_container(resources={"limits": {"cpu": "one"}}))
    assert str(raised.value) == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )
    with pytest.raises(DecodeError) as raised:
        validate(with_container(resources={"limits": {"memory": "1K"}}))
    assert str(raised.value) == "unable to parse quantity's suffix"


# --- Validation: Service -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"ports": []}, ["spec.ports: Required value"]),
        ({"ports": [], "clusterIP": "None"}, []),
        (
            {"type": "Internal"},
            [
                'spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'
            ],
        ),
        (
            {"ports": [{"port": 0}]},
            [
                f"spec.ports[0].port: Invalid value: 0: {PORTS_RANGE}",
                f"spec.ports[0].targetPort: Invalid value: 0: {PORTS_RANGE}",
            ],
        ),
        (
            {"ports": [{"port": 80}, {"port": 81, "name": "b"}]},
            ["spec.ports[0].name: Required value"],
        ),
        (
            {"ports": [{"port": 80, "name": "HTTP"}]},
            [f'spec.ports[0].name: Invalid value: "HTTP": {LABEL}'],
        ),
        (
            {"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]},
            ['spec.ports[1].name: Duplicate value: "a"'],
        ),
        (
            {"ports": [{"port": 80, "protocol": "ICMP"}]},
            [
                'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'
            ],
        ),
        (
            {"ports": [{"port": 80, "targetPort": "Web_Port"}]},
            [
                'spec.ports[0].targetPort: Invalid value: "Web_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'
            ],
        ),
        (
            {"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]},
            [
                'spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,"NodePort":0}'
            ],
        ),
        ({"ports": [{"port": 53, "name": "a"}, {"port": 53, "name": "b", "protocol": "UDP"}]}, []),
        ({"selector": {"app": "web!"}}, [f'spec.selector: Invalid value: "web!": {LABEL_VALUE}']),
        (
            {"ports": [{"port": 80, "nodePort": 30080}]},
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        ),
        (
            {
                "type": "NodePort",
                "ports": [
                    {"port": 80, "name": "a", "nodePort": 30080},
                    {"port": 81, "name": "b", "nodePort": 30080},
                ],
            },
            ["spec.ports[1].nodePort: Duplicate value: 30080"],
        ),
        (
            {"sessionAffinity": "Sticky"},
            [
                'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"'
            ],
        ),
        (
            {"externalTrafficPolicy": "Local"},
            [
                'spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services'
            ],
        ),
        (
            {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
            ["spec.healthCheckNodePort: Required value"],
        ),
        (
            {
                "type": "LoadBalancer",
                "externalTrafficPolicy": "Local",
                "healthCheckNodePort": 30999,
            },
            [],
        ),
        (
            {"clusterIP": "ten.zero.zero.one"},
            [
                'spec.clusterIPs[0]: Invalid value: "ten.zero.zero.one": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'
            ],
        ),
        (
            {"clusterIP": "fd00::10", "ipFamilies": ["IPv4"]},
            [
                'spec.clusterIPs[0]: Invalid value: "fd00::10": expected an IPv4 value as indicated by `ipFamilies[0]`'
            ],
        ),
        (
            {"ipFamilies": ["IPv5"]},
            ['spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'],
        ),
        (
            {"type": "ExternalName", "ports": []},
            ["spec.externalName: Required value"],
        ),
        (
            {"type": "ExternalName", "externalName": "db.example.com.", "clusterIP": "10.0.0.1"},
            ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"],
        ),
        (
            {"type": "ExternalName", "externalName": "DB"},
            [f'spec.externalName: Invalid value: "DB": {SUBDOMAIN}'],
        ),
        (
            {"loadBalancerSourceRanges": ["10.0.0.0/8"]},
            [
                "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"
            ],
        ),
        (
            {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"]},
            [
                'spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'
            ],
        ),
        (
            {"internalTrafficPolicy": "Nearby"},
            [
                'spec.internalTrafficPolicy: Unsupported value: "Nearby": supported values: "Cluster", "Local"'
            ],
        ),
    ],
)
def test_service_rules(spec, expected):
    assert errors(service(**spec)) == expected


def test_a_service_name_is_a_dns_1035_label():
    assert errors(changed(service(), metadata__name="9lives")) == [
        'metadata.name: Invalid value: "9lives": a DNS-1035 label must consist of lower case alphanumeric '
        "characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
        "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    ]


def allocated(obj, ip="10.96.0.10"):
    obj = defaulted(obj)
    obj["spec"]["clusterIP"] = ip
    obj["spec"]["clusterIPs"] = [ip]
    return obj


def test_a_cluster_ip_may_not_change():
    old = allocated(service())
    moved = allocated(service(), "10.96.0.11")
    assert validate(moved, old) == [
        'spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set'
    ]
    # Turning the Service into an ExternalName one releases it.
    external = defaulted(service(type="ExternalName", externalName="db.example.com", ports=[]))
    assert validate(external, old) == []


def test_an_update_that_leaves_allocations_out_keeps_them():
    old = allocated(
        service(type="NodePort", ports=[{"port": 80, "name": "web", "nodePort": 30080}])
    )
    update = defaulted(service(type="NodePort", ports=[{"port": 80, "name": "web"}]))
    prepare_update(update, old)
    assert (update["spec"]["clusterIP"], update["spec"]["clusterIPs"]) == (
        "10.96.0.10",
        ["10.96.0.10"],
    )
    assert update["spec"]["ports"][0]["nodePort"] == 30080
    assert validate(update, old) == []
    # A client that changes only the singular field changes both.
    update = copy.deepcopy(old)
    update["spec"]["clusterIP"] = "10.96.0.99"
    prepare_update(update, old)
    assert update["spec"]["clusterIPs"] == ["10.96.0.99"]


def test_prepare_update_keeps_namespace_finalizers():
    old = defaulted(namespace())
    update = defaulted(namespace(spec={"finalizers": []}))
    update["spec"]["finalizers"] = []
    prepare_update(update, old)
    assert update["spec"] == {"finalizers": ["kubernetes"]}


# --- Validation: HorizontalPodAutoscaler ---------------------------------------------------------


def resource_metric(**target):
    return {"type": "Resource", "resource": {"name": "cpu", "target": target}}


METRICS = "spec.metrics[0]"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"minReplicas": 0},
            [
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
            ],
        ),
        (
            {"maxReplicas": 0},
            [
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`",
            ],
        ),
        (
            {"minReplicas": 5},
            ["spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"],
        ),
        ({"scaleTargetRef": {"kind": "Deployment"}}, ["spec.scaleTargetRef.name: Required value"]),
        (
            {"scaleTargetRef": {"kind": "apps/Deployment", "name": "web"}},
            ["spec.scaleTargetRef.kind: Invalid value: \"apps/Deployment\": may not contain '/'"],
        ),
        (
            {"metrics": [{"type": "Resource"}]},
            [
                f"{METRICS}.resource: Required value: must populate information for the given metric source"
            ],
        ),
        (
            {"metrics": [{"type": "Bogus"}]},
            [
                f'{METRICS}.type: Unsupported value: "Bogus": supported values: "ContainerResource", "External", "Object", "Pods", "Resource"'
            ],
        ),
        (
            {"metrics": [resource_metric(type="Utilization", averageUtilization=0)]},
            [
                f"{METRICS}.resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
            ],
        ),
        (
            {"metrics": [resource_metric(type="Utilization")]},
            [
                f"{METRICS}.resource.target.averageUtilization: Required value: must set either a target raw value or a target utilization"
            ],
        ),
        (
            {
                "metrics": [
                    resource_metric(type="Utilization", averageUtilization=50, averageValue="1")
                ]
            },
            [
                f"{METRICS}.resource.target.averageValue: Forbidden: may not set both a target raw value and a target utilization"
            ],
        ),
        (
            {"metrics": [resource_metric(type="Percent", averageUtilization=50)]},
            [
                f'{METRICS}.resource.target.type: Invalid value: "Percent": must be either Utilization, Value, or AverageValue'
            ],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "qps"},
                            "target": {"type": "AverageValue", "averageValue": "0"},
                        },
                    }
                ]
            },
            [f'{METRICS}.pods.target.averageValue: Invalid value: "0": must be positive'],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "qps"},
                            "target": {"type": "Value", "value": "10"},
                        },
                    }
                ]
            },
            [
                f"{METRICS}.pods.target.averageValue: Required value: must specify a positive target averageValue"
            ],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "External",
                        "external": {
                            "metric": {"name": ""},
                            "target": {"type": "Value", "value": "1"},
                        },
                    }
                ]
            },
            [f"{METRICS}.external.metric.name: Required value: must specify a metric name"],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": "qps"},
                            "target": {"type": "AverageValue", "averageValue": "10"},
                        },
                        "resource": {"name": "cpu"},
                    }
                ]
            },
            [f"{METRICS}.resource: Forbidden: must populate the given metric source only"],
        ),
        (
            {
                "metrics": [
                    {
                        "type": "ContainerResource",
                        "containerResource": {
                            "name": "cpu",
                            "container": "App",
                            "target": {"type": "Utilization", "averageUtilization": 60},
                        },
                    }
                ]
            },
            [f'{METRICS}.containerResource.container: Invalid value: "App": {LABEL}'],
        ),
        (
            {"behavior": {"scaleUp": {"policies": []}}},
            ["spec.behavior.scaleUp.policies: Required value: must specify at least one Policy"],
        ),
        (
            {
                "behavior": {
                    "scaleDown": {
                        "policies": [{"type": "Nodes", "value": 0, "periodSeconds": 1801}]
                    }
                }
            },
            [
                'spec.behavior.scaleDown.policies[0].type: Unsupported value: "Nodes": supported values: "Percent", "Pods"',
                "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero",
                "spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800",
            ],
        ),
        (
            {
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 3601, "selectPolicy": "Random"}
                }
            },
            [
                "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600",
                'spec.behavior.scaleUp.selectPolicy: Unsupported value: "Random": supported values: "Disabled", "Max", "Min"',
            ],
        ),
        (
            {"behavior": {"scaleDown": {"stabilizationWindowSeconds": -1}}},
            [
                "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: -1: must be greater than or equal to zero"
            ],
        ),
        (
            {
                "behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": 600, "selectPolicy": "Disabled"}
                }
            },
            [],
        ),
    ],
)
def test_hpa_rules(spec, expected):
    assert errors(hpa(**spec)) == expected


def test_hpa_scale_to_zero_is_only_kept_where_it_already_is():
    old = defaulted(hpa())
    old["spec"]["minReplicas"] = 0
    assert validate(defaulted(hpa(minReplicas=0)), old) == [
        "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas"
    ]


# --- Validation: PodDisruptionBudget -------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"minAvailable": 1, "maxUnavailable": "10%"},
            [
                'spec: Invalid value: {"MinAvailable":1,"Selector":{"matchLabels":{"app":"web"}},"MaxUnavailable":"10%",'
                '"UnhealthyPodEvictionPolicy":null}: minAvailable and maxUnavailable cannot be both set'
            ],
        ),
        (
            {"minAvailable": "150%"},
            ['spec.minAvailable: Invalid value: "150%": must not be greater than 100%'],
        ),
        (
            {"maxUnavailable": -1},
            ["spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"],
        ),
        ({"maxUnavailable": "half"}, [f'spec.maxUnavailable: Invalid value: "half": {PERCENT}']),
        ({"minAvailable": 0}, []),
        (
            {"unhealthyPodEvictionPolicy": "Sometimes"},
            [
                'spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes": supported values: "AlwaysAllow", "IfHealthyBudget"'
            ],
        ),
        ({"unhealthyPodEvictionPolicy": "AlwaysAllow"}, []),
        (
            {"selector": {"matchLabels": {"app": "?"}}},
            [f'spec.selector.matchLabels: Invalid value: "?": {LABEL_VALUE}'],
        ),
    ],
)
def test_pdb_rules(spec, expected):
    assert errors(pdb(**spec)) == expected


def test_pdb_metadata_is_only_checked_once_the_spec_passes():
    # The strategy checks no name rule of its own: only the generic path-segment rules apply.
    assert errors(changed(pdb(), metadata__name="Web_PDB")) == []
    assert errors(changed(pdb(), metadata__name="a/b")) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"
    ]
    bad = changed(pdb(minAvailable="150%"), metadata__labels={"bad key": "x"})
    assert errors(bad) == [
        'spec.minAvailable: Invalid value: "150%": must not be greater than 100%'
    ]


# --- Validation: Secret, ConfigMap, Namespace ------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (secret({"a b": "eA=="}), [f'data[a b]: Invalid value: "a b": {CONFIG_KEY}']),
        (secret({"..": "eA=="}), ["data[..]: Invalid value: \"..\": must not be '..'"]),
        (secret({"..x": "eA=="}), ["data[..x]: Invalid value: \"..x\": must not start with '..'"]),
        (
            secret({"k": base64.b64encode(bytes(1024 * 1024 + 1)).decode()}),
            ["data: Too long: may not be more than 1048576 bytes"],
        ),
        (
            secret(type="kubernetes.io/tls"),
            ["data[tls.crt]: Required value", "data[tls.key]: Required value"],
        ),
        (secret({"tls.crt": "eA==", "tls.key": "eA=="}, type="kubernetes.io/tls"), []),
        (
            secret(type="kubernetes.io/dockerconfigjson"),
            ["data[.dockerconfigjson]: Required value"],
        ),
        (
            secret(type="kubernetes.io/basic-auth"),
            ["data[username]: Required value", "data[password]: Required value"],
        ),
        (
            secret(type="kubernetes.io/service-account-token"),
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
        ),
        (config_map({"a b": "x"}), [f'data[a b]: Invalid value: "a b": {CONFIG_KEY}']),
        (
            config_map({"k": "x"}, binaryData={"k": "eA=="}),
            ['data[k]: Invalid value: "k": duplicate of key present in binaryData'],
        ),
        (
            config_map({"k": "x" * (1024 * 1024 + 1)}),
            [": Too long: may not be more than 1048576 bytes"],
        ),
        (
            namespace(spec={"finalizers": ["cleanup"]}),
            [
                'spec.finalizers: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified'
            ],
        ),
        (namespace(metadata={"name": "team-a", "namespace": "ignored"}), []),
    ],
)
def test_secret_config_map_and_namespace_rules(obj, expected):
    assert errors(obj) == expected


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        ("abc$", 3),
        ("abc", 0),
        ("ab=c", 2),
        ("a===", 1),
        ("YQ==YQ==", 4),
        ("YQ=", 3),
        ("YWJj\nZA=", 8),
    ],
)
def test_secret_data_must_be_base64(data, offset):
    with pytest.raises(DecodeError) as raised:
        default(secret({"k": data}))
    assert str(raised.value) == f"illegal base64 data at input byte {offset}"


def test_secret_data_with_newlines_decodes():
    assert errors(secret({"k": "YWJj\r\nZA=="})) == []


def test_secret_and_config_map_updates():
    tls = secret({"tls.crt": "eA==", "tls.key": "eA=="}, type="kubernetes.io/tls")
    assert errors(changed(tls, type="Opaque"), tls) == [
        'type: Invalid value: "Opaque": field is immutable'
    ]
    # Leaving the type out defaults it to Opaque: also a change.
    untyped = changed(tls)
    del untyped["type"]
    assert errors(untyped, tls) == ['type: Invalid value: "Opaque": field is immutable']
    frozen = secret(immutable=True)
    assert errors(changed(frozen, data={"k": "eQ=="}), frozen) == [
        "data: Forbidden: field is immutable when `immutable` is set"
    ]
    assert errors(changed(frozen, immutable=False), frozen) == [
        "immutable: Forbidden: field is immutable when `immutable` is set"
    ]
    frozen_map = config_map(immutable=True)
    assert errors(changed(frozen_map, binaryData={"b": "eA=="}), frozen_map) == [
        "binaryData: Forbidden: field is immutable when `immutable` is set"
    ]
    assert errors(changed(config_map(), data={"k": "changed"}), config_map()) == []


def test_repeated_messages_are_reported_once():
    # Both the type check and the metric-source switch reject an unknown type upstream.
    reported = errors(hpa(metrics=[{"type": "Bogus"}]))
    assert len(reported) == len(set(reported)) == 1
