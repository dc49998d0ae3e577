"""modprobe's configuration: modprobe.d files, the module directory's softdep/weakdep files and
the kernel command line, as one immutable :class:`Config`, plus ``modprobe -c``'s rendering.

What kmod 34 does, pinned by black-box tests:

- Files: the directories (highest precedence first) are scanned in directory order; only
  ``*.conf`` names that do not start with ``.`` count. A name seen in a higher directory shadows
  the same name lower down. A path that is not a directory is one file, whatever its name.
  ``modules.softdep`` and ``modules.weakdep`` of the module directory join the list, and all of
  it is read sorted by basename (byte order). Then the kernel command line is added.
- Lines: a physical line ends at a NUL byte; ``\\`` before a line break joins the next line,
  ``\\x`` is ``x``; the line number reported is that of the last physical line. A line is a
  comment if it starts with ``#`` after that (``  # x`` is not a comment but a bad line).
- Fields are split on spaces and tabs; a directive's "rest" (options, commands, dependency
  lists) starts right after the one separator that ends the module name and must not be empty.
- Module names are normalised (``-`` is ``_`` outside ``[...]``); a name with a ``[`` that is
  never closed or a stray ``]`` makes the line bad.

Bad lines never stop parsing: they become :class:`ConfigProblem` records, in kmod's words.
"""

from __future__ import annotations

import os
import stat

from lkm.typing_lite import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

DEFAULT_CONFIG_DIRS = (
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
)
DEFAULT_CMDLINE = "/proc/cmdline"
# Files of the module directory that are read as configuration too.
MODULE_DIR_FILES = ("modules.softdep", "modules.weakdep")
# What modprobe -c dumps after the configuration, in this order.
DUMPED_INDEXES = ("modules.alias.bin", "modules.symbols.bin")

_SEPARATORS = " \t"
# C's isspace() in the C locale: what separates words on the kernel command line and in
# dependency lists.
_CMDLINE_SPACE = frozenset(" \t\n\v\f\r")


# Records are NamedTuples, not dataclasses: importing dataclasses costs modprobe's start-up a
# fifth of Python's own.


