"""What the drills read back: MLflow's runs and metric histories, the bucket, Ray Tune's results in
the bucket, the files on a node's private disk; and the arithmetic of logged metric points (pure)."""
import json
from collections import Counter
from pathlib import Path

# --- metric points (pure) ---------------------------------------------------------------------


def epoch_keys(histories: dict[str, list[tuple[int, int]]], epochs: int) -> set[str]:
    """The per-epoch metric keys of a run: those with a point at the last epoch's step (final
    metrics are logged at step 0 only). `histories`: key -> [(step, timestamp ms)]."""
    if epochs < 2:
        raise ValueError("per-epoch keys are told from final ones only with 2 or more epochs")
    return {key for key, points in histories.items() if any(step == epochs - 1 for step, _ in points)}


def epoch_points(points: list[tuple[int, int]], epochs: int, final_after_ms: int | None) -> list[int]:
    """The steps of a key's per-epoch points: all its points, less a final metric of the same name
    (step 0, logged after the last epoch: timestamp > `final_after_ms`)."""
    return sorted(step for step, ts in points
                  if not (step == 0 and final_after_ms is not None and ts > final_after_ms))


def count_metric_points(runs: list[dict[str, list[tuple[int, int]]]], epochs: int,
                        keys: set[str] | None = None, starts: list[int] | None = None) -> dict:
    """Per-epoch metric points of `runs` (each: key -> [(step, timestamp ms)]) against what
    `epochs` epochs of every per-epoch key make: expected = Σ runs (epochs − start) × keys, where a
    run trains from epoch `start` (0; a ticket rewound to θ_i from i). Duplicates are a step logged
    twice for one key; missing a step never logged."""
    if keys is None:
        keys = set().union(*(epoch_keys(h, epochs) for h in runs)) if runs else set()
    starts = list(starts) if starts is not None else [0] * len(runs)
    logged, expected, duplicates, missing = 0, 0, [], []
    for index, (histories, start) in enumerate(zip(runs, starts, strict=True)):
        expected += (epochs - start) * len(keys)
        last = [ts for key in keys for step, ts in histories.get(key, []) if step == epochs - 1]
        final_after = max(last) if last else None
        for key in sorted(keys):
            steps = epoch_points(histories.get(key, []), epochs, final_after)
            logged += len(steps)
            seen = Counter(steps)
            duplicates += [(index, key, s) for s, n in sorted(seen.items()) if n > 1]
            missing += [(index, key, s) for s in range(start, epochs) if s not in seen]
            duplicates += [(index, key, s) for s in seen if s < start]   # before its start: not its own
    return {"runs": len(runs), "epochs": epochs, "keys": len(keys), "expected": expected,
            "logged": logged, "duplicates": duplicates, "missing": missing}


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at one moment."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    best = now = 0
    for _, change in events:
        now += change
        best = max(best, now)
    return best


def server_log_problems(text: str) -> dict[str, int]:
    """Counts in an MLflow server log: requests answered, HTTP 5xx answers, 'database is locked'."""
    lines = text.splitlines()
    answered = [line for line in lines if '" 2' in line or '" 4' in line or '" 5' in line]
    import re

    status = re.compile(r'HTTP/[\d.]+"\s+(\d{3})')
    codes = [int(m.group(1)) for line in answered if (m := status.search(line))]
    return {"requests": len(codes), "http_5xx": sum(1 for c in codes if c >= 500),
            "database_locked": sum(1 for line in lines if "database is locked" in line.lower()),
            "tracebacks": sum(1 for line in lines if line.startswith("Traceback"))}


def downloads(text: str, artifact: str) -> dict[str, int]:
    """Downloads, answered 200, of artifacts whose path ends with `artifact` (e.g. `weights/theta_1.pt`)
    in an MLflow server log: `proxied` through the server's artifact proxy (`GET .../mlflow-artifacts/
    artifacts/<path>`) or `presigned` (the server hands out a presigned S3 URL, `GET .../mlflow-artifacts/
    presigned/<path>`, and the client reads S3 itself), as MLflow 3.17's client does for S3."""
    import re

    found = {"proxied": 0, "presigned": 0}
    pattern = re.compile(r'"GET /api/2\.0/mlflow-artifacts/(artifacts|presigned)/([^ ?"]+) HTTP/[\d.]+"\s+200')
    for line in text.splitlines():
        match = pattern.search(line)
        if match and match.group(2).endswith(artifact):
            found["proxied" if match.group(1) == "artifacts" else "presigned"] += 1
    return found


