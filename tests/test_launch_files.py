"""The launch files keep their promises, read as files (no cluster here; the Slurm drill,
`python -m scripts.slurm_drill`, runs the batch script on a real single-node Slurm).

- KubeRay (tune/cluster/kuberay/): every field of the RayCluster and RayJobs, and of the Pod
  templates of the MLflow Deployment and the PostgreSQL StatefulSet, exists in KubeRay v1.7.0's
  CRD schema with the right kind of value (tests/data/kuberay/crd_schemas.json, extracted by
  tests/data/kuberay/extract_schema.py); a misspelled field is reported. Then what they promise:
  the Ray token from a Secret on every Ray container, a head with `num-cpus: "0"`, GPU workers,
  `lottery sweep` / `lottery resume` as the RayJobs' entrypoints, MLflow on PostgreSQL with
  artifacts in S3 and no password on a command line.
- Slurm (tune/cluster/slurm/lottery.sbatch): `bash -n`, and its Ray node function run with a
  stand-in `ray`: a head gives trials its CPUs and GPUs only when asked to.
- `ray up` (aws-gpu.yaml, local-machines.yaml): Ray's own schema, the token on every node's start
  command, a pinned image, the head with `--num-cpus=0`, MLflow on PostgreSQL; the Dockerfile.
"""
import json
import os
import re
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tune" / "cluster"
KUBERAY = CLUSTER / "kuberay"
SCHEMAS = json.loads((ROOT / "tests" / "data" / "kuberay" / "crd_schemas.json").read_text())
SBATCH = CLUSTER / "slurm" / "lottery.sbatch"
METADATA = {"name", "generateName", "namespace", "labels", "annotations"}


# ------------------------------------------------------------------ a small schema checker

def resolve(schema: dict) -> dict:
    return SCHEMAS["definitions"][schema["$ref"]] if "$ref" in schema else schema