class ConfigProblem(NamedTuple):
    """A line or file kmod ignores; ``message`` is what libkmod prints after ``ERROR: ``."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message


class Alias(NamedTuple):
    pattern: str  # an fnmatch pattern, normalised
    module: str


class Options(NamedTuple):
    module: str  # a module name or an alias
    options: str  # as written, tabs turned into spaces


class Command(NamedTuple):
    """An ``install`` or ``remove`` command: shell text, kept exactly as written."""

    module: str
    command: str


class SoftDep(NamedTuple):
    """``softdep MODULE pre: ... post: ...``.

    ``names`` are all dependency names in line order (``pre:`` and ``post:`` markers dropped);
    ``pre_at``/``post_at`` say which of them belong to which list.
    """

    module: str
    names: tuple[str, ...]
    pre_at: tuple[int, ...]
    post_at: tuple[int, ...]

    @property
    def pre(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self.pre_at)

    @property
    def post(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self.post_at)

    def shown(self) -> str:
        """The value as ``modprobe -c`` prints it.

        kmod prints each list as the run of names from its first to its last member, so
        interleaved lists (``pre: a post: b pre: c``) show ``pre: a b c``; and no space comes
        before ``post:``. Both are kmod 34's, reproduced on purpose.
        """
        out = ""
        for label, at in (("pre:", self.pre_at), ("post:", self.post_at)):
            if at:
                out += label + "".join(" " + name for name in self.names[at[0] : at[-1] + 1])
        return out


class WeakDep(NamedTuple):
    module: str
    names: tuple[str, ...]


class Origin(NamedTuple):
    """Where one configuration entry was read: its file and the number of the line that ends
    its logical line (what kmod's messages name); ``line`` is None for the kernel command
    line, whose ``path`` is that file."""

    path: str
    line: int | None


# The fields of Config that hold entries, in Config's order (Origins mirrors them).
ENTRY_FIELDS = ("blacklist", "install", "remove", "aliases", "options", "softdeps", "weakdeps")


class Origins(NamedTuple):
    """Where each entry of a :class:`Config` came from: ``origins.options[i]`` is the origin
    of ``config.options[i]``, and so on for every entry field."""

    blacklist: tuple[Origin, ...] = ()
    install: tuple[Origin, ...] = ()
    remove: tuple[Origin, ...] = ()
    aliases: tuple[Origin, ...] = ()
    options: tuple[Origin, ...] = ()
    softdeps: tuple[Origin, ...] = ()
    weakdeps: tuple[Origin, ...] = ()

    def __add__(self, other: Origins) -> Origins:  # type: ignore[override]
        return Origins(*(mine + theirs for mine, theirs in zip(self, other, strict=True)))


class Config(NamedTuple):
    """Everything modprobe knows from configuration, in the order it was read."""

    blacklist: tuple[str, ...] = ()
    install: tuple[Command, ...] = ()
    remove: tuple[Command, ...] = ()
    aliases: tuple[Alias, ...] = ()
    options: tuple[Options, ...] = ()
    softdeps: tuple[SoftDep, ...] = ()
    weakdeps: tuple[WeakDep, ...] = ()
    problems: tuple[ConfigProblem, ...] = ()

    # Adding configurations joins them field by field (not as tuples).
    def __add__(self, other: Config) -> Config:  # type: ignore[override]
        return Config(
            self.blacklist + other.blacklist,
            self.install + other.install,
            self.remove + other.remove,
            self.aliases + other.aliases,
            self.options + other.options,
            self.softdeps + other.softdeps,
            self.weakdeps + other.weakdeps,
            self.problems + other.problems,
        )

    # -- queries by (normalised) module name ---------------------------------------------
    # ``options`` and ``blacklist`` name modules literally; ``install``, ``remove``, ``softdep``
    # and ``weakdep`` give fnmatch patterns, and the first line whose pattern matches counts.

    def is_blacklisted(self, module: str) -> bool:
        return module in self.blacklist

    def options_for(self, name: str) -> tuple[str, ...]:
        """Every ``options`` text given for ``name`` (a module or an alias), in order."""
        return tuple(entry.options for entry in self.options if entry.module == name)

    def install_command(self, module: str) -> str | None:
        """The first ``install`` command whose pattern matches ``module``."""
        return next((c.command for c in self.install if matches(c.module, module)), None)

    def remove_command(self, module: str) -> str | None:
        return next((c.command for c in self.remove if matches(c.module, module)), None)

    def softdep(self, module: str) -> SoftDep | None:
        """The first ``softdep`` line whose pattern matches ``module``; only that one counts."""
        return next((s for s in self.softdeps if matches(s.module, module)), None)

    def weakdep(self, module: str) -> WeakDep | None:
        return next((w for w in self.weakdeps if matches(w.module, module)), None)

    def alias_targets(self, name: str) -> tuple[str, ...]:
        """Modules of every ``alias`` whose pattern matches ``name`` (C fnmatch), in order."""
        import re

        from lkm.wildcard import fnmatch_regex

        raw = os.fsencode(name)
        found = []
        for alias in self.aliases:
            regex = fnmatch_regex(os.fsencode(alias.pattern))
            if re.match(regex, raw, re.DOTALL):
                found.append(alias.module)
        return tuple(found)


_GLOB = frozenset("*?[\\")


def matches(pattern: str, name: str) -> bool:
    """Whether the fnmatch ``pattern`` of a configuration line (C's rules: ``\\`` escapes, no
    special ``/`` or ``.``) matches ``name``; a pattern without wildcards only itself."""
    if _GLOB.isdisjoint(pattern):
        return pattern == name
    import re

    from lkm.wildcard import fnmatch_regex

    return re.match(fnmatch_regex(os.fsencode(pattern)), os.fsencode(name), re.DOTALL) is not None


def normalize(name: str) -> str | None:
    """``name`` with ``-`` as ``_`` outside ``[...]``, or None where kmod rejects it."""
    text, ok = _normalize(name)
    return text if ok else None


def _normalize(name: str) -> tuple[str, bool]:
    """``name`` normalised and True; or, where kmod rejects it (a ``[`` never closed, a stray
    ``]``), False and what kmod shows of it: normalised up to that bracket, the rest as is."""
    if "[" not in name and "]" not in name:
        return name.replace("-", "_"), True  # nearly every name: no character-by-character walk
    out: list[str] = []
    i = 0
    while i < len(name):
        char = name[i]
        if char == "[":
            end = name.find("]", i + 1)
            if end < 0:
                return "".join(out) + name[i:], False
            out.append(name[i : end + 1])
            i = end + 1
            continue
        if char == "]":
            return "".join(out) + name[i:], False
        out.append("_" if char == "-" else char)
        i += 1
    return "".join(out), True


# -- modprobe.d files -------------------------------------------------------------------------


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each logical line: NUL cuts, ``\\`` escapes and joins."""
    pending: list[str] = []
    number = 0
    for number, physical in enumerate(text.split("\n"), 1):
        line = physical.split("\0", 1)[0]
        if "\\" not in line:  # nothing to unescape or join: the line as it is
            pending.append(line)
            yield number, "".join(pending)
            pending = []
            continue
        joined = False
        i = 0
        while i < len(line):
            char = line[i]
            if char == "\\":
                if i + 1 == len(line):
                    joined = True
                    break
                char = line[i + 1]
                i += 1
            pending.append(char)
            i += 1
        if not joined:
            yield number, "".join(pending)
            pending = []
    if pending:
        yield number, "".join(pending)


def _token(line: str, pos: int) -> tuple[str | None, int]:
    """Like C's strtok on spaces and tabs: the next word and where scanning resumes."""
    # String methods rather than a walk over characters: every configuration line is split so.
    rest = line[pos:].lstrip(_SEPARATORS)
    start = len(line) - len(rest)
    if not rest:
        return None, start
    space, tab = rest.find(" "), rest.find("\t")
    end = len(rest) if space < 0 and tab < 0 else min(at for at in (space, tab) if at >= 0)
    return rest[:end], min(start + end + 1, len(line))


def _head(line: str) -> tuple[str | None, str | None, int]:
    """The first two words of a line as two ``_token`` calls find them, and where its rest
    starts (after the one separator that ends the second word): once per line, so with
    few steps."""
    spaced = line.replace("\t", " ")  # the same positions, one separator
    body = spaced.lstrip(" ")
    if not body:
        return None, None, len(line)
    command, _, after = body.partition(" ")
    tail = after.lstrip(" ")
    if not tail:
        return command, None, len(line)
    first, separator, _ = tail.partition(" ")
    end = len(line) - len(tail) + len(first)
    return command, first, end + 1 if separator else end


# C's isspace() characters as one, so that str.split(" ") splits on all of them.
_TO_SPACE = str.maketrans(dict.fromkeys("\t\n\v\f\r", " "))


def _dependency_words(rest: str) -> list[str]:
    """The words of a ``softdep``/``weakdep`` line's rest, split on C's isspace.

    kmod never takes the rest's first character for a separator: a rest that starts with one
    blank (two after the module name) keeps it at the front of its first word (``" pre:"`` is
    then no marker), while a run of two or more is skipped as usual.
    """
    if not rest:
        return []
    others = rest[1:].translate(_TO_SPACE).split(" ")
    first = others[0]
    words = [rest[0] + first] if first or rest[0] not in _CMDLINE_SPACE else []
    words.extend(filter(None, others[1:]))  # the empty strings between separators dropped
    return words


class _Builder:
    """Accumulates one source's entries; a Config is made once at the end."""

    def __init__(self) -> None:
        self.blacklist: list[str] = []
        self.install: list[Command] = []
        self.remove: list[Command] = []
        self.aliases: list[Alias] = []
        self.options: list[Options] = []
        self.softdeps: list[SoftDep] = []
        self.weakdeps: list[WeakDep] = []
        self.problems: list[ConfigProblem] = []

    def sizes(self) -> tuple[int, ...]:
        return tuple(len(getattr(self, field)) for field in ENTRY_FIELDS)

    def origins(self, marks: Sequence[tuple[tuple[int, ...], Origin]]) -> Origins:
        """The origin of every entry, from ``marks``: the sizes before each line was added,
        with that line's origin."""
        found: list[list[Origin]] = [[] for _ in ENTRY_FIELDS]
        if not marks:  # nothing but comments, the last one without its newline
            return Origins()
        ends = [*(sizes for sizes, _ in marks[1:]), self.sizes()]
        for (before, origin), after in zip(marks, ends, strict=True):
            for field, (start, end) in enumerate(zip(before, after, strict=True)):
                found[field] += [origin] * (end - start)
        return Origins(*(tuple(each) for each in found))

    def build(self) -> Config:
        return Config(
            tuple(self.blacklist),
            tuple(self.install),
            tuple(self.remove),
            tuple(self.aliases),
            tuple(self.options),
            tuple(self.softdeps),
            tuple(self.weakdeps),
            tuple(self.problems),
        )

    def line(self, line: str, head: tuple[str | None, str | None, int]) -> bool:
        """Add one non-comment line, of which ``head`` is :func:`_head`'s; False if kmod calls
        it bad."""
        command, first, pos = head
        if command is None or first is None:
            return command is None  # a blank line is fine, a lone word is not
        module = normalize(first)
        rest = line[pos:] or None
        if command == "alias":
            target, _ = _token(line, pos)
            target_name = normalize(target) if target is not None else None
            if module is None or target_name is None:
                return False
            self.aliases.append(Alias(module, target_name))
        elif command == "blacklist":
            if module is None:
                return False
            self.blacklist.append(module)
        elif module is None or rest is None:
            return False
        elif command == "options":
            self.options.append(Options(module, rest.replace("\t", " ")))
        elif command in ("install", "remove"):
            target_list = self.install if command == "install" else self.remove
            target_list.append(Command(module, rest))
        elif command == "softdep":
            self.softdeps.append(_softdep(module, _dependency_words(rest)))
        elif command == "weakdep":
            self.weakdeps.append(WeakDep(module, tuple(_dependency_words(rest))))
        else:
            return False
        return True


def _softdep(module: str, words: list[str]) -> SoftDep:
    names: list[str] = []
    pre: list[int] = []
    post: list[int] = []
    current: list[int] | None = None  # words before the first marker belong nowhere
    for word in words:
        if word == "pre:":
            current = pre
        elif word == "post:":
            current = post
        elif current is not None:
            current.append(len(names))
            names.append(word)
    return SoftDep(module, tuple(names), tuple(pre), tuple(post))


def parse_config(text: str | bytes, path: str) -> Config:
    """One configuration file's entries; ``path`` is only used in messages."""
    return _parse_config(text, path, track=False)[0]


def parse_config_located(text: str | bytes, path: str) -> tuple[Config, Origins]:
    """:func:`parse_config`, and where in the file each entry was read."""
    config, origins = _parse_config(text, path, track=True)
    assert origins is not None
    return config, origins


def _parse_config(text: str | bytes, path: str, track: bool) -> tuple[Config, Origins | None]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    builder = _Builder()
    marks: list[tuple[tuple[int, ...], Origin]] = []
    for number, line in logical_lines(text):
        if line.startswith("#"):
            continue
        if track:
            marks.append((builder.sizes(), Origin(path, number)))
        head = _head(line)
        command = head[0]
        if command in ("include", "config"):
            builder.problems.append(
                ConfigProblem(
                    path,
                    number,
                    f"kmod_config_parse: {path}: command {command} is deprecated and not "
                    "parsed anymore",
                )
            )
        elif not builder.line(line, head):
            builder.problems.append(
                ConfigProblem(
                    path,
                    number,
                    f"kmod_config_parse: {path} line {number}: ignoring bad line starting "
                    f"with '{command}'",
                )
            )
    return builder.build(), builder.origins(marks) if track else None


# -- the kernel command line ------------------------------------------------------------------


def cmdline_words(text: str) -> list[str]:
    """Words of the kernel command line: double quotes protect spaces and stay in the word; a
    word whose quote is never closed is dropped, as kmod does."""
    if '"' not in text:  # nearly every command line: split by the string methods
        return [word for word in text.translate(_TO_SPACE).split(" ") if word]
    words = []
    start: int | None = None
    quoted = False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char in _CMDLINE_SPACE and not quoted:
            if start is not None:
                words.append(text[start:i])
                start = None
            continue
        if start is None:
            start = i
    if start is not None and not quoted:
        words.append(text[start:])
    return words


def parse_kernel_cmdline(text: str | bytes, path: str = DEFAULT_CMDLINE) -> Config:
    """``module.param[=value]`` words as ``options``; ``modprobe.blacklist=a,b`` as blacklist.

    kmod takes a word only if its part before ``=`` has exactly one dot, no quote and no blank
    (one can be there only inside quotes: ``" m.p=1 "`` is no option). A word opening with a
    quote has that quote moved after the ``=`` (``"m.p=a b"`` is ``p="a b"``).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    builder = _Builder()
    for word in cmdline_words(text):
        moved = word.startswith('"')
        key, eq, value = word[1:].partition("=") if moved else word.partition("=")
        if '"' in key or key.count(".") != 1 or not _CMDLINE_SPACE.isdisjoint(key):
            continue
        raw_module, _, param = key.partition(".")
        module, ok = _normalize(raw_module)
        if not ok:
            builder.problems.append(
                ConfigProblem(
                    path,
                    None,
                    "kcmdline_parse_result: Ignoring bad option on kernel command line while "
                    f"parsing module name: '{module}'",
                )
            )
            continue
        if moved:
            value = '"' + value
        if eq and module == "modprobe" and param == "blacklist":
            builder.blacklist.extend(value.split(","))
        else:
            # Tabs become spaces, as in configuration files.
            option = f"{param}={value}" if eq else param
            builder.options.append(Options(module, option.replace("\t", " ")))
    return builder.build()


# -- MODPROBE_OPTIONS -------------------------------------------------------------------------


def split_modprobe_options(text: str) -> list[str]:
    """The words kmod makes of ``$MODPROBE_OPTIONS``.

    Every single space ends a word (two spaces make an empty word, a final space nothing); a
    quote (``'`` or ``"``) with a partner later on groups the text between them and both go; a
    quote without one is kept, with all the rest of the text, in the last word. Tabs and
    backslashes are ordinary characters.
    """
    words = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == " ":
            words.append("".join(current))
            current = []
        elif char in "'\"":
            end = text.find(char, i + 1)
            if end < 0:
                current.append(text[i:])
                break
            current.append(text[i + 1 : end])
            i = end
        else:
            current.append(char)
        i += 1
    if current:
        words.append("".join(current))
    return words


# -- finding and loading the files ------------------------------------------------------------


class ConfigFiles(NamedTuple):
    """The files to read, sorted as kmod reads them, and the entries it complained about."""

    paths: tuple[str, ...]
    problems: tuple[ConfigProblem, ...] = ()


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def find_config_files(sources: Sequence[str], module_dir: str | None = None) -> ConfigFiles:
    """The configuration files of ``sources`` (directories or files, highest first) plus the
    module directory's softdep/weakdep files, shadowed and sorted as kmod does."""
    chosen: dict[str, str] = {}
    problems = []
    for source in sources:
        if not os.path.exists(source):
            continue
        if not _is_dir(source):
            chosen.setdefault(os.path.basename(source), source)
            continue
        try:
            entries = [entry.name for entry in os.scandir(source)]  # directory order
        except OSError as err:
            # A directory that cannot be listed is reported (each time it is named), and
            # nothing of it is read.
            reason = os.strerror(err.errno) if err.errno else str(err)
            problems.append(
                ConfigProblem(source, None, f"conf_files_list: opendir({source}): {reason}")
            )
            continue
        for name in entries:
            if name.startswith(".") or not name.endswith(".conf"):
                continue
            path = f"{source}/{name}"
            try:
                mode = os.stat(path).st_mode
            except OSError:
                problems.append(
                    ConfigProblem(
                        path, None, f"conf_files_filter_out: Cannot stat directory entry: {path}"
                    )
                )
                continue
            if stat.S_ISDIR(mode):
                problems.append(
                    ConfigProblem(
                        path,
                        None,
                        "conf_files_filter_out: Directories inside directories are not "
                        f"supported: {path}",
                    )
                )
                continue
            chosen.setdefault(name, path)
    if module_dir is not None:
        for name in MODULE_DIR_FILES:
            path = f"{module_dir}/{name}"
            try:
                regular = stat.S_ISREG(os.stat(path).st_mode)
            except OSError:
                regular = False
            if regular:
                chosen.setdefault(name, path)
    ordered = sorted(chosen.items(), key=lambda item: os.fsencode(item[0]))
    return ConfigFiles(tuple(path for _, path in ordered), tuple(problems))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError:
        return None


def load_config(
    sources: Sequence[str] | None = None,
    *,
    module_dir: str | None = None,
    cmdline: str | None = DEFAULT_CMDLINE,
) -> Config:
    """The whole configuration as modprobe reads it.

    ``sources``: configuration directories or files, highest precedence first (``-C``; default
    kmod's five directories). ``module_dir``: where modules.softdep/modules.weakdep live (None:
    not read). ``cmdline``: the kernel command line file (None: not read); a missing one counts
    as empty.
    """
    return _load(sources, module_dir, cmdline, track=False)[0]


def load_config_located(
    sources: Sequence[str] | None = None,
    *,
    module_dir: str | None = None,
    cmdline: str | None = DEFAULT_CMDLINE,
) -> tuple[Config, Origins]:
    """:func:`load_config`, and where each entry was read (file and line, or the kernel
    command line file with no line)."""
    config, origins = _load(sources, module_dir, cmdline, track=True)
    assert origins is not None
    return config, origins


def _load(
    sources: Sequence[str] | None, module_dir: str | None, cmdline: str | None, track: bool
) -> tuple[Config, Origins | None]:
    files = find_config_files(DEFAULT_CONFIG_DIRS if sources is None else sources, module_dir)
    config = Config(problems=files.problems)
    origins = Origins()
    for path in files.paths:
        data = _read(path)
        if data is not None:
            read, where = _parse_config(data, path, track)
            config = config + read
            if where is not None:
                origins = origins + where
    if cmdline is not None:
        data = _read(cmdline)
        if data is not None:
            read = parse_kernel_cmdline(data, cmdline)
            config = config + read
            if track:
                origin = Origin(cmdline, None)
                origins = origins + Origins(
                    *((origin,) * len(getattr(read, field)) for field in ENTRY_FIELDS)
                )
    return config, origins if track else None


# -- modprobe -c ------------------------------------------------------------------------------


def render_config(config: Config) -> Iterator[str]:
    """The configuration part of ``modprobe -c``, one line (with its newline) at a time."""
    for name in config.blacklist:
        yield f"blacklist {name}\n"
    for command in config.install:
        yield f"install {command.module} {command.command}\n"
    for command in config.remove:
        yield f"remove {command.module} {command.command}\n"
    for alias in config.aliases:
        yield f"alias {alias.pattern} {alias.module}\n"
    for options in config.options:
        yield f"options {options.module} {options.options}\n"
    for softdep in config.softdeps:
        yield f"softdep {softdep.module} {softdep.shown()}\n"
    for weakdep in config.weakdeps:
        yield f"weakdep {weakdep.module} {' '.join(weakdep.names)}\n"


def _index_lines(path: str) -> list[str]:
    from lkm.errors import LkmError
    from lkm.index import Index

    try:
        with Index.open(path) as index:
            return [
                f"alias {key} {value.value}\n" for key, values in index.items() for value in values
            ]
    except (OSError, LkmError):
        # kmod dumps nothing of an index it cannot open or read.
        return []


def show_config(config: Config, module_dir: str) -> Iterator[str]:
    """All of ``modprobe -c``: the configuration, then the aliases of the module directory's
    alias and symbol indexes in trie order."""
    yield from render_config(config)
    yield "\n# End of configuration files. Dumping indexes now:\n\n"
    for name in DUMPED_INDEXES:
        yield from _index_lines(f"{module_dir}/{name}")
