"""The cluster configs users start from: cluster.yaml against the Ray autoscaler's own schema and defaults, and the
KubeRay manifests (kuberay/) against the fields KubeRay's ray.io/v1 API reference documents, written out below as a
JSON schema that refuses any other field. Each check also refuses a broken copy, so none of them passes by default."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def autoscaler_check(config: dict) -> None:
    """What `ray up` does to a config before it starts anything: fill in the defaults, then validate against
    ray/autoscaler/ray-schema.json and the autoscaler's own rules."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def test_cluster_yaml_validates_against_the_ray_autoscalers_schema():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    autoscaler_check(config)
    assert config["head_node_type"] in config["available_node_types"]
    assert any("'.[gpu,train,serve,dev]'" in command for command in config["setup_commands"])
    misspelled = copy.deepcopy(config)
    misspelled["available_node_types"]["gpu_worker"]["min_workrs"] = 1
    with pytest.raises(jsonschema.ValidationError, match="min_workrs"):
        autoscaler_check(misspelled)
    unknown_head = dict(config, head_node_type="gpu_head")
    with pytest.raises(ValueError, match="head_node_type"):
        autoscaler_check(unknown_head)


# ------------------------------------------------------------------------------------------------------- KubeRay
# KubeRay's API reference for ray.io/v1 (docs/reference/api.md, KubeRay 1.4): every field of the objects our manifests
# use. Kubernetes' own types inside them (pod templates, resources) are checked for what KubeRay needs of them.


def _strict(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}  # KubeRay wants string values here
_CONTAINER = {"type": "object", "required": ["name", "image"],
              "properties": {"name": {"type": "string"}, "image": {"type": "string"},
                             "resources": _strict({"requests": {"type": "object"}, "limits": {"type": "object"}})}}
_POD_TEMPLATE = _strict({"metadata": {"type": "object"},
                         "spec": {"type": "object", "required": ["containers"],
                                  "properties": {"containers": {"type": "array", "minItems": 1, "items": _CONTAINER}}}},
                        ("spec",))
_AUTOSCALER_OPTIONS = _strict({
    "resources": {"type": "object"}, "image": {"type": "string"}, "imagePullPolicy": {"type": "string"},
    "securityContext": {"type": "object"}, "idleTimeoutSeconds": {"type": "integer"},
    "upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]}, "version": {"enum": ["v1", "v2"]},
    "env": {"type": "array"}, "envFrom": {"type": "array"}, "volumeMounts": {"type": "array"}})
_HEAD_GROUP = _strict({"template": _POD_TEMPLATE, "headService": {"type": "object"},
                       "enableIngress": {"type": "boolean"}, "rayStartParams": _STRING_MAP,
                       "serviceType": {"type": "string"}}, ("template",))
_WORKER_GROUP = _strict({
    "suspend": {"type": "boolean"}, "groupName": {"type": "string"}, "replicas": {"type": "integer", "minimum": 0},
    "minReplicas": {"type": "integer", "minimum": 0}, "maxReplicas": {"type": "integer", "minimum": 0},
    "idleTimeoutSeconds": {"type": "integer"}, "rayStartParams": _STRING_MAP, "template": _POD_TEMPLATE,
    "scaleStrategy": _strict({"workersToDelete": {"type": "array", "items": {"type": "string"}}}),
    "numOfHosts": {"type": "integer", "minimum": 1}}, ("groupName", "template"))
_RAY_CLUSTER_SPEC = _strict({
    "suspend": {"type": "boolean"}, "managedBy": {"type": "string"}, "autoscalerOptions": _AUTOSCALER_OPTIONS,
    "headServiceAnnotations": _STRING_MAP, "enableInTreeAutoscaling": {"type": "boolean"},
    "gcsFaultToleranceOptions": {"type": "object"}, "headGroupSpec": _HEAD_GROUP, "rayVersion": {"type": "string"},
    "workerGroupSpecs": {"type": "array", "items": _WORKER_GROUP}}, ("headGroupSpec",))
