"""Carrying out a load plan: the resolver's actions given to the kernel, as libkmod's probe does.

:meth:`lkm.resolve.Resolver.probe` decides what loading a module means (dependencies, softdeps,
options, install commands); :func:`insert` does it: each module file goes to the kernel through
:func:`lkm.kernel.load_file`, each install command to ``/bin/sh -c`` with ``$CMDLINE_OPTS``
replaced by the options and ``MODPROBE_MODULE`` set. What the kernel already has is skipped
(:meth:`lkm.resolve.Resolver.skips_loading`: listed in modules.builtin, or live). The flags
are libkmod's public ``KMOD_PROBE_*`` values, so callers of the python-kmod layer can pass
them unchanged.
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Callable

from lkm.errors import LkmError
from lkm.typing_lite import TYPE_CHECKING

if TYPE_CHECKING:
    from lkm.kernel import InitFlag, Kernel
    from lkm.resolve import Action, LoadedState, Match, Refusal, Resolver


class ProbeFlag(enum.IntFlag):
    """``kmod_module_probe_insert_module`` flags (libkmod.h); blacklist ones are also returned."""

    FORCE_VERMAGIC = 0x00001
    FORCE_MODVERSION = 0x00002
    IGNORE_COMMAND = 0x00004
    IGNORE_LOADED = 0x00008
    DRY_RUN = 0x00010
    FAIL_ON_LOADED = 0x00020
    APPLY_BLACKLIST_ALL = 0x10000
    APPLY_BLACKLIST = 0x20000
    APPLY_BLACKLIST_ALIAS_ONLY = 0x40000


class ProbeError(LkmError):
    """Loading stopped at module ``name``; ``errno`` says why (EEXIST: already loaded)."""

    def __init__(self, name: str, code: int, detail: str | None = None) -> None:
        self.name = name
        self.errno = code
        self.command: str | None = None  # an install command that failed, and its status
        self.status = 0
        self.path: str | None = None  # the file the kernel refused, when it did
        self.detail = detail or os.strerror(code)
        super().__init__(f"could not insert '{name}': {self.detail}")


CommandRunner = Callable[[str, str], int]
"""Runs an install command for a module: ``(command, module name) -> exit status``."""


def run_shell(command: str, module: str) -> int:
    """``/bin/sh -c command`` with ``MODPROBE_MODULE`` set, as kmod runs install commands.

    kmod runs them through system(3), and this does what a caller of system sees: while the
    command runs, SIGINT and SIGQUIT reach the command but not this process (Ctrl-C stops
    ``sleep`` in an install command, and modprobe goes on), and the status is the command's
    exit code, which is 0 for a command killed by a signal (kmod 34 takes that as success).
    """
    import signal
    import subprocess
    import threading

    env = {**os.environ, "MODPROBE_MODULE": module}
    argv = ["/bin/sh", "-c", command]
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may change handlers; there Python does not take signals anyway.
        return max(0, subprocess.run(argv, env=env, check=False).returncode)
    # A handler that does nothing, not SIG_IGN: exec resets a handler to the default action,
    # so the command is interrupted as a command started from the shell would be.
    caught = (signal.SIGINT, signal.SIGQUIT)
    saved = [signal.signal(number, _swallow) for number in caught]
    try:
        done = subprocess.run(argv, env=env, check=False)
    finally:
        for number, handler in zip(caught, saved, strict=True):
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
    return max(0, done.returncode)  # negative: killed by that signal; its exit code reads as 0


def _swallow(_signum: int, _frame: object) -> None:
    """The signal is for the command that runs in the foreground, not for this process."""


def insert(
    resolver: Resolver,
    match: Match,
    *,
    kernel: Kernel,
    state: LoadedState,
    flags: int = 0,
    extra_options: str = "",
    kernel_compression: str | None = None,
    run_command: CommandRunner = run_shell,
    on_action: Callable[[Action], None] | None = None,
    decompress_note: Callable[[str], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    on_soft_failure: Callable[[ProbeError], None] | None = None,
) -> int:
    """Load ``match`` with what it needs first; 0, or the blacklist flag that stopped it.

    ``on_action`` sees every action about to be taken (also with ``DRY_RUN``, which takes
    none); ``decompress_note`` the decompressor's complaint about a file, before the error;
    ``on_error`` kmod's error line for a module with nothing to load (no file, not built in,
    its install command ignored), which fails with ENOENT. A failing step that a softdep led
    to goes to ``on_soft_failure`` and loading goes on, as kmod 34 goes on. Raises ProbeError:
    EEXIST for a target already there with ``FAIL_ON_LOADED``, the kernel's errno when it
    refuses a file, the loader's when a file cannot be read, ENOENT for nothing to load, and
    EINVAL when an install command fails (with ``command`` and ``status`` set).
    """
    from lkm.kernel import InitFlag
    from lkm.resolve import ActionKind

    flags = ProbeFlag(flags)
    name = match.name
    blacklisted = resolver.is_blacklisted(name)
    for flag in (ProbeFlag.APPLY_BLACKLIST_ALL, ProbeFlag.APPLY_BLACKLIST):
        if flags & flag and blacklisted:
            return int(flag)
    if flags & ProbeFlag.APPLY_BLACKLIST_ALIAS_ONLY and blacklisted and match.alias is not None:
        return int(ProbeFlag.APPLY_BLACKLIST_ALIAS_ONLY)
    ignore_loaded = bool(flags & ProbeFlag.IGNORE_LOADED)
    fail_on_loaded = bool(flags & ProbeFlag.FAIL_ON_LOADED)
    if not ignore_loaded and resolver.skips_loading(name, state):
        if fail_on_loaded:
            raise ProbeError(name, errno.EEXIST, "Module already in kernel")
        return 0
    force = InitFlag(0)
    if flags & ProbeFlag.FORCE_VERMAGIC:
        force |= InitFlag.IGNORE_VERMAGIC
    if flags & ProbeFlag.FORCE_MODVERSION:
        force |= InitFlag.IGNORE_MODVERSIONS
    steps = resolver.probe_steps(
        match,
        extra_options=extra_options,
        ignore_commands=bool(flags & ProbeFlag.IGNORE_COMMAND),
    )
    for action, soft in steps:
        target = action.name == name
        if not (target and ignore_loaded) and resolver.skips_loading(action.name, state):
            continue
        if action.kind is ActionKind.BUILTIN:
            continue
        try:
            if action.kind is ActionKind.MISSING:
                if flags & ProbeFlag.DRY_RUN:
                    continue  # a dry run takes no step, so none fails
                if on_error is not None:
                    on_error(f"could not find module by name='{action.name}'")
                raise ProbeError(action.name, errno.ENOENT)
            if on_action is not None:
                on_action(action)
            if flags & ProbeFlag.DRY_RUN:
                continue
            carry_out(
                action,
                kernel,
                force=force,
                kernel_compression=kernel_compression,
                run_command=run_command,
                decompress_note=decompress_note,
            )
        except ProbeError as failed:
            # Someone else loaded it meanwhile: fine, unless the caller wanted it new.
            if failed.errno == errno.EEXIST and failed.path and not (target and fail_on_loaded):
                continue
            if not soft:
                raise
            if on_soft_failure is not None:
                on_soft_failure(failed)
    return 0


def carry_out(
    action: Action,
    kernel: Kernel,
    *,
    force: InitFlag | None = None,
    kernel_compression: str | None = None,
    run_command: CommandRunner = run_shell,
    decompress_note: Callable[[str], None] | None = None,
) -> None:
    """One step of loading: its install command, or its file given to the kernel.

    Raises ProbeError as :func:`insert` does (``path`` set when the kernel refused the file:
    EEXIST then means the module is there already).
    """
    from lkm.kernel import KernelCallError, LoadError, load_file
    from lkm.resolve import ActionKind

    if action.kind is ActionKind.INSTALL:
        command = (action.command or "").replace("$CMDLINE_OPTS", action.options)
        status = run_command(command, action.name)
        if status != 0:
            failed = ProbeError(action.name, errno.EINVAL)
            failed.command, failed.status = command, status
            raise failed
        return
    try:
        load_file(
            kernel,
            action.path or "",
            action.options,
            force=force or False,
            kernel_compression=kernel_compression,
            decompress_note=decompress_note,
        )
    except KernelCallError as err:
        refused = ProbeError(action.name, err.errno)
        refused.path = action.path
        raise refused from err
    except LoadError as err:
        raise ProbeError(action.name, err.errno) from err


class RemoveError(LkmError):
    """Removal stopped at module ``name``: the kernel's errno, or EINVAL for a failed command."""

    def __init__(self, name: str, code: int, detail: str | None = None) -> None:
        self.name = name
        self.errno = code
        self.command: str | None = None  # a remove command that failed, and its status
        self.status = 0
        super().__init__(f"could not remove '{name}': {detail or os.strerror(code)}")


