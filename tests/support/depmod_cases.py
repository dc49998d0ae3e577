"""depmod on small made-up module directories, and what kmod 34 prints and writes for each.

The trees are made of depmod_trees' tiny modules: dependency cycles, the same module names in
several places under each depmod.d of depmod_trees.CONFIGS, and a small tree with CRCs, a
System.map, a Module.symvers and broken files run with depmod_trees.MESSAGE_OPTIONS. ``{dir}``
stands for the case's directory (the base directory, ``-b``). ``data/depmod-cases.json`` holds
kmod 34's output and the files it left in the module directory, recorded by ``python
tests/support/depmod_cases.py record`` (the slow test_recorded_outputs_are_kmods checks them against
kmod again).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script (``python tests/support/depmod_cases.py record``): the package importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import recording
from support.depmod_trees import CONFIGS, MESSAGE_OPTIONS, cycle_tree, duplicates_tree, module_elf
from support.modinfo_cases import Output, fill, placeholder

RECORDED = Path(__file__).parent.parent / "data" / "depmod-cases.json"
RELEASE = "1.0.0"
MODDIR = f"lib/modules/{RELEASE}"


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)  # relative to {dir}
    dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What depmod printed, and the ``modules.*`` files it left in the module directory."""

    output: Output
    files: dict[str, bytes]

    def to_json(self) -> dict[str, object]:
        files = {name: data.decode("latin-1") for name, data in self.files.items()}
        return {**self.output.to_json(), "files": files}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Outcome:
        files = data["files"]
        assert isinstance(files, dict)
        return cls(Output.from_json(data), {k: str(v).encode("latin-1") for k, v in files.items()})


