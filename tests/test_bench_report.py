"""benchmarks/run.py's table, drawn from recorded rows (no benchmark runs here), and the wiring
of every benchmark script into it."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _report  # noqa: E402
import run  # noqa: E402

# Rows as two benchmarks handed them over in a run (figures rounded).
RECORDED = [
    {"benchmark": "depmod", "case": "full run, trixie-amd64 (xz), wall time", "lkm": 3.2,
     "reference": "kmod 34 depmod", "reference_value": 4.0, "unit": "s", "target": 0.8,
     "higher_is_better": False, "samples": 3, "note": ""},
    {"benchmark": "depmod", "case": "full run, trixie-amd64 (xz), peak memory", "lkm": 81.0,
     "reference": "kmod 34 depmod", "reference_value": 76.5, "unit": "MiB", "target": 2.0,
     "higher_is_better": False, "samples": 3, "note": ""},
    {"benchmark": "startup", "case": "lkm modinfo of one xz module", "lkm": 0.0392,
     "reference": "python3 -c pass", "reference_value": 0.0117, "unit": "s", "target": 2.0,
     "higher_is_better": False, "samples": 21, "note": "instructions 4.37x"},
    {"benchmark": "resolve", "case": "in-process alias resolutions, warm indexes",
     "lkm": 31000.0, "reference": "target", "reference_value": 20000, "unit": "/s",
     "target": 1.0, "higher_is_better": True, "samples": 1, "note": ""},
    {"benchmark": "verify", "case": "signatures of 4230 modules | <all>", "lkm": 12.0,
     "reference": "bash loop of openssl cms -verify", "reference_value": 300.0, "unit": "s",
     "target": 0.05, "higher_is_better": False, "samples": 3, "note": ""},
    {"benchmark": "load", "case": "guest: lsmod", "lkm": 0.5, "reference": "kmod 34",
     "reference_value": 0.25, "unit": "s", "target": None, "higher_is_better": False,
     "samples": 5, "note": ""},
]  # fmt: skip

TABLE = """\
| benchmark | what | lkm | reference | ratio | target | met |
|---|---|---:|---|---:|---|:-:|
| depmod | full run, trixie-amd64 (xz), wall time | 3.20 s | kmod 34 depmod: 4.00 s | 0.80x | ≤ 0.80x | ✓ |
| depmod | full run, trixie-amd64 (xz), peak memory | 81.0 MiB | kmod 34 depmod: 76.5 MiB | 1.06x | ≤ 2.00x | ✓ |
| startup | lkm modinfo of one xz module (instructions 4.37x) | 39.2 ms | python3 -c pass: 11.7 ms | 3.35x | ≤ 2.00x | ✗ |
| resolve | in-process alias resolutions, warm indexes | 31,000/s | target: 20,000/s | 1.55x | ≥ 1.00x | ✓ |
| verify | signatures of 4230 modules \\| &lt;all> | 12.00 s | bash loop of openssl cms -verify: 300.00 s | 0.040x | ≤ 0.050x (20x faster) | ✓ |
| load | guest: lsmod | 500.0 ms | kmod 34: 250.0 ms | 2.00x | — |  |
"""  # noqa: E501


@pytest.fixture
def rows_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "rows.jsonl"
    monkeypatch.setenv(_report.ROWS_VARIABLE, str(path))
    return path


def test_rows_handed_over_are_read_back(rows_file: Path) -> None:
    for fields in RECORDED:
        _report.row(**{k: v for k, v in fields.items() if k != "benchmark"},
                    benchmark=fields["benchmark"])  # fmt: skip
    lines = rows_file.read_text().splitlines()
    assert [json.loads(line) for line in lines] == RECORDED
    assert [r.ratio for r in _report.read_rows(str(rows_file))][:2] == [0.8, 81.0 / 76.5]


def test_a_benchmark_run_alone_writes_no_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_report.ROWS_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    _report.row("depmod", "x", lkm=1.0, reference="kmod", reference_value=2.0, samples=1)
    assert list(tmp_path.iterdir()) == []


def test_table_of_recorded_rows() -> None:
    assert _report.table(_report.Row(**fields) for fields in RECORDED) == TABLE


def test_met_is_a_ceiling_or_a_floor() -> None:
    time = _report.Row("b", "c", 1.0, "r", 2.0, "s", 0.5, False, 1)
    assert time.met is True
    assert _report.Row("b", "c", 1.1, "r", 2.0, "s", 0.5, False, 1).met is False
    assert _report.Row("b", "c", 1.0, "r", 2.0, "/s", 0.5, True, 1).met is True
    assert _report.Row("b", "c", 0.9, "r", 2.0, "/s", 0.5, True, 1).met is False
    assert _report.Row("b", "c", 0.9, "r", 2.0, "s", None, False, 1).met is None


def test_section_replaced_between_the_markers_only() -> None:
    text = f"# Benchmarks\nbefore\n{_report.BEGIN}\nold table\n{_report.END}\nafter\n"
    new = _report.replace_section(text, "new table\n")
    assert new == f"# Benchmarks\nbefore\n{_report.BEGIN}\nnew table\n{_report.END}\nafter\n"
    assert _report.replace_section(new, "new table\n") == new


def test_readme_section_rewritten_in_place(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text((BENCHMARKS / "README.md").read_text())
    run.write_section(readme, TABLE)
    text = readme.read_text()
    assert f"{_report.BEGIN}\n{TABLE}{_report.END}\n" in text
    assert text.startswith("# Benchmarks\n") and text.endswith("does not exist yet.\n")
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_section_without_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"markers .* are missing or out of order"):
        _report.replace_section(f"{_report.END}\n{_report.BEGIN}\n", "x")


def test_section_names_the_machine_the_failures_and_the_missing() -> None:
    info = {"date": "2026-12-02 10:30 UTC", "cpus": "2 x Some CPU", "python": "CPython 3.11.7",
            "kernel": "Linux 6.1.0", "commit": "abc1234", "load": "2.28 2.05 1.45",
            "speeds": "core 0 80-81 ms, core 1 80-140 ms for a fixed loop (**unsteady**)",
            "quiet": "no"}  # fmt: skip
    outcomes = [
        run.Outcome("depmod", 0, 120.0, 2.28),
        run.Outcome("modules_load", None, 0.0, 2.3),
        run.Outcome("verify", 1, 30.0, 2.4),
    ]
    rows = [_report.Row(**RECORDED[0])]
    text = run.section(info, outcomes, rows, quick=True)
    lines = text.splitlines()
    assert lines[0].startswith("**Wiring check (`--quick`)")
    assert lines[2] == (
        "Measured 2026-12-02 10:30 UTC on 2 x Some CPU; CPython 3.11.7; Linux 6.1.0; lkm abc1234."
        " At the start: load average 2.28 2.05 1.45; core 0 80-81 ms, core 1 80-140 ms for a"
        " fixed loop (**unsteady**) (**not quiet**: wall-time ratios are noisy)."
        " Ratios are lkm / reference (below 1: lkm is faster); figures are medians."
    )
    assert "\n".join(lines[4:7]) + "\n" == "\n".join(TABLE.splitlines()[:3]) + "\n"
    assert lines[-3:] == [
        "Time per script (load average at its start): depmod 2.0 min (2.28),"
        " verify 0.5 min (2.40); 2.5 min in all.",
        "Failed, so missing from the table: verify (exit status 1).",
        "Not run (no script yet): modules_load.",
    ]
    quiet = run.section({**info, "quiet": "yes"}, outcomes[:1], rows, quick=False)
    assert not quiet.startswith("**") and "not quiet" not in quiet


def test_every_benchmark_script_is_run_and_hands_its_rows_over() -> None:
    scripts = {p.stem for p in BENCHMARKS.glob("*.py") if not p.stem.startswith("_")}
    scripts.discard("run")
    assert scripts <= set(run.BENCHMARKS), "run.py's BENCHMARKS lacks a script"
    assert set(run.FULL) <= set(run.BENCHMARKS)
    for name in scripts:
        source = (BENCHMARKS / f"{name}.py").read_text()
        wired = "from _report import row" in source and re.search(rf'\brow\(\s*"{name}"', source)
        assert wired, f"{name}.py hands no row over (see benchmarks/README.md: Adding a benchmark)"


def test_the_readme_has_the_section_and_describes_every_benchmark() -> None:
    readme = (BENCHMARKS / "README.md").read_text()
    assert readme.index(_report.BEGIN) < readme.index(_report.END)
    for name in run.BENCHMARKS:
        assert f"- **{name}**:" in readme, name


def test_steady_cores_are_those_whose_samples_stay_close() -> None:
    assert run.steady({0: [0.080, 0.082, 0.081], 1: [0.083, 0.080, 0.084]})
    assert not run.steady({0: [0.080, 0.081, 0.080], 1: [0.080, 0.140, 0.081]})
    assert (
        run.describe_speeds({0: [0.080, 0.0812], 1: [0.09]}) == "core 0 80-81 ms, core 1 90-90 ms"
    )
    speeds = run.core_speeds(samples=1)
    assert sorted(speeds) == sorted(os.sched_getaffinity(0))
    assert all(len(values) == 1 and values[0] > 0 for values in speeds.values())