def log_since(path: Path, offset: int) -> str:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


def table(rows: list[tuple[str, object]], width: int = 110) -> str:
    """Figures as two aligned columns; a long value wraps under itself (lines of at most `width`)."""
    import textwrap

    if not rows:
        return "  (no figures)"
    left = max(len(str(k)) for k, _ in rows)
    room = max(30, width - left - 4)
    out = []
    for key, value in rows:
        lines = textwrap.wrap(str(value).replace("\n", " "), room, break_long_words=True) or [""]
        out.append(f"  {str(key):<{left}}  {lines[0]}")
        out += [f"  {'':<{left}}  {line}" for line in lines[1:]]
    return "\n".join(out)


# --- reading back -----------------------------------------------------------------------------


def list_objects(s3, bucket: str, prefix: str = "") -> list[dict]:
    """The bucket's objects under `prefix`: Key, Size, LastModified (datetime)."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += page.get("Contents", [])
    return found


def list_keys(s3, bucket: str, prefix: str = "") -> list[tuple[str, int]]:
    return [(o["Key"], o["Size"]) for o in list_objects(s3, bucket, prefix)]


def checkpoints_in_state(objects: list[dict], margin_s: float = 3.0) -> tuple[int, float | None]:
    """From a Tune experiment's objects in the bucket: how many trials' first checkpoint is older
    than the newest experiment state by `margin_s` (so a restore knows of it), and by how many
    seconds the state follows the earliest first checkpoint (None: no state or no checkpoint yet)."""
    states = [o["LastModified"].timestamp() for o in objects if o["Key"].rsplit("/", 1)[-1].startswith("experiment_state")]
    first: dict[str, float] = {}
    for o in objects:
        parts = o["Key"].split("/")
        if len(parts) >= 3 and parts[-2].startswith("checkpoint_"):
            trial = parts[-3]
            first[trial] = min(first.get(trial, float("inf")), o["LastModified"].timestamp())
    if not states or not first:
        return 0, None
    newest = max(states)
    return sum(1 for t in first.values() if t + margin_s <= newest), newest - min(first.values())


def trial_rows(s3, bucket: str, prefix: str) -> dict[str, list[dict]]:
    """Ray Tune's results of every trial under `prefix` (a sweep's phase): trial folder -> rows."""
    out = {}
    for key, _ in list_keys(s3, bucket, prefix):
        if key.endswith("/result.json"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            out[key.rsplit("/", 2)[-2]] = [json.loads(line) for line in body.splitlines() if line.strip()]
    return out


def trial_nodes(rows: list[dict]) -> list[str]:
    """The node ids a trial reported from, in order, each once per stretch."""
    nodes = []
    for row in rows:
        node = row.get("node_id")
        if isinstance(node, str) and node and (not nodes or nodes[-1] != node):
            nodes.append(node)
    return nodes


def final_row(rows: list[dict]) -> dict:
    """A trial's final result: the last row with its MLflow run id."""
    done = [r for r in rows if "mlflow_run_id" in r]
    return done[-1] if done else {}


def sweep_runs(client, experiment: str, sweep: str) -> list:
    """The child runs (trials) of a sweep in MLflow, any status."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], f"tags.sweep = '{sweep}'", max_results=1000)
    return [r for r in runs if r.data.tags.get("sweep_parent") != "true"]


def histories(client, run) -> dict[str, list[tuple[int, int]]]:
    return {key: [(m.step, m.timestamp) for m in client.get_metric_history(run.info.run_id, key)]
            for key in run.data.metrics}


def artifact_paths(client, run_id: str, path: str | None = None) -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, path):
        out += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def disk_inventory(root: Path | None) -> dict[str, list[int]]:
    """Files under `root` by kind: checkpoints, weights, claims, reports, other -> [count, bytes]."""
    kinds: dict[str, list[int]] = {}
    if root is None or not root.exists():
        return kinds
    for file in root.rglob("*"):
        if not file.is_file():
            continue
        parts = file.relative_to(root).parts
        kind = ("claims" if file.name.endswith((".claim", ".takeover")) else
                next((p for p in ("checkpoints", "weights", "reports") if p in parts), "other"))
        entry = kinds.setdefault(kind, [0, 0])
        entry[0] += 1
        entry[1] += file.stat().st_size
    return kinds


def describe_inventory(kinds: dict[str, list[int]]) -> str:
    if not kinds:
        return "empty"
    return ", ".join(f"{kind} {n} files ({size / 1e6:.1f} MB)" for kind, (n, size) in sorted(kinds.items()))