_RAY_JOB_SPEC = _strict({
    "activeDeadlineSeconds": {"type": "integer", "minimum": 1}, "backoffLimit": {"type": "integer", "minimum": 0},
    "rayClusterSpec": _RAY_CLUSTER_SPEC, "submitterPodTemplate": _POD_TEMPLATE, "metadata": _STRING_MAP,
    "clusterSelector": _STRING_MAP, "submitterConfig": _strict({"backoffLimit": {"type": "integer"}}),
    "managedBy": {"type": "string"}, "deletionStrategy": {"type": "object"}, "entrypoint": {"type": "string"},
    "runtimeEnvYAML": {"type": "string"}, "jobId": {"type": "string"},
    "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode"]},
    "entrypointResources": {"type": "string"},
    "entrypointNumCpus": {"type": "number"}, "entrypointNumGpus": {"type": "number"},
    "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0}, "shutdownAfterJobFinishes": {"type": "boolean"},
    "suspend": {"type": "boolean"}, "schedule": {"type": "string"}}, ("entrypoint",))
KUBERAY_V1 = {
    "RayCluster": _strict({"apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayCluster"},
                           "metadata": {"type": "object", "required": ["name"]}, "spec": _RAY_CLUSTER_SPEC},
                          ("apiVersion", "kind", "metadata", "spec")),
    "RayJob": _strict({"apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayJob"},
                       "metadata": {"type": "object", "required": ["name"]}, "spec": _RAY_JOB_SPEC},
                      ("apiVersion", "kind", "metadata", "spec")),
}


def manifest(name: str) -> dict:
    return yaml.safe_load((REPO / "kuberay" / name).read_text())


def cluster_spec(document: dict) -> dict:
    return document["spec"]["rayClusterSpec"] if document["kind"] == "RayJob" else document["spec"]


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_manifests_use_only_the_fields_kuberay_documents(name):
    document = manifest(name)
    jsonschema.validate(document, KUBERAY_V1[document["kind"]])
    broken = copy.deepcopy(document)
    cluster_spec(broken)["workerGroupSpecs"][0]["replica"] = 2  # a misspelled field is refused
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        jsonschema.validate(broken, KUBERAY_V1[document["kind"]])
    numeric = copy.deepcopy(document)
    cluster_spec(numeric)["headGroupSpec"]["rayStartParams"]["num-gpus"] = 0  # KubeRay wants strings there
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(numeric, KUBERAY_V1[document["kind"]])


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_clusters_have_a_gpu_worker_group_and_the_pinned_ray(name):
    import ray

    spec = cluster_spec(manifest(name))
    assert spec["rayVersion"] == ray.__version__
    gpu_groups = [g for g in spec["workerGroupSpecs"]
                  if any(c["resources"]["limits"].get("nvidia.com/gpu") for c in g["template"]["spec"]["containers"])]
    assert gpu_groups and all(g["minReplicas"] <= g["replicas"] <= g["maxReplicas"] for g in gpu_groups)
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    containers = [c for g in groups for c in g["template"]["spec"]["containers"]]
    assert all(c["securityContext"]["privileged"] for c in containers)  # the sandbox's namespaces


def test_the_kuberay_image_installs_the_project_on_the_pinned_ray_and_the_job_runs_one_of_ours():
    import ray

    dockerfile = (REPO / "kuberay" / "Dockerfile").read_text()
    assert re.search(rf"^FROM rayproject/ray:{re.escape(ray.__version__)}-py311-gpu$", dockerfile, re.M)
    assert "pip install --no-cache-dir -e '.[gpu,train,serve]'" in dockerfile and "bubblewrap" in dockerfile
    pin = re.search(r'"ray\[[^"]*\]>=([\d.]+),<([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert pin and ray.__version__.startswith(pin.group(1).rsplit(".", 1)[0])
    job = manifest("rayjob.yaml")["spec"]
    script = re.search(r"python /home/ray/codeloop/(jobs/\w+\.py)", job["entrypoint"]).group(1)
    assert (REPO / script).is_file()
    assert isinstance(yaml.safe_load(job["runtimeEnvYAML"]), dict)
    from jobs.evaluate import EvaluateConfig
    from raylib.config import load_config

    arguments = job["entrypoint"].split(script, 1)[1].split()  # the job accepts its arguments as written
    load_config(EvaluateConfig, arguments)
