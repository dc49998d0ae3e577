"""The rows of benchmarks/README.md's table: handed over by each benchmark, drawn by run.py.

A benchmark run alone prints its own table and nothing more. Run by ``benchmarks/run.py``, the
environment variable ``LKM_BENCH_ROWS`` names a file, and each benchmark appends to it one JSON
line per figure worth a row: lkm's figure, the reference it is measured against (kmod 34, a
shell loop, ``python3 -c pass``, ...), their ratio (lkm / reference) and the target for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass

ROWS_VARIABLE = "LKM_BENCH_ROWS"
BEGIN = "<!-- results: begin (benchmarks/run.py writes this section) -->"
END = "<!-- results: end -->"


@dataclass(frozen=True)
class Row:
    benchmark: str  # the script's name: "depmod"
    case: str  # what was measured: "full run, trixie-amd64 (xz), wall time"
    lkm: float
    reference: str  # what lkm is measured against: "kmod 34 depmod"
    reference_value: float
    unit: str  # "s", "MiB", "/s"
    target: float | None  # bound on the ratio lkm / reference, None where there is none
    higher_is_better: bool  # the target is a floor (throughput), not a ceiling (time)
    samples: int  # how many runs the figures are the median of
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.lkm / self.reference_value

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target


def row(
    benchmark: str,
    case: str,
    *,
    lkm: float,
    reference: str,
    reference_value: float,
    samples: int,
    unit: str = "s",
    target: float | None = None,
    higher_is_better: bool = False,
    note: str = "",
) -> None:
    """Hand one row to benchmarks/run.py; nothing when the benchmark runs alone."""
    path = os.environ.get(ROWS_VARIABLE)
    if not path:
        return
    record = Row(benchmark, case, lkm, reference, reference_value, unit, target,
                 higher_is_better, samples, note)  # fmt: skip
    with open(path, "a", encoding="utf-8") as file:
        file.write(json.dumps(asdict(record)) + "\n")


def read_rows(path: str) -> list[Row]:
    with open(path, encoding="utf-8") as file:
        return [Row(**json.loads(line)) for line in file if line.strip()]


def figure(value: float, unit: str) -> str:
    """A figure as the table shows it: seconds below one as milliseconds, three digits kept."""
    if unit == "s" and value < 1:
        return f"{value * 1000:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.1f} {unit}"


def _ratio(value: float) -> str:
    return f"{value:.3f}x" if value < 0.1 else f"{value:.2f}x"


def _target(row: Row) -> str:
    if row.target is None:
        return "—"
    if row.higher_is_better:
        return f"≥ {_ratio(row.target)}"
    if row.target <= 0.5:  # a "N times faster" target
        return f"≤ {_ratio(row.target)} ({1 / row.target:.0f}x faster)"
    return f"≤ {_ratio(row.target)}"


def table(rows: Iterable[Row]) -> str:
    """The markdown table of every row, in the order given."""
    lines = [
        "| benchmark | what | lkm | reference | ratio | target | met |",
        "|---|---|---:|---|---:|---|:-:|",
    ]
    for each in rows:
        met = {None: "", True: "✓", False: "✗"}[each.met]
        case = each.case + (f" ({each.note})" if each.note else "")
        case = case.replace("|", "\\|").replace("<", "&lt;")
        reference = f"{each.reference}: {figure(each.reference_value, each.unit)}"
        lines.append(
            f"| {each.benchmark} | {case} | {figure(each.lkm, each.unit)} | {reference} "
            f"| {_ratio(each.ratio)} | {_target(each)} | {met} |"
        )
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` with what lies between the result markers replaced by ``section``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the markers {BEGIN!r} and {END!r} are missing or out of order")
    return text[: start + len(BEGIN)] + "\n" + section + text[end:]
