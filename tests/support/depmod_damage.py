"""depmod of trees holding damaged real modules, by lkm and kmod 34, every output compared.

Each round takes ``MODULES`` small modules of one tree of the test world (uncompressed, xz and
zstd; both classes and byte orders), damages ``DAMAGED`` of them with ``module_damage.damaged``
(bit flips in the ELF header, section table, names, ``.modinfo``, anywhere; truncation;
damage inside the compressed stream; the signature) and runs both depmods on the tree, in turn
plain, with ``-a`` and with ``-a -e -F System.map``. stdout, stderr, the exit status and every
output file are compared byte for byte.

kmod 34 aborts (an assertion) on some damaged headers. Such a round is run again with the
damaged modules put back whole, one at a time, until kmod finishes; the modules it took are
counted, and lkm must have finished that round with its one-line errors, no traceback. Run as a
script for a large run: ``python tests/support/depmod_damage.py ROUNDS [SEED]``.
"""

from __future__ import annotations

import difflib
import os
import random
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script: the package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import module_damage, world
from support.depmod_trees import OUTPUTS
from support.differential import HASH_SEED, Result, kmod, lkm

MODULES = 40
DAMAGED = 10
MODES = ((), ("-a",), ("-a", "-e", "-F", "{base}/System.map"))


@dataclass
class Round:
    number: int
    tree: str
    args: tuple[str, ...]
    damage: dict[str, str]  # relative path -> what was done to it
    kmod_aborted_on: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Difference:
    round: Round
    what: list[str]

    def __str__(self) -> str:
        r = self.round
        lines = [f"round {r.number}: {r.tree}, depmod {' '.join(r.args)}"]
        lines += [f"  {path}: {what}" for path, what in r.damage.items()]
        if r.kmod_aborted_on:
            lines.append(f"  (put back whole, kmod aborted on them: {r.kmod_aborted_on})")
        return "\n".join(lines + self.what)


@dataclass
class Outcome:
    result: Result
    files: dict[str, bytes | None]


def _sources(rng: random.Random, tree: world.Tree) -> list[Path]:
    small = [p for p in tree.modules() if p.stat().st_size <= module_damage.MAX_SOURCE_SIZE]
    return rng.sample(small, MODULES)


def _run(tool: str, base: Path, moddir: Path, args: Sequence[str], release: str) -> Outcome:
    inside = "/" + str(base.relative_to(world.CHROOT))
    where = inside if tool == "kmod" else str(base)
    argv = [a.format(base=where) for a in args]
    if tool == "kmod":
        result = kmod("depmod", *argv, "-b", inside, release)
    else:
        result = lkm("depmod", *argv, "-b", str(base), release)
    files = {}
    for name in OUTPUTS:
        path = moddir / name
        files[name] = path.read_bytes() if path.exists() else None
    # Outputs and any temporary file kmod left behind go before the next run.
    for path in moddir.iterdir():
        if path.name.startswith("modules."):
            path.unlink()
    return Outcome(result, files)


def _diff(name: str, expected: bytes, actual: bytes) -> list[str]:
    lines = difflib.unified_diff(
        expected.decode("latin-1").splitlines(),
        actual.decode("latin-1").splitlines(),
        f"kmod {name}",
        f"lkm {name}",
        lineterm="",
        n=1,
    )
    return ["    " + line for line in list(lines)[:40]]


def compare(theirs: Outcome, ours: Outcome) -> list[str]:
    found = []
    a, b = theirs.result, ours.result
    if a.status != b.status:
        found.append(f"  exit status: kmod {a.status}, lkm {b.status}")
    for name, printed, ours_printed in (
        ("stdout", a.stdout, b.stdout),
        ("stderr", a.stderr, b.stderr),
    ):
        if printed != ours_printed:
            found += [f"  {name} differs:", *_diff(name, printed, ours_printed)]
    for name in OUTPUTS:
        x, y = theirs.files[name], ours.files[name]
        if x == y:
            continue
        if x is None or y is None:
            found.append(f"  {name}: written by {'lkm' if x is None else 'kmod'} only")
        elif name.endswith(".bin"):
            found.append(f"  {name} differs ({len(x)} bytes from kmod, {len(y)} from lkm)")
        else:
            found += [f"  {name} differs:", *_diff(name, x, y)]
    return found


@contextmanager
def scratch() -> Iterator[Path]:
    where = Path(world.CHROOT / "tmp" / f"depmod-damage-{os.getpid()}")
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    try:
        yield where
    finally:
        shutil.rmtree(where)


def one_round(number: int, seed: int, where: Path) -> tuple[Round, list[str]]:
    rng = random.Random(seed * 100_003 + number)
    name = rng.choice(module_damage.TREES)
    tree = world.tree(name)
    args = MODES[number % len(MODES)]
    base = where / f"r{number}"
    moddir = base / "lib/modules" / tree.kver
    chosen = _sources(rng, tree)
    damaged = set(rng.sample(range(MODULES), DAMAGED))
    round_ = Round(number, name, args, {})
    originals: dict[Path, Path] = {}
    for index, source in enumerate(chosen):
        target = moddir / source.relative_to(tree.moddir)
        target.parent.mkdir(parents=True, exist_ok=True)
        if index in damaged:
            case = module_damage.damaged(index, name, source, rng)
            target.write_bytes(case.data)
            round_.damage[str(target.relative_to(moddir))] = case.what
            originals[target] = source
        else:
            shutil.copyfile(source, target)
    shutil.copyfile(next((tree.root / "boot").glob("System.map-*")), base / "System.map")
    theirs = _run("kmod", base, moddir, args, tree.kver)
    ours = _run("lkm", base, moddir, args, tree.kver)
    found = []
    if b"Traceback" in ours.result.stderr or ours.result.status not in (0, 1):
        found.append(f"  lkm failed badly (status {ours.result.status}):")
        found += ["    " + line for line in ours.result.stderr.decode("latin-1").splitlines()]
    while theirs.result.status < 0 and originals:
        # kmod aborted: put the damaged modules back whole, one at a time.
        target, source = originals.popitem()
        shutil.copyfile(source, target)
        round_.kmod_aborted_on.append(str(target.relative_to(moddir)))
        del round_.damage[str(target.relative_to(moddir))]
        theirs = _run("kmod", base, moddir, args, tree.kver)
        if theirs.result.status >= 0:
            ours = _run("lkm", base, moddir, args, tree.kver)
    found += compare(theirs, ours)
    shutil.rmtree(base)
    return round_, found


def run(rounds: int, seed: int) -> tuple[list[Difference], int, int]:
    """Run ``rounds`` rounds; the differences, the damaged modules compared, kmod's aborts."""
    differences = []
    compared = aborts = 0
    with scratch() as where:
        for number in range(rounds):
            round_, found = one_round(number, seed, where)
            compared += len(round_.damage)
            aborts += len(round_.kmod_aborted_on)
            if found:
                differences.append(Difference(round_, found))
    return differences, compared, aborts


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 100
    seed = int(argv[1]) if len(argv) > 1 else 0
    differences, compared, aborts = run(rounds, seed)
    for difference in differences:
        print(difference, end="\n\n")
    print(
        f"{rounds} trees, {compared} damaged modules, seed {seed}, lkm hash seed {HASH_SEED}: "
        f"{len(differences)} trees differ; kmod aborted on {aborts} modules",
        file=sys.stderr,
    )
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
