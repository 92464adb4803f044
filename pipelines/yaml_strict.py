"""YAML as users mean it: one loader for config files, sweep files and `--set` values.

PyYAML's SafeLoader follows YAML 1.1, which surprises people in three ways this loader removes:
- `1e-3`, `5E4` and `.5e-2` are floats (YAML 1.1 needs a dot and a signed exponent, `1.0e-3`);
- a key given twice in one mapping is refused (PyYAML silently keeps the last one);
- a file is read as UTF-8, and a file that is not, a folder, or a missing path is a one-line
  `LotteryError`, never a traceback.
"""
import re
from pathlib import Path

import yaml

from lottery_core.errors import LotteryError

# YAML 1.2 core schema floats, which include exponents without a dot or a sign (1e-3, 2E5).
_FLOAT = re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats and duplicate keys refused."""


class DuplicateKey(yaml.YAMLError):
    """A mapping gives the same key twice."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise DuplicateKey(f"key {key!r} is given twice (lines {seen[key] + 1} and "
                               f"{key_node.start_mark.line + 1}); give each key once")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


# Replace the implicit float rule for the characters a float may start with, keep the others.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def loads(text: str, where: str = "value"):
    """Parse YAML text strictly; `where` names it in the one-line error ("config a.yaml", "--set x")."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)
    except DuplicateKey as err:
        raise LotteryError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        raise LotteryError(f"{where}: not valid YAML ({_yaml_problem(err)})") from None


def read_text(path: str | Path, kind: str) -> str:
    """A file's text as UTF-8; `kind` names the file in errors ("config", "sweep")."""
    path = Path(path)
    if path.is_dir():
        raise LotteryError(f"{kind} file {path.resolve()} is a folder; give the path of a .yaml file")
    if not path.is_file():
        raise LotteryError(f"{kind} file not found: {path.resolve()}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise LotteryError(f"{kind} {path}: not UTF-8 text (byte {err.start}: {err.reason}); "
                           "save it as UTF-8") from None
    except OSError as err:
        raise LotteryError(f"{kind} {path}: cannot be read ({err.strerror})") from None


def read_mapping(path: str | Path, kind: str, expected: str) -> dict:
    """A YAML file's top-level mapping. `expected` says what it must hold and may use `{got}` for
    the type found."""
    raw = loads(read_text(path, kind), f"{kind} {path}") or {}
    if not isinstance(raw, dict):
        raise LotteryError(f"{kind} {path}: expected {expected.format(got=type(raw).__name__)}")
    return raw


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(err).splitlines()[0]