def problems(value, schema: dict, path: str) -> list[str]:
    """What in `value` the (trimmed) openAPIV3Schema does not allow: unknown fields, wrong kinds of
    value, values outside an enum, missing required fields."""
    schema = resolve(schema)
    if "anyOf" in schema and not any(not problems(value, option, path) for option in schema["anyOf"]):
        return [f"{path}: {value!r} matches none of its allowed forms"]
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(value, str | int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is neither an integer nor a string"]
    kind = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": int | float}
    if kind in checks and (not isinstance(value, checks[kind]) or (kind in ("integer", "number") and
                                                                    isinstance(value, bool))):
        return [f"{path}: {value!r} is not of type {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} is not one of {schema['enum']}"]
    found = []
    if isinstance(value, dict):
        known = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            if key in known:
                found += problems(child, known[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += problems(child, extra, f"{path}.{key}")
            elif not (extra is True or schema.get("x-kubernetes-preserve-unknown-fields")):
                found.append(f"{path}.{key}: no such field (allowed: {', '.join(sorted(known)) or 'none'})")
        found += [f"{path}.{key}: required, missing" for key in schema.get("required", []) if key not in value]
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += problems(item, schema["items"], f"{path}[{i}]")
    return found


def pod_template_schema() -> dict:
    """Kubernetes' PodTemplateSpec as KubeRay's CRD embeds it (the head group's template)."""
    cluster = resolve(SCHEMAS["spec"]["RayCluster"])
    return resolve(resolve(cluster["properties"]["headGroupSpec"])["properties"]["template"])


def manifest_problems(doc: dict) -> list[str]:
    """Every field of a KubeRay resource, or of a Deployment's / StatefulSet's Pod template."""
    kind = doc.get("kind", "?")
    found = [f"{kind}.metadata.{key}: not checked here" for key in doc.get("metadata", {}) if key not in METADATA]
    if kind in ("RayCluster", "RayJob"):
        if doc.get("apiVersion") != SCHEMAS["source"]["apiVersion"]:
            found.append(f"{kind}.apiVersion: {doc.get('apiVersion')!r}, not {SCHEMAS['source']['apiVersion']}")
        found += problems(doc["spec"], SCHEMAS["spec"][kind], f"{kind}.spec")
    elif kind in ("Deployment", "StatefulSet"):
        found += problems(doc["spec"]["template"], pod_template_schema(), f"{kind}.spec.template")
    return found


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((KUBERAY / name).read_text()) if d]


def all_documents() -> list[dict]:
    return [d for path in sorted(KUBERAY.glob("*.yaml")) for d in documents(path.name)]


def of_kind(kind: str) -> list[dict]:
    return [d for d in all_documents() if d["kind"] == kind]


# ------------------------------------------------------------------ KubeRay

def test_the_schema_is_one_pinned_kuberay_release():
    source = SCHEMAS["source"]
    assert source["release"] == "v1.7.0" and re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert source["paths"] == ["ray-operator/config/crd/bases/ray.io_rayclusters.yaml",
                               "ray-operator/config/crd/bases/ray.io_rayjobs.yaml"]
    assert "extract_schema.py" in source["extracted_by"]
    assert {"headGroupSpec", "workerGroupSpecs", "authOptions"} <= set(resolve(SCHEMAS["spec"]["RayCluster"])["properties"])


@pytest.mark.parametrize("name", sorted(p.name for p in KUBERAY.glob("*.yaml")))
def test_every_field_of_the_manifests_is_in_the_crd_schema(name):
    docs = documents(name)
    assert docs
    found = [p for doc in docs for p in manifest_problems(doc)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("mistake, reported", [
    (lambda c: c["spec"]["headGroupSpec"].__setitem__("rayStartParms", {}), "RayCluster.spec.headGroupSpec.rayStartParms: no such field"),
    (lambda c: c["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0].__setitem__("imagePullPolicyy", "Always"),
     "containers[0].imagePullPolicyy: no such field"),
    (lambda c: c["spec"]["headGroupSpec"]["rayStartParams"].__setitem__("num-cpus", 0), "is not of type string"),
    (lambda c: c["spec"]["authOptions"].__setitem__("mode", "tokens"), "is not one of ['disabled', 'token']"),
    (lambda c: c["spec"]["workerGroupSpecs"][0].pop("groupName"), "groupName: required, missing"),
])
def test_a_mistake_is_reported(mistake, reported):
    (cluster,) = documents("raycluster.yaml")
    assert manifest_problems(cluster) == []
    mistake(cluster)
    assert any(reported in p for p in manifest_problems(cluster)), manifest_problems(cluster)


def test_a_misspelled_field_of_a_pod_template_is_reported():
    (deployment,) = [d for d in documents("mlflow.yaml") if d["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRefs"] = {}
    assert any("secretKeyRefs: no such field" in p for p in manifest_problems(deployment))


def containers(pod_spec: dict) -> list[dict]:
    return pod_spec["containers"]


def test_the_ray_cluster_keeps_its_promises():
    (cluster,) = of_kind("RayCluster")
    spec = cluster["spec"]
    assert spec["rayVersion"] == version("ray")
    assert spec["authOptions"] == {"mode": "token", "secretName": "lottery-ray-token"}
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"             # no trial beside the driver
    groups = [head["template"]["spec"], *(g["template"]["spec"] for g in spec["workerGroupSpecs"])]
    for pod in groups:
        for container in containers(pod):
            env = {e["name"]: e for e in container["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token"
            assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "lottery-ray-token", "key": "auth_token"}
            assert "value" not in env["MLFLOW_TRACKING_PASSWORD"]     # from a Secret
            assert re.fullmatch(r"[^:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})", container["image"])
            assert not container["image"].endswith(":latest")
    gpus = [g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu") for g in spec["workerGroupSpecs"]]
    assert gpus and all(gpus)


def test_the_ray_jobs_run_lottery_on_that_cluster():
    (cluster,) = of_kind("RayCluster")
    jobs = {d["metadata"]["generateName"]: d["spec"] for d in of_kind("RayJob")}
    assert set(jobs) == {"lottery-sweep-", "lottery-resume-"}
    for spec in jobs.values():
        assert spec["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
        assert spec["shutdownAfterJobFinishes"] is False
        assert "--storage s3://" in spec["entrypoint"] and "--results-dir /shared/" in spec["entrypoint"]
    assert jobs["lottery-sweep-"]["entrypoint"].startswith("lottery sweep /home/ray/block-tickets/tune/sweeps/")
    assert jobs["lottery-resume-"]["entrypoint"].startswith("lottery resume ")


def test_mlflow_runs_on_postgresql_with_artifacts_in_s3_and_no_password_in_its_command():
    (deployment,) = of_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    command = " ".join(container["command"] + container["args"])
    assert "mlflow server --app-name basic-auth" in command
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "lottery-mlflow-db"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"].startswith("s3://")
    for name in ("PGPASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert "valueFrom" in env[name] and "value" not in env[name]
    assert "password" not in command.lower().replace("pgpassword", "")
    (postgres,) = of_kind("StatefulSet")
    assert postgres["spec"]["template"]["spec"]["containers"][0]["image"].startswith("postgres:16")
    (service,) = [s for s in of_kind("Service") if s["metadata"]["name"] == "lottery-mlflow"]
    assert service["spec"]["type"] == "ClusterIP"


# ------------------------------------------------------------------ Slurm

def test_the_batch_script_parses_and_says_what_it_promises():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)
    text = SBATCH.read_text()
    assert text.startswith("#!/bin/bash\n") and "\nset -euo pipefail\n" in text
    assert re.search(r"^#SBATCH --ntasks-per-node=1", text, re.M)
    assert "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=" in text and "umask 077" in text
    assert "trap cleanup EXIT" in text and 'rm -f "$JOB_DIR/ray-token"' in text
    assert "lottery resume" in text and "lottery sweep" in text and "LOTTERY_RESUME" in text
    assert "--storage \"$STORAGE\"" in text and "mlflow server --app-name basic-auth" in text
    # the MLflow admin's password reaches the server as an environment variable, not an argument
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=$MLFLOW_TRACKING_PASSWORD \\\n" in text


def ray_node_arguments(tmp_path: Path, role: str, trials: str, **env) -> list[str]:
    """What the batch script's Ray node function passes to `ray start` (a stand-in `ray` prints it)."""
    function = re.search(r"^ray_node\(\) \{.*?^\}$", SBATCH.read_text(), re.M | re.S).group(0)
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "ray").write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
    (fake / "ray").chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    done = subprocess.run(["bash", "-c", f"{function}\nray_node {role} {trials}"], capture_output=True, text=True,
                          env={**clean, "PATH": f"{fake}:{os.environ['PATH']}", "LOTTERY_RAY_TMP": "/tmp/ray-1",
                               "LOTTERY_HEAD_IP": "10.0.0.5", "LOTTERY_RAY_PORT": "6380",
                               "LOTTERY_RAY_ADDRESS": "10.0.0.5:6380", **env}, check=True)
    return done.stdout.split()


def value(arguments: list[str], flag: str) -> str:
    return arguments[arguments.index(flag) + 1]


def test_the_head_gives_trials_its_cpus_and_gpus_only_when_asked(tmp_path):
    slurm = {"SLURM_CPUS_PER_TASK": "16", "SLURM_GPUS_ON_NODE": "4"}
    alone = ray_node_arguments(tmp_path, "head", "yes", **slurm)          # a one-node allocation
    assert (value(alone, "--num-cpus"), value(alone, "--num-gpus")) == ("16", "4")
    assert "--head" in alone and value(alone, "--port") == "6380" and "--block" in alone
    beside = ray_node_arguments(tmp_path, "head", "no", **slurm)          # workers on other nodes
    assert (value(beside, "--num-cpus"), value(beside, "--num-gpus")) == ("0", "0")
    worker = ray_node_arguments(tmp_path, "worker", "", **slurm)
    assert value(worker, "--address") == "10.0.0.5:6380" and value(worker, "--num-gpus") == "4"
    assert "--head" not in worker
    text = SBATCH.read_text()   # the choice: yes in a one-node allocation, no with workers, unless told
    assert 'auto) if [ ${#WORKERS[@]} -eq 0 ]; then HEAD_TRIALS=yes; else HEAD_TRIALS=no; fi ;;' in text


# ------------------------------------------------------------------ ray up

def ray_up(name: str) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((CLUSTER / name).read_text()))
    validate_config(config)   # Ray's own schema
    return config


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "local-machines.yaml"])
def test_ray_up_files_put_the_token_on_every_node_and_no_trial_on_the_head(name):
    config = ray_up(name)
    head = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    workers = [c for c in config["worker_start_ray_commands"] if "ray start" in c]
    for command in head + workers:
        assert "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$HOME/.lottery/ray-auth-token;" in command
    assert any("--num-cpus=0" in c and "--num-gpus=0" in c for c in head)
    assert any(k.endswith("/.lottery/ray-auth-token") and v == "~/.lottery/ray-auth-token"
               for k, v in config["file_mounts"].items())
    (server,) = [c for c in config["head_start_ray_commands"] if "mlflow server" in c]
    assert '--backend-store-uri "$MLFLOW_BACKEND_STORE_URI"' in server   # PostgreSQL: ~/.lottery/mlflow-db
    assert "sqlite" not in json.dumps(config)
    assert any(". ~/.lottery/mlflow-db;" in c for c in config["head_setup_commands"])
    assert any("pgpass" in c or "mlflow_db.py" in c for c in config["head_setup_commands"])


def test_the_aws_cluster_runs_a_pinned_image_and_its_python():
    config = ray_up("aws-gpu.yaml")
    image = config["docker"]["image"]
    assert re.fullmatch(r"[^:@\s]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image) and not image.endswith(":latest")
    text = (CLUSTER / "aws-gpu.yaml").read_text()
    assert "python3.11" not in text and "-m venv" not in text and "venv/bin" not in text   # the image's Python
    assert "pip install -q --no-deps -e ~/block-tickets" in config["setup_commands"]
    (server,) = [c for c in config["head_start_ray_commands"] if "mlflow server" in c]
    assert "--artifacts-destination s3://" in server
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0, "GPU": 0}


def test_the_dockerfile_pins_its_base_and_installs_the_project():
    text = (CLUSTER / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert "pip install . " in text and "pip install --no-deps ." in text
    assert re.search(r"^USER ray$", text, re.M)
    assert ".venv" in (CLUSTER / "Dockerfile.dockerignore").read_text().split()


def test_pgpass_lines_escape_and_refuse_a_password_in_the_uri():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mlflow_db", CLUSTER / "mlflow_db.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines = module.pgpass_lines(["postgresql://mlflow@db.example:5432/mlflow?sslmode=require", "sqlite:///x.db",
                                 "postgresql://mlflow@db.example:5432/mlflow_auth"],
                                {"username": "admin", "password": "a:b\\c"})
    assert lines == ["db.example:5432:*:mlflow:a\\:b\\\\c"]   # every database of that server, once
    with pytest.raises(SystemExit):
        module.pgpass_lines(["postgresql://mlflow:secret@db.example/mlflow"], {"password": "x"})
