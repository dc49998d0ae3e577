"""``python -m fuzz TARGET --runs N --seed S``: run one target, print what was found.

With atheris installed, libFuzzer runs the target in a child process (coverage-guided; its new
inputs go to ``fuzz/work/TARGET``, crashes, hangs and memory blow-ups to ``fuzz/findings``);
otherwise, or with ``--engine builtin``, the pure-Python mutator of :mod:`fuzz.builtin` does,
in this process. Seeds are the target's own few plus, when it exists, the corpus that
``python -m fuzz.corpus`` generated in ``fuzz/corpus/TARGET``. The last line is a summary:
executions, seconds, corpus size and findings. The exit status is 1 when anything was found.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _dictionary(tokens: tuple[bytes, ...], path: Path) -> None:
    lines = ['"' + "".join(f"\\x{byte:02x}" for byte in token) + '"' for token in tokens]
    path.write_text("\n".join(lines) + "\n")


def _seed_files(name: str, seeds: list[bytes], directory: Path) -> None:
    for number, seed in enumerate(seeds):
        (directory / f"{name}-{number:03d}").write_bytes(seed)


def _atheris(args: argparse.Namespace, corpus: Path | None) -> int:
    from fuzz.targets import TARGETS

    target = TARGETS[args.target]
    work = Path(args.work) / args.target
    findings = Path(args.findings)
    work.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lkm-fuzz-") as scratch:
        seeds = Path(scratch) / "seeds"
        seeds.mkdir()
        _seed_files("builtin", target.seeds(), seeds)
        dictionary = Path(scratch) / "tokens.dict"
        _dictionary(target.tokens, dictionary)
        command = [
            sys.executable, "-m", "fuzz.libfuzzer", args.target, str(work), str(seeds),
            *([str(corpus)] if corpus else []),
            f"-runs={args.runs}", f"-seed={args.seed}", f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_limit_mb}", f"-dict={dictionary}",
            f"-artifact_prefix={findings}/{args.target}-", "-print_final_stats=1",
            *([f"-max_len={args.max_len}"] if args.max_len else []),
        ]  # fmt: skip
        started = time.monotonic()
        # libFuzzer's log goes to a file as it is written, so a long run can be watched.
        log_path = findings / f"{args.target}.log"
        with log_path.open("w") as log_file:
            child = subprocess.run(command, cwd=HERE.parent, stderr=log_file, check=False)
        seconds = time.monotonic() - started
    log = log_path.read_text(errors="replace")
    executed = re.search(r"stat::number_of_executed_units: (\d+)", log)
    crashes = re.findall(r"Test unit written to (\S+)", log)
    if args.verbose or crashes or child.returncode:
        sys.stderr.write(log[-6000:])
    executions = int(executed.group(1)) if executed else 0
    size = sum(1 for _ in work.iterdir())
    print(
        f"{args.target}: atheris, {executions} executions in {seconds:.0f} s, seed {args.seed}, "
        f"corpus {size} inputs, findings: {', '.join(crashes) or 'none'}"
    )
    return 1 if crashes or child.returncode else 0


def _builtin(args: argparse.Namespace, corpus: Path | None) -> int:
    from fuzz import builtin
    from fuzz.targets import ERRORS, TARGETS

    target = TARGETS[args.target]
    seeds = target.seeds()
    if corpus:
        seeds += [path.read_bytes() for path in sorted(corpus.iterdir()) if path.is_file()]
    report = (lambda line: print(line, file=sys.stderr)) if args.verbose else None
    result = builtin.run(
        target.run, seeds, target.tokens, ERRORS, runs=args.runs, seed=args.seed,
        timeout=args.timeout, max_len=args.max_len or 1 << 20, report=report,
    )  # fmt: skip
    if result.findings:
        findings = Path(args.findings)
        findings.mkdir(parents=True, exist_ok=True)
    names = []
    for number, finding in enumerate(result.findings):
        path = Path(args.findings) / f"{args.target}-builtin-{args.seed}-{number}"
        path.write_bytes(finding.data)
        names.append(f"{finding.kind} at {finding.where} ({path})")
        print(f"{finding.kind}: {finding.message} at {finding.where}", file=sys.stderr)
    print(
        f"{args.target}: builtin, {result.executions} executions in {result.seconds:.1f} s, "
        f"seed {args.seed}, corpus {result.corpus} inputs, findings: {'; '.join(names) or 'none'}"
    )
    return 1 if result.findings else 0


def main(argv: list[str] | None = None) -> int:
    from fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n")[0])
    parser.add_argument(
        "target",
        choices=[*sorted(TARGETS), "all"],
        nargs="?",
        help="the parser to fuzz, or all of them one after another",
    )
    parser.add_argument("--list", action="store_true", help="name the targets and exit")
    parser.add_argument("--runs", type=int, default=100_000, help="executions (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--engine", choices=("auto", "atheris", "builtin"), default="auto")
    parser.add_argument("--corpus", help="seed corpus directory (default fuzz/corpus/TARGET)")
    parser.add_argument("--seeds-only", action="store_true", help="no corpus, the target's seeds")
    parser.add_argument("--work", default=str(HERE / "work"), help="atheris' growing corpus")
    parser.add_argument("--findings", default=str(HERE / "findings"), help="crashing inputs")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="atheris' memory limit")
    parser.add_argument("--max-len", type=int, default=0, help="longest input (default: seeds')")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the engine's output")
    args = parser.parse_args(argv)
    if args.list or not args.target:
        print("\n".join(sorted(TARGETS)))
        return 0
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") else "builtin"
    status = 0
    for name in sorted(TARGETS) if args.target == "all" else [args.target]:
        one = argparse.Namespace(**{**vars(args), "target": name})
        given = Path(args.corpus) if args.corpus else HERE / "corpus" / name
        corpus = None if args.seeds_only or not given.is_dir() else given
        status |= _atheris(one, corpus) if engine == "atheris" else _builtin(one, corpus)
    return status


if __name__ == "__main__":
    sys.exit(main())
