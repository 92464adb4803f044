"""The documentation: generated references equal their generator's output, links resolve, the README
stays an entry point, and every metric and tag a real run logs is declared in `pipelines.run_schema`."""
import re
from pathlib import Path

import pytest

from pipelines import reference, run_schema

ROOT = Path(__file__).resolve().parents[1]
LINKED_DOCS = ("README.md", "docs/**/*.md", "benchmarks/README.md")
# records are data; the two reports are `lottery report` output kept without their plots
SKIPPED = ("docs/results/records", "docs/results/pareto_quick/report.md", "docs/results/pareto_quick_confirm/report.md")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
ISSUE = re.compile(r"\(?\bissues?\s+#?\d+\)?", re.IGNORECASE)


def documents() -> list[Path]:
    found = {p for pattern in LINKED_DOCS for p in ROOT.glob(pattern)}
    return sorted(p for p in found if not any(p.relative_to(ROOT).as_posix().startswith(s) for s in SKIPPED))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, markup and punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code blocks), duplicates numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6} ", line):
            continue
        base = slug(line.lstrip("#"))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """The link targets of a Markdown file, outside code blocks and inline code."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def test_generated_references_are_current():
    for relative, text in reference.generate().items():
        path = ROOT / relative
        assert path.exists() and path.read_text(encoding="utf-8") == text, (
            f"{relative} differs from the code's declarations: run `python -m pipelines.reference`")


def test_generated_references_are_deterministic():
    assert reference.generate() == reference.generate()
    for text in reference.generate().values():
        assert str(ROOT) not in text and str(Path.home()) not in text


def test_the_mlflow_reference_lists_every_declared_key():
    text = reference.mlflow_reference()
    missing = [e.name for e in run_schema.ENTRIES if f"| `{e.name}` |" not in text]
    assert missing == [], f"declared in pipelines/run_schema.py but not in docs/reference/mlflow.md: {missing}"


def test_every_link_resolves():
    broken = []
    for doc in documents():
        for target in links(doc):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):   # http:, https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (doc.parent / file_part).resolve() if file_part else doc
            if not resolved.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert documents() and not broken, "\n".join(broken)


def test_readme_is_an_entry_point():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail into docs/"


def test_no_issue_numbers_in_user_documents():
    paths = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *(ROOT / "docs").glob("*.md"),
             *(ROOT / "docs" / "reference").glob("*.md")]
    found = [f"{p.relative_to(ROOT)}: {m.group(0)!r}" for p in paths if p.exists()
             for m in ISSUE.finditer(p.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)


def test_slug_matches_github():
    assert slug(" Runs in MLflow") == "runs-in-mlflow"
    assert slug(" What we wrote ourselves, and why") == "what-we-wrote-ourselves-and-why"
    assert slug(" `lottery run`") == "lottery-run"
    assert slug(" Sweeps (Ray Tune)") == "sweeps-ray-tune"


def test_schema_declares_what_the_code_names():
    """The metric and tag names the code spells in one place are all declared."""
    from pipelines.comparison import COMPARISON_KEYS
    from pipelines.evaluation import RUN_METRICS
    from pipelines.latency_settings import CONDITION_TAGS

    metrics = [*RUN_METRICS, *COMPARISON_KEYS, "cka_vs_dense", "latency_b1_ms", "train_step_b128_ms",
               "corruption_acc.fog", "delta_corruption_acc.fog", "adv_acc.pgd.eps2", "shifted_acc.cifar10_1",
               *(f"round_{k}" for k in ("blocks_removed", "macs", "params", "macs_fraction", "val_acc", "test_acc"))]
    assert run_schema.undeclared(metrics, "metric") == []
    assert run_schema.undeclared([*CONDITION_TAGS, "in_sweep.demo-2026.1", "mlflow.user"], "tag") == []
    assert run_schema.undeclared(["adv_acc.fgsm.epsilon", "corruption_acc.a.b", "bogus"], "metric") == [
        "adv_acc.fgsm.epsilon", "bogus", "corruption_acc.a.b"]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, tiny_folder):
    """A dense run and a ticket_init run of the tiny data set, as MLflow logged them."""
    from mlflow.tracking import MlflowClient

    from pipelines.config import load_config
    from pipelines.context import with_fingerprint
    from pipelines.runner import run
    from pipelines.tracking import tracking_uri

    tmp = tmp_path_factory.mktemp("schema")
    source = {"model": {"name": "resnet20"}, "device": "cpu", "data": {"name": "folder", "root": str(tiny_folder)},
              "training": {"epochs": 1, "batch_size": 8, "keep_epochs": [0], "amp": False},
              "pruning": {"criterion": "grasp", "p": 1, "images_per_class": 2},
              "evaluation": {"corruptions": ["gaussian_noise"], "severities": [1], "corruption_images": 8,
                             "attacks": ["fgsm"], "epsilons": [0.03], "attack_images": 8, "cka_images": 8},
              "tracking": {"results_dir": str(tmp / "runs"), "experiment": "schema"}}
    found = []
    for pipeline in ("dense", "ticket_init"):
        cfg = with_fingerprint(load_config(source, [f"pipeline={pipeline}"]))
        outcome = run(cfg)
        found.append(MlflowClient(tracking_uri(cfg)).get_run(outcome.run_id))
    return found


@pytest.mark.slow
def test_a_real_run_logs_only_declared_keys(tiny_runs):
    for logged in tiny_runs:
        assert run_schema.undeclared(logged.data.metrics, "metric") == []
        assert run_schema.undeclared(logged.data.tags, "tag") == []
        assert run_schema.undeclared(logged.data.params, "param") == []
    ticket = tiny_runs[1].data
    for key in ("delta_acc", "cka_vs_dense", "adv_acc.fgsm.eps8", "corruption_acc.gaussian_noise"):
        assert key in ticket.metrics   # the families the schema declares are really logged