class _Carried(list["Action | Refusal"]):
    """The resolver's step list, carrying each action out as it is appended (see removal)."""

    def __init__(self, do: Callable[[Action | Refusal], None]) -> None:
        super().__init__()
        self._do = do

    def append(self, step: Action | Refusal) -> None:
        super().append(step)
        self._do(step)


def remove(
    resolver: Resolver,
    match: Match,
    *,
    kernel: Kernel,
    state: LoadedState,
    remove_holders: bool = False,
    ignore_commands: bool = False,
    first_time: bool = False,
    force: bool = False,
    wait_msec: int | None = None,
    dry_run: bool = False,
    run_command: CommandRunner = run_shell,
    on_step: Callable[[Action | Refusal], None] | None = None,
) -> list[Action | Refusal]:
    """Remove ``match`` as ``modprobe -r`` does; the steps taken, the last a Refusal if refused.

    The resolver decides step by step (:meth:`lkm.resolve.Resolver.removal`) and each step is
    carried out before the next is decided, so a dependency is checked after its user is gone.
    ``on_step`` sees each step first. ``wait_msec`` (``-w``) keeps asking the kernel while the
    module is busy, for that long. Raises RemoveError when the kernel or a command refuses.
    """
    from lkm.resolve import Action, ActionKind

    def carry_out(step: Action | Refusal) -> None:
        if on_step is not None:
            on_step(step)
        if dry_run or not isinstance(step, Action):
            return
        if step.kind is ActionKind.REMOVE:
            status = run_command(step.command or "", step.name)
            if status != 0:
                failed = RemoveError(step.name, errno.EINVAL)
                failed.command, failed.status = step.command, status
                raise failed
        elif step.kind is ActionKind.RMMOD:
            _delete(kernel, step.name, force=force, wait_msec=wait_msec)

    import contextlib

    steps = _Carried(carry_out)
    # kmod 34 gives up on a module still busy after -w's time without a word.
    with contextlib.suppress(_WaitedOut):
        resolver.removal(
            match,
            _Waiting(state, match.name) if wait_msec is not None else state,
            remove_holders=remove_holders,
            ignore_commands=ignore_commands,
            first_time=first_time,
            steps=steps,
        )
    return list(steps)


