"""The report's summary as a terminal table (what `lottery sweep` prints at the end).

    print(terminal_table(summary, width=100))

The summary (`tables.summary`) has a column for everything any configuration may have; a terminal
shows only the columns that have a value in some row. Columns that hold one value in every row
(the model, one seed) are said once above the table when the rest does not fit; a cell's "(n=k)"
is left out where the row's n column says it; the verdict is said in words ("1 seed: no verdict"
where the runs have one seed, hence no interval). Columns that still do not fit `width` are left out
from the least needed (they are in report.md), and the table says so.
"""
import math
import textwrap
from pathlib import Path

import pandas as pd

EMPTY = ("", "—", "-", "none", "nan", "None")
# left out first, when the table is wider than the terminal
DROP_ORDER = ("speed-up ×", "stage counts", "rounds", "seeds won", "control", "rewind", "90% interval", "model",
              "n", "MACs −%", "question")
VERDICT_WORDS = {"1 seed": "1 seed: no verdict", "reference": "reference (dense)"}


def verdict_words(verdict: str) -> str:
    """The report's verdict, said in full where it is terse: one seed has no interval, so no verdict."""
    return VERDICT_WORDS.get(verdict, verdict)


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _has_value(values) -> bool:
    return any(v.strip() not in EMPTY for v in values)


def _render(df: pd.DataFrame) -> list[str]:
    widths = {c: max([len(c), *(len(v) for v in df[c])]) for c in df.columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in df.columns).rstrip(),
             "  ".join("-" * widths[c] for c in df.columns)]
    lines += ["  ".join(v.ljust(widths[c]) for c, v in zip(df.columns, row, strict=True)).rstrip()
              for row in df.itertuples(index=False)]
    return lines


def terminal_table(summary: pd.DataFrame, width: int = 100) -> str:
    """`summary` (the report's summary table, text cells) as aligned text no wider than `width`."""
    df = summary.reset_index(drop=True).map(_text) if len(summary.columns) else summary
    if not len(df):
        return "(no finished runs)"
    df = df[[c for c in df.columns if _has_value(df[c])]]
    if "n" in df:  # "(n=k)" in a cell repeats the row's n
        df = df.apply(lambda row: row.map(lambda v: v.removesuffix(f" (n={row['n']})")), axis=1)
    if "verdict" in df:
        df = df.assign(verdict=df.verdict.map(verdict_words))
    notes = []
    if len(_render(df)[0]) > width or max(map(len, _render(df))) > width:
        constant = [c for c in df.columns if c not in ("verdict", "acc %", "Δ") and df[c].nunique() == 1
                    and len(df) > 1]
        if constant:
            notes.append("every row: " + ", ".join(f"{c} = {df[c].iloc[0]}" for c in constant))
            df = df.drop(columns=constant)
    left_out = []
    for name in DROP_ORDER:
        if max(map(len, _render(df))) <= width:
            break
        if name in df:
            df = df.drop(columns=name)
            left_out.append(name)
    if left_out:
        notes.append(f"not shown here (see report.md): {', '.join(left_out)}")
    notes = [textwrap.fill(note, width, subsequent_indent="  ", break_on_hyphens=False) for note in notes]
    return "\n".join([*notes, *_render(df)])


def read_summary(report_dir) -> pd.DataFrame | None:
    """The summary table a report wrote (`<report_dir>/summary.csv`), text cells, or None."""
    path = Path(report_dir) / "summary.csv" if report_dir else None
    if path is None or not path.is_file():
        return None
    return pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
