"""A sweep at a glance in MLflow's UI: a saved view of its runs with the key columns chosen.

MLflow 3.17's UI keeps a saved ("shared") view of an experiment's runs table in an experiment tag,
`mlflow.sharedViewState.<key>`, and opens it from the runs page's URL,
`#/experiments/<id>/runs?viewStateShareKey=<key>`. The tag's value is what the UI's own "Save view"
writes (build/static/js, MLflow 3.17.2): a JSON envelope

    {"name": "<view name>", "createdAt": <ms>, "updatedAt": <ms>, "state": "<JSON string>"}

whose `state` is a JSON object of the runs table's search facets (`searchFilter`, `orderByKey`,
`orderByAsc`, `startTime`, `lifecycleFilter`, `datasetsFilter`, `modelVersionFilter`) and UI state
(`selectedColumns`, `columnOrder`, `columnWidths`, `runsHiddenMode`, ...); keys left out take the
UI's defaults. The UI may store the state compressed, `deflate;<base64 of zlib>` (it reads both).
Columns are named `<kind>.` + the key in backquotes, ``tags.`criterion` ``, ``metrics.`acc` `` (the
keys of `columnWidths` too). The UI ignores `runsExpanded` (and pinned or hidden runs) in a saved
view, so the sweep's child runs are shown by a filter on the sweep's tag that leaves the parent
run out; its children then stand as rows of their own. The URL's `workflowType=machine_learning`
opens the UI's model-training layout instead of its GenAI one.

The view's columns: pipeline, criterion, p, seed (tags), test accuracy, Δ = ticket − dense in points
and the MACs reduction in % (metrics the evaluation stage logs on every ticket run), and `verdict`, a
tag that `write_verdicts` sets on each run from the report's summary (`pipelines.report.tables.summary`)
of the sweep: a verdict needs seeds, so one seed reads "1 seed: no verdict".
"""
import json
import time

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
SHARE_KEY_PARAM = "viewStateShareKey"
VERDICT_TAG = "verdict"
# (kind, key, width in pixels) in the order the view shows them, after the run's name
COLUMNS = (("tags", "pipeline", 110), ("tags", "criterion", 90), ("tags", "p", 50), ("tags", "seed", 60),
           ("metrics", "acc", 80), ("metrics", "delta_acc", 150), ("tags", VERDICT_TAG, 170),
           ("metrics", "macs_reduction_pct", 170))
RUN_NAME = ("attributes", "Run Name", 270)   # always shown; wide enough for `RunConfig.describe()`


def column(kind: str, key: str) -> str:
    """A column of MLflow's runs table as its saved views name it, e.g. ``metrics.`acc` ``."""
    return f"{kind}.`{key}`"


def share_key(sweep: str) -> str:
    """The view's key (the tag's suffix and the URL's `viewStateShareKey`): one per sweep, so that
    opening the UI again updates the view instead of adding one (the UI keeps at most 40)."""
    return f"sweep-{sweep}"


def sweep_filter(sweep: str) -> str:
    """The runs of the sweep without its parent run (the parent carries no `pipeline` tag)."""
    return f"tags.sweep = '{sweep}' AND tags.pipeline LIKE '%'"


def view_state(sweep: str) -> dict:
    """The runs table's state of the sweep's view (keys the UI omits take its defaults)."""
    columns = [column(kind, key) for kind, key, _ in COLUMNS]
    # the UI applies `columnWidths` to the columns of `columnOrder` only
    return {"searchFilter": sweep_filter(sweep), "orderByKey": column("metrics", "acc"), "orderByAsc": False,
            "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
            "selectedColumns": columns, "columnOrder": [column(*RUN_NAME[:2]), *columns],
            "columnWidths": {column(kind, key): width for kind, key, width in (RUN_NAME, *COLUMNS)},
            "runsHiddenMode": "SHOW_ALL"}


