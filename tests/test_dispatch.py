"""One program, many tools: dispatch on the command word or on the name it was started by."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lkm import __version__
from lkm.cli import commands
from lkm.cli.commands import BY_NAME, COMMANDS, TOOLS
from support.modinfo_cases import GOOD

SCRIPT = Path(sys.executable).parent / "lkm"


def run(cmd: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, check=False)


def test_version() -> None:
    done = run([sys.executable, "-m", "lkm", "--version"])
    assert done.stdout.decode().splitlines()[0] == f"lkm version {__version__}"
    assert done.returncode == 0


def test_unknown_command_shows_the_usage_after_the_error() -> None:
    done = run([sys.executable, "-m", "lkm", "frobnicate"])
    usage = run([sys.executable, "-m", "lkm", "--help"]).stdout
    assert done.stderr == b"lkm: ERROR: unknown command 'frobnicate'\n" + usage
    assert (done.stdout, done.returncode) == (b"", 1)


def test_no_command_shows_the_usage_after_the_error() -> None:
    done = run([sys.executable, "-m", "lkm"])
    usage = run([sys.executable, "-m", "lkm", "--help"]).stdout
    assert (done.stdout, done.stderr, done.returncode) == (
        b"",
        b"lkm: ERROR: missing command\n" + usage,
        1,
    )


def test_help_has_a_line_for_each_command() -> None:
    done = run([sys.executable, "-m", "lkm", "--help"])
    assert done.returncode == 0
    text = done.stdout.decode()
    for command in COMMANDS:
        assert re.search(
            rf"^  {re.escape(command.name)} +{re.escape(command.summary)}$", text, re.M
        )
    assert "'lkm COMMAND --help' shows a command's own options." in text


def test_every_entry_point_loads() -> None:
    assert len(BY_NAME) == len(COMMANDS)
    for command in COMMANDS:
        assert callable(command.load()), command.entry
    # The tools kmod 34 is, and so the names a link can take.
    assert TOOLS == ("modinfo", "modprobe", "depmod", "lsmod", "insmod", "rmmod", "kmod")


@pytest.mark.parametrize("tool", TOOLS)
def test_a_link_acts_as_its_tool(tmp_path: Path, tool: str) -> None:
    link = tmp_path / tool
    link.symlink_to(SCRIPT)
    through_link = run([str(link), "--help"])
    through_word = run([sys.executable, "-m", "lkm", tool, "--help"])
    assert through_link.returncode == 0
    assert through_link.stdout == through_word.stdout
    assert through_link.stdout.startswith(b"Usage:" if tool != "kmod" else b"kmod - ")


def test_the_table_of_commands_imports_no_tool() -> None:
    """Dispatch reads the table on every start: it names entry points, it loads none."""
    source = Path(commands.__file__).read_text()
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    tools = {name for name in imported if name and name.startswith("lkm")}
    assert tools <= {"lkm.typing_lite"}, imported


def test_starting_one_tool_loads_no_other() -> None:
    script = (
        "import sys\n"
        "from lkm.cli import dispatch\n"
        "dispatch(['lkm', 'lsmod'])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'lkm')))\n"
    )
    done = run([sys.executable, "-c", script])
    loaded = set(done.stdout.decode().splitlines()[-1].split())
    assert loaded == {
        "lkm", "lkm.errors", "lkm.cli", "lkm.cli.commands", "lkm.cli.common",
        "lkm.cli.getopt", "lkm.cli.output", "lkm.cli.lsmod", "lkm.kernel", "lkm.state", "lkm.text",
        "lkm.system",  # the places lsmod reads (a small value, no import of its own)
        "lkm.typing_lite", "lkm.enum_lite",
    }  # fmt: skip


def test_started_through_a_link_named_modinfo(tmp_path: Path) -> None:
    module = tmp_path / "good.ko"
    module.write_bytes(GOOD)
    link = tmp_path / "modinfo"
    link.symlink_to(SCRIPT)  # the console script pip installs beside the interpreter
    done = run([str(link), "-F", "license", str(module)])
    assert (done.stdout, done.stderr, done.returncode) == (b"GPL\n", b"", 0)


def test_module_entry_point_and_console_script_agree(tmp_path: Path) -> None:
    module = tmp_path / "good.ko"
    module.write_bytes(GOOD)
    by_module = run([sys.executable, "-m", "lkm", "modinfo", str(module)])
    assert by_module.returncode == 0
    assert by_module.stdout.startswith(b"filename:       " + os.fsencode(module) + b"\n")
    assert run([str(SCRIPT), "modinfo", str(module)]).stdout == by_module.stdout
