"""Completions as the real shells offer them: bash through its completion function, zsh through
a pseudo-terminal (``zsh/zpty``) with ``compadd`` reporting what it adds, fish with
``complete -C``. Each returns, per command line, the words offered at its end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from support.world import unavailable

BIN = str(Path(sys.executable).parent)  # where this venv's ``lkm`` is


def shell(name: str) -> str:
    """The shell's path; missing, a skip on a developer's machine and a failure on CI."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed (apt-get install {name})")
    return found


def _environment() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def with_proc_modules(argv: list[str], proc_modules: Path | None) -> list[str]:
    """``argv`` run where ``/proc/modules`` is the file ``proc_modules`` (a /proc recorded in
    a guest: the machine running the tests may have none), in a mount namespace of its own
    with a tmpfs over /proc; None: as it is."""
    if proc_modules is None:
        return argv
    unshare = shutil.which("unshare") or "unshare"
    probe = [unshare, "--map-root-user", "--mount", "true"]
    try:
        usable = subprocess.run(probe, capture_output=True, check=False).returncode == 0
    except OSError:  # no unshare at all
        usable = False
    if not usable:
        unavailable("no mount namespace for a /proc of its own (unshare --map-root-user)")
    setup = 'mount -t tmpfs proc /proc && cp "$0" /proc/modules && exec "$@"'
    return [unshare, "--map-root-user", "--mount", "sh", "-c", setup, str(proc_modules),
            *argv]  # fmt: skip


def bash_words(line: str) -> list[str]:
    """The words bash makes of a command line for completion: split at blanks and, as
    COMP_WORDBREAKS has them, at ':' and '=' (each its own word); the last one is the one being
    completed, empty after a blank."""
    import re

    words = [w for token in line.split() for w in re.split(r"([:=])", token) if w]
    return [*words, ""] if line.endswith(" ") or not words else words


def bash(
    script: Path, lines: Sequence[Sequence[str] | str], proc_modules: Path | None = None
) -> list[list[str]]:
    """What ``_lkm`` puts in COMPREPLY for each command line, its last word the one completed;
    the function is the one ``complete -p lkm`` names. A line given as a string is also the
    COMP_LINE bash would set, and split as bash splits it (:func:`bash_words`)."""
    program = [
        f"source {_quote(str(script))}",
        'function=$(complete -p lkm | sed -n "s/.*-F \\([^ ]*\\) lkm$/\\1/p")',
        '[[ -n $function ]] || { echo "no completion registered for lkm" >&2; exit 1; }',
    ]
    for item in lines:
        line, words = (item, bash_words(item)) if isinstance(item, str) else ("", item)
        quoted = " ".join(_quote(word) for word in words)
        program += [
            f"COMP_WORDS=({quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=()",
            f"COMP_LINE={_quote(line)}; COMP_POINT=${{#COMP_LINE}}",
            '"$function" lkm; printf "%s\\n" "${COMPREPLY[@]}"; echo "<end>"',
        ]
    argv = [shell("bash"), "--norc", "--noprofile", "-c", "\n".join(program)]
    done = subprocess.run(
        with_proc_modules(argv, proc_modules),
        capture_output=True, text=True, check=True, env=_environment(), timeout=60,
    )  # fmt: skip
    return _split(done.stdout)


ZSH_SETUP = r"""
PROMPT= RPROMPT= PS2=
fpath=(%(fpath)s $fpath)
autoload -Uz compinit
compinit -u -D
bindkey '^I' complete-word
compadd() {
    local -a hits
    if (( ${@[(I)-[OAD]*]} )); then
        builtin compadd "$@"
        return
    fi
    builtin compadd -O hits "$@"
    (( $#hits )) && print -rl -- "<""hit>"${^hits} >/dev/tty
    builtin compadd "$@"
}
__lkm_test_end() { print -r -- "<""end>" >/dev/tty; exit }
comppostfuncs=(__lkm_test_end)
"""

ZSH_CAPTURE = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "source ${(q)1}"
zpty -w -n z "$2"$'\t'
local line
while zpty -r z line; do
    line=${line//$'\r'/}
    [[ $line == *'<end>'* ]] && break
    [[ $line == *'<hit>'* ]] && print -r -- ${line#*<hit>}
done
zpty -d z
"""


def zsh(
    directory: Path, lines: Sequence[str], scratch: Path, proc_modules: Path | None = None
) -> list[list[str]]:
    """The matches zsh adds at the end of each line, with ``directory`` (holding ``_lkm``) on
    $fpath and compinit run; one interactive zsh for each line."""
    zsh_path = shell("zsh")
    setup = scratch / "setup.zsh"
    setup.write_text(ZSH_SETUP % {"fpath": _quote(str(directory))})
    capture = scratch / "capture.zsh"
    capture.write_text(ZSH_CAPTURE)
    found = []
    for line in lines:  # the shell exits once it has completed (comppostfuncs)
        done = subprocess.run(
            with_proc_modules([zsh_path, "-f", str(capture), str(setup), line], proc_modules),
            capture_output=True, text=True, check=True, env=_environment(), timeout=60,
        )  # fmt: skip
        found.append([word for word in done.stdout.splitlines() if word])
    return found


def fish(script: Path, lines: Sequence[str], proc_modules: Path | None = None) -> list[list[str]]:
    """The candidates of ``complete -C LINE`` (without their descriptions) for each line."""
    program = [f"source {_quote(str(script))}"]
    for line in lines:
        program.append(f"complete -C {_quote(line)} | string replace -r '\\t.*' ''; echo '<end>'")
    done = subprocess.run(
        with_proc_modules([shell("fish"), "--no-config", "-c", "\n".join(program)], proc_modules),
        capture_output=True, text=True, check=True, env=_environment(), timeout=60,
    )  # fmt: skip
    assert done.stderr == "", done.stderr
    return _split(done.stdout)


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def _split(output: str) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for word in output.splitlines():
        if word == "<end>":
            groups.append([])
        elif word:
            groups[-1].append(word)
    return groups[:-1]