def _in_moddir(files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{MODDIR}/{path}": data for path, data in files.items()}


def small_tree() -> dict[str, bytes]:
    """Modules with a chain of dependencies, CRCs, aliases, a softdep and device names, three
    broken files, the builtin lists, and a System.map and Module.symvers that disagree."""
    mii = module_elf(
        exports=["mii_check_media", "mii_link_ok"],
        export_crcs={"mii_check_media": 0x1111, "mii_link_ok": 0x2222},
        modinfo=["license=GPL", "alias=mdio:0000*"],
    )
    files = {
        "kernel/drivers/net/mii.ko": mii,
        "kernel/drivers/net/ethernet/3com/3c59x.ko": module_elf(
            imports=["mii_check_media", "_printk", "__fentry__"],
            import_crcs={"mii_check_media": 0x1, "_printk": 0x12345678, "__fentry__": 0x5},
            modinfo=["license=GPL", "alias=pci:v000010B7d00005900sv*sd*bc*sc*i*"],
        ),
        "kernel/crypto/twofish_common.ko": module_elf(exports=["twofish_setkey"]),
        "kernel/arch/x86/crypto/twofish-x86_64.ko": module_elf(
            exports=["twofish_enc_blk"], imports=["twofish_setkey", "boot_cpu_data"]
        ),
        "kernel/arch/x86/crypto/twofish-x86_64-3way.ko": module_elf(
            imports=["twofish_enc_blk", "twofish_setkey", "nowhere_fn", "weak_fn"],
            weak=["weak_fn"],
            modinfo=["alias=crypto-twofish", "alias=twofish"],
        ),
        "kernel/misc/devthing.ko": module_elf(
            modinfo=["alias=devname:thing", "alias=char-major-10-200", "softdep=pre: mii"]
        ),
        "kernel/bad1.ko": b"garbage\n",
        "kernel/bad2.ko": mii[:100],
        "kernel/empty.ko": b"",
        "modules.builtin": b"kernel/lib/blt.ko\n",
        "modules.builtin.modinfo": b"blt.alias=blt-alias\0blt.license=GPL\0",
    }
    return {
        **_in_moddir(files),
        "System.map": b"ffffffff81000000 r __ksymtab__printk\nffffffff81000000 T __fentry__\n"
        b"ffffffff81000000 R __ksymtab___stack_chk_fail\nbadline\n"
        b"  ffffffff81000000 r __ksymtab_boot_cpu_data\n",
        "Module.symvers": b"0x12345678\t_printk\tvmlinux\tEXPORT_SYMBOL\n"
        b"0xdeadbeef\t__fentry__\tvmlinux\tEXPORT_SYMBOL\n"
        b"0x1\tmii_check_media\tdrivers/net/mii\tEXPORT_SYMBOL_GPL\n",
    }


BAD_DEPMOD_D = (
    b"search\noverride\noverride dup\noverride dup 1.0.0\nexclude\nexternal\n"
    b"external 1.0.0\nfrobnicate x\n  search extra\n# comment\nsearch built-in extra\n"
)


def _cases() -> list[Case]:
    conf = ["-C", "{dir}/conf"]
    cases = []
    cycles = {**_in_moddir(cycle_tree()), "conf/.keep": b""}
    cases.append(Case("cycles", [*conf, "-b", "{dir}", RELEASE], cycles))
    cases.append(Case("cycles-n", [*conf, "-b", "{dir}", "-n", RELEASE], cycles))
    duplicates = _in_moddir(duplicates_tree())
    for name, text in {**CONFIGS, "bad-lines": BAD_DEPMOD_D.decode()}.items():
        files = {**duplicates, "conf/a.conf": text.encode()}
        cases.append(Case(f"depmod.d-{name}", [*conf, "-b", "{dir}", RELEASE], files))
        cases.append(Case(f"depmod.d-{name}-v-n", [*conf, "-b", "{dir}", "-v", "-n", RELEASE],
                          files))  # fmt: skip
    small = {**small_tree(), "conf/.keep": b""}
    for number, options in enumerate(MESSAGE_OPTIONS):
        args = [o.replace("{base}", "{dir}") for o in options]
        if options[-1].startswith("{base}/x"):
            args = [*conf, *args[:-1], "-b", "{dir}", args[-1]]
        else:
            args = [*conf, *args, "-b", "{dir}", RELEASE]
        cases.append(Case(f"small-{number:02d}-{'_'.join(options)[:20]}", args, small,
                          ("lib/modules/1.0.0/kernel/dir.ko",)))  # fmt: skip
    cases += [
        Case("small-write", [*conf, "-b", "{dir}", RELEASE], small),
        Case("small-quick-fresh", [*conf, "-A", "-b", "{dir}", RELEASE], small),
        Case(
            "small-errsyms-map",
            [*conf, "-e", "-F", "{dir}/System.map", "-b", "{dir}", RELEASE],
            small,
        ),
        Case("release-missing", [*conf, "-b", "{dir}", "9.9.9"], small),
        Case("release-missing-n", [*conf, "-n", "-b", "{dir}", "9.9.9"], small),
        Case(
            "module-file-named",
            [*conf, "-b", "{dir}", RELEASE, f"{{dir}}/{MODDIR}/kernel/crypto/twofish_common.ko"],
            small,
        ),
        Case("module-file-missing", [*conf, "-b", "{dir}", RELEASE, "{dir}/nowhere.ko"], small),
        Case("bad-short-option", ["-X"]),
        Case("no-such-config", ["-C", "{dir}/nowhere", "-n", "-b", "{dir}", RELEASE], small),
    ]
    return cases


CASES = {case.name: case for case in _cases()}


def materialise(case: Case, where: Path) -> None:
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    for name, data in case.files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)
        (where / name).write_bytes(data)
    for name in case.dirs:
        (where / name).mkdir(parents=True)


def outcome(case: Case, output: Output, where: Path) -> Outcome:
    """The output with ``{dir}`` put back, and the module directory's new ``modules.*``."""
    moddir = where / MODDIR
    made = {}
    if moddir.is_dir():
        for path in sorted(moddir.iterdir()):
            relative = f"{MODDIR}/{path.name}"
            if path.name.startswith("modules.") and relative not in case.files:
                made[path.name] = path.read_bytes()
    return Outcome(placeholder(output, str(where)), made)


def run_lkm_inprocess(args: list[str]) -> Output:
    from functools import partial

    from lkm.cli import depmod
    from support.recorded import run_captured

    return run_captured(partial(depmod.main), args)


def record_with_kmod() -> dict[str, Outcome]:
    from support import world

    results = {}
    for case in CASES.values():
        where = world.CHROOT / "scratch-depmod-cases" / case.name
        materialise(case, where)
        inside = "/" + str(where.relative_to(world.CHROOT))
        done = world.kmod("depmod", *fill(case.args, inside))
        output = placeholder(Output(done.stdout, done.stderr, done.returncode), inside)
        results[case.name] = outcome(case, output, where)
        shutil.rmtree(where)
    return results


def load_recorded() -> dict[str, Outcome]:
    return recording.load(RECORDED, Outcome.from_json)


def main(argv: list[str]) -> int:
    return recording.record_main(argv, "depmod_cases.py", record_with_kmod, RECORDED)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