def envelope(name: str, state: dict, now_ms: int | None = None) -> str:
    """The tag value of a saved view, as the UI's "Save view" writes it."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return json.dumps({"name": name, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(state)})


def read_view(value: str) -> dict:
    """The state of a saved view's tag value (the envelope, compressed or not, or a bare state)."""
    import base64
    import zlib

    data = json.loads(value)
    state = data["state"] if isinstance(data, dict) and isinstance(data.get("state"), str) else data
    if isinstance(state, str):
        if state.startswith("deflate;"):
            state = zlib.decompress(base64.b64decode(state.removeprefix("deflate;"))).decode()
        state = json.loads(state)
    return state


def latest_sweep(client, experiment_id: str) -> tuple[str, str] | None:
    """(name, parent run id) of the experiment's newest sweep, or None when it has none."""
    parents = client.search_runs([experiment_id], filter_string="tags.sweep_parent = 'true'",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    return (parents[0].data.tags["sweep"], parents[0].info.run_id) if parents else None


def sweep_parent(client, experiment_id: str, sweep: str) -> str | None:
    """The parent run id of sweep `sweep` in the experiment, or None."""
    found = client.search_runs([experiment_id], filter_string=f"tags.sweep = '{sweep}' AND tags.sweep_parent = 'true'",
                               max_results=1)
    return found[0].info.run_id if found else None


def write_view(client, experiment_id: str, sweep: str) -> str:
    """Save the sweep's view on the experiment; returns its share key."""
    key = share_key(sweep)
    client.set_experiment_tag(experiment_id, VIEW_TAG_PREFIX + key, envelope(f"sweep {sweep}", view_state(sweep)))
    return key


def verdicts(tracking_uri: str, experiment: str, sweep: str, xi: float | None = None) -> dict[str, str]:
    """run id -> the verdict of its configuration over the sweep's seeds, from the report's summary
    (`pipelines.report.tables.summary`): a configuration that a question of the sweep declares gets
    its Holm-adjusted verdict and the question ("better (Q1)"), any other its raw verdict marked
    "(exploratory)"; dense runs are the reference. `xi`: the raw verdicts' margin (None: the
    questions' margin, else `questions.DEFAULT_MARGIN`)."""
    from pipelines.report import sweep_questions, tables
    from pipelines.report.console import verdict_words
    from pipelines.report.questions import DEFAULT_MARGIN, answer_all, membership
    from pipelines.report.runs import load_runs, paired

    runs = load_runs(tracking_uri, experiment, sweep)
    questions = sweep_questions(tracking_uri, experiment, sweep)
    if xi is None:
        margins = {q.margin for q in questions}
        xi = margins.pop() if len(margins) == 1 else DEFAULT_MARGIN
    pairs = paired(runs, xi)
    labels = membership(answer_all(questions, runs, pairs))
    dense = runs[runs.pipeline == "dense"]
    out = {}
    for row in tables.summary(dense, pairs.iloc[0:0], xi).itertuples():
        out.update({run_id: verdict_words(row.verdict) for run_id in dense[dense.model == row.model].run_id})
    for _, config in pairs.groupby(tables.CONFIG_KEYS) if len(pairs) else []:
        row = tables.summary(runs.iloc[0:0], config, xi, labels).iloc[0]
        if row.question == tables.EXPLORATORY:
            said = verdict_words(row.verdict) + ("" if row.verdict in ("1 seed", "missing dense run") else
                                                 " (exploratory)")
        else:
            said = f"{verdict_words(row['adjusted verdict'])} ({row.question})"
        out.update({run_id: said for run_id in config.run_id})
    return out


def write_verdicts(client, tracking_uri: str, experiment: str, sweep: str, xi: float | None = None) -> int:
    """Tag each finished run of the sweep with its configuration's verdict; returns how many."""
    found = verdicts(tracking_uri, experiment, sweep, xi)
    for run_id, verdict in found.items():
        client.set_tag(run_id, VERDICT_TAG, verdict)
    return len(found)


def sweep_page(base: str, experiment_id: str, key: str | None = None) -> str:
    """The runs page of the experiment (in the UI's machine-learning layout, not its GenAI one),
    opened on the saved view `key` when given."""
    query = (f"{SHARE_KEY_PARAM}={key}&" if key else "") + "workflowType=machine_learning"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"
