"""Write `crd_schemas.json` here: the shape of KubeRay's RayCluster and RayJob (ray.io/v1), trimmed
from the CRDs of one KubeRay release, for `tests/test_launch_files.py`.

    git clone https://github.com/ray-project/kuberay && git -C kuberay checkout v1.7.0
    python tests/data/kuberay/extract_schema.py kuberay [v1.7.0]

From each CRD (`ray-operator/config/crd/bases/ray.io_rayclusters.yaml`, `ray.io_rayjobs.yaml`) it
keeps the `spec` subtree of the served v1 version's openAPIV3Schema (`status` is the operator's to
write), and of every schema node only what decides whether a manifest's field exists and has the
right kind of value: type, properties, items, additionalProperties, required, enum, format and
Kubernetes' int-or-string / preserve-unknown-fields marks. Descriptions go. A subtree that occurs
more than once (a Pod template in the head group, the worker groups, the RayJob's cluster and its
submitter) is stored once under `definitions` and referenced as {"$ref": "<key>"}.
"""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import yaml

CRDS = {"RayCluster": "ray-operator/config/crd/bases/ray.io_rayclusters.yaml",
        "RayJob": "ray-operator/config/crd/bases/ray.io_rayjobs.yaml"}
KEEP = ("type", "required", "enum", "format", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields")
SHARED_ABOVE = 2000   # characters of JSON: smaller repeated subtrees stay inline
OUT = Path(__file__).with_name("crd_schemas.json")


def trim(node: dict) -> dict:
    out = {k: node[k] for k in KEEP if k in node}
    if "properties" in node:
        out["properties"] = {name: trim(child) for name, child in sorted(node["properties"].items())}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            out[key] = trim(node[key])
        elif key in node:
            out[key] = node[key]
    if "anyOf" in node:
        out["anyOf"] = [trim(child) for child in node["anyOf"]]
    return out


def children(node: dict):
    """The schema nodes directly below a schema node, with how to put a replacement back."""
    for name, child in node.get("properties", {}).items():
        yield child, lambda new, name=name: node["properties"].__setitem__(name, new)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield node[key], lambda new, key=key: node.__setitem__(key, new)
    for i, child in enumerate(node.get("anyOf", [])):
        yield child, lambda new, i=i: node["anyOf"].__setitem__(i, new)


def share(schemas: dict) -> tuple[dict, dict]:
    """Store each schema node that occurs more than once (and is large) once, under its content hash."""
    counts: dict[str, int] = {}

    def count(node: dict) -> None:
        text = json.dumps(node, sort_keys=True)
        if len(text) > SHARED_ABOVE:
            counts[text] = counts.get(text, 0) + 1
        for child, _ in children(node):
            count(child)

    for schema in schemas.values():
        count(schema)
    definitions: dict[str, dict] = {}

    def replace(node: dict) -> dict:
        text = json.dumps(node, sort_keys=True)
        for child, put in list(children(node)):
            put(replace(child))
        if counts.get(text, 0) > 1:
            key = hashlib.sha256(text.encode()).hexdigest()[:12]
            definitions.setdefault(key, node)
            return {"$ref": key}
        return node

    return {kind: replace(schema) for kind, schema in schemas.items()}, definitions


def main(checkout: str, release: str = "v1.7.0") -> None:
    repo = Path(checkout)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", f"{release}^{{commit}}"], capture_output=True,
                            text=True, check=True).stdout.strip()
    schemas = {}
    for kind, path in CRDS.items():
        text = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, text=True,
                              check=True).stdout
        crd = yaml.safe_load(text)
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        assert version["served"] and version["storage"], f"{kind}: v1 is not the served storage version"
        schemas[kind] = trim(version["schema"]["openAPIV3Schema"]["properties"]["spec"])
    kinds, definitions = share(schemas)
    OUT.write_text(json.dumps({
        "source": {"repository": "https://github.com/ray-project/kuberay", "release": release, "commit": commit,
                   "paths": list(CRDS.values()), "apiVersion": "ray.io/v1",
                   "extracted_by": "python tests/data/kuberay/extract_schema.py <kuberay checkout> " + release},
        "spec": kinds, "definitions": definitions}, indent=1, sort_keys=True) + "\n")
    print(f"{OUT}: {OUT.stat().st_size} bytes, {len(definitions)} shared subtrees, KubeRay {release} ({commit[:12]})")


if __name__ == "__main__":
    main(*sys.argv[1:])