class _WaitedOut(Exception):
    """The module stayed in use for all of ``-w``'s time."""


class _Waiting:
    """The target's refcount reads 0: with ``-w`` the kernel, not a check, decides."""

    def __init__(self, state: LoadedState, target: str) -> None:
        self._state = state
        self._target = target

    def state(self, name: str) -> str | None:
        return self._state.state(name)

    def holders(self, name: str) -> list[str]:
        return self._state.holders(name)

    def refcount(self, name: str) -> int | None:
        return 0 if name == self._target else self._state.refcount(name)


def _delete(kernel: Kernel, name: str, *, force: bool, wait_msec: int | None) -> None:
    import time

    from lkm.kernel import KernelCallError, remove_module

    deadline = None if wait_msec is None else time.monotonic() + wait_msec / 1000
    while True:
        try:
            remove_module(kernel, name, force=force)
            return
        except KernelCallError as err:
            if err.errno in (errno.EAGAIN, errno.EBUSY) and deadline is not None:
                if time.monotonic() >= deadline:
                    raise _WaitedOut from err
                time.sleep(0.01)
                continue
            raise RemoveError(name, err.errno) from err


__all__ = [
    "CommandRunner",
    "ProbeError",
    "ProbeFlag",
    "RemoveError",
    "carry_out",
    "insert",
    "remove",
    "run_shell",
]
