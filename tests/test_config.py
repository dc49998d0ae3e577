"""modprobe.d parsing, file discovery, the kernel command line and MODPROBE_OPTIONS.

Every expected output here was first recorded from kmod 34's ``modprobe -c`` (the slow tests in
test_config_real.py replay the same kinds of input against it)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lkm.cli.modprobe import Mode, Settings, arguments, parse
from lkm.cli.output import Printer
from lkm.config import (
    Config,
    find_config_files,
    load_config,
    normalize,
    parse_config,
    parse_kernel_cmdline,
    render_config,
    show_config,
    split_modprobe_options,
)
from lkm.index import write_index


def shown(config: Config) -> str:
    return "".join(render_config(config))


def problems(config: Config) -> list[str]:
    return [p.message for p in config.problems]


def test_every_directive_in_section_order() -> None:
    text = (
        "options foo a=1 \\\n\tb=2\nalias bar foo\nblacklist baz\n"
        "softdep foo pre: x y post: z\nweakdep foo w1 w2\ninstall foo /bin/true\n"
        "remove foo /bin/false\n"
    )
    assert shown(parse_config(text, "/c/a.conf")) == (
        "blacklist baz\ninstall foo /bin/true\nremove foo /bin/false\nalias bar foo\n"
        "options foo a=1  b=2\nsoftdep foo pre: x ypost: z\nweakdep foo w1 w2\n"
    )


def test_names_are_normalised_outside_brackets_and_dependency_names_are_not() -> None:
    text = (
        "alias a-[x-y]-b m-[x-y]-z\nblacklist b-[x-y]-z\noptions o-[x-y]-z p-q=r-s\n"
        "install i-[x-y]-z c-d\nsoftdep s-[x-y]-z pre: p-[x-y]\nweakdep w-[x-y]-z q-[x-y]\n"
    )
    assert shown(parse_config(text, "x")) == (
        "blacklist b_[x-y]_z\ninstall i_[x-y]_z c-d\nalias a_[x-y]_b m_[x-y]_z\n"
        "options o_[x-y]_z p-q=r-s\nsoftdep s_[x-y]_z pre: p-[x-y]\nweakdep w_[x-y]_z q-[x-y]\n"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a-b", "a_b"),
        ("a-[!x-y]-c", "a_[!x-y]_c"),
        ("d[[]e", "d[[]e"),
        ("a[b", None),
        ("a]b", None),
        ("a[b]c[d", None),
        ("a[]b]-c", None),
        ("", ""),
    ],
)
def test_normalize(name: str, expected: str | None) -> None:
    assert normalize(name) == expected


def test_rest_of_line_starts_after_one_separator_and_must_not_be_empty() -> None:
    text = (
        "options m1 \noptions m2   \ninstall i1 \ninstall i2\t\nremove r1 \nsoftdep s1 \n"
        "softdep s2\t \nweakdep w1 \nweakdep w2  \nalias a1 \nblacklist \nalias a2 b \n"
        'options m3\t\tx\tq\noptions m4 "a\tb"\ninstall i3\tcmd\targ\t\n'
    )
    config = parse_config(text, "/s/l/a.conf")
    assert shown(config) == (
        "install i3 cmd\targ\t\nalias a2 b\noptions m2   \noptions m3  x q\n"
        'options m4 "a b"\nsoftdep s2 \nweakdep w2 \n'
    )
    bad = {1: "options", 3: "install", 4: "install", 5: "remove", 6: "softdep"}
    bad |= {8: "weakdep", 10: "alias", 11: "blacklist"}
    assert problems(config) == [
        f"kmod_config_parse: /s/l/a.conf line {n}: ignoring bad line starting with '{command}'"
        for n, command in bad.items()
    ]


def test_bad_lines_deprecated_commands_and_comments() -> None:
    text = (
        "alias  my-al*   some-mod  extra junk\nalias  x\nalias\noptions\noptions m\n"
        'options m-n  p=1   q="a b"  \t r\nblacklist a-b c\nblacklist\n'
        "install m-n  echo  hi  \\\n there\ninstall q\nremove r-s cmd\n  # indented comment\n"
        "foo bar\ninclude /x\nconfig y\n# comment \\\nstill comment?\nalias after comment\n"
        "Alias A b\n"
    )
    config = parse_config(text, "/b/one.conf")
    assert shown(config) == (
        "blacklist a_b\ninstall m_n  echo  hi   there\nremove r_s cmd\nalias my_al* some_mod\n"
        'alias after comment\noptions m_n  p=1   q="a b"    r\n'
    )
    bad = [(2, "alias"), (3, "alias"), (4, "options"), (5, "options"), (8, "blacklist")]
    bad += [(11, "install"), (13, "#"), (14, "foo")]
    expected = [
        f"kmod_config_parse: /b/one.conf line {n}: ignoring bad line starting with '{c}'"
        for n, c in bad
    ]
    expected += [
        f"kmod_config_parse: /b/one.conf: command {c} is deprecated and not parsed anymore"
        for c in ("include", "config")
    ]
    expected.append(
        "kmod_config_parse: /b/one.conf line 20: ignoring bad line starting with 'Alias'"
    )
    assert problems(config) == expected
    assert all(p.path == "/b/one.conf" for p in config.problems)


def test_escapes_continuations_and_line_numbers() -> None:
    text = (
        'options a x=\\\\y z=\\"q\\" \\# w=\\t\ninstall b echo \\$X \\\\\\\\ end\n'
        "bad \\\n  continued \\\n more\nalias \\\n\n#c\nbad2\n  \\\n bad3\n"
        "install c a\\\\\nblacklist d\nalias e\\\nf g\n\\#notcomment x\nblacklist tail\\"
    )
    config = parse_config(text, "j")
    assert shown(config) == (
        "blacklist d\nblacklist tail\ninstall b echo $X \\\\ end\ninstall c a\\\n"
        'alias ef g\noptions a x=\\y z="q" # w=t\n'
    )
    assert [(p.line, p.message.rsplit(" ", 1)[1]) for p in config.problems] == [
        (5, "'bad'"),
        (7, "'alias'"),
        (9, "'bad2'"),
        (11, "'bad3'"),
    ]


def test_nul_ends_a_line_and_only_spaces_and_tabs_separate() -> None:
    text = (
        b"alias crlf mod\r\nalias nul\0x y\nblacklist after-nul\nalias vt\vsep m\n"
        b"blacklist \xff-x\n"
    )
    config = parse_config(text, "k")
    assert shown(config).encode("utf-8", "surrogateescape") == (
        b"blacklist after_nul\nblacklist \xff_x\nalias crlf mod\r\nalias vt\vsep m\n"
    )
    assert [p.line for p in config.problems] == [2]


def test_softdep_lists_show_as_kmod_prints_them() -> None:
    text = (
        "softdep m1 pre: a post: b pre: c post: d\nsoftdep m2 post: a pre: b\n"
        "softdep m4 x pre: a\nsoftdep m6 pre: post:\nsoftdep m7 pre:a post:b\n"
        "softdep m8 pre: a\tb   post:  c  \nsoftdep s-d pre: a-b pre: c post: d pre: e\n"
        "softdep m1 pre: zz\n"
    )
    config = parse_config(text, "c")
    assert shown(config) == (
        "softdep m1 pre: a b cpost: b c d\nsoftdep m2 pre: bpost: a\nsoftdep m4 pre: a\n"
        "softdep m6 \nsoftdep m7 \nsoftdep m8 pre: a bpost: c\n"
        "softdep s_d pre: a-b c d epost: d\nsoftdep m1 pre: zz\n"
    ).replace("pre: abpost", "pre: a bpost")
    first = config.softdep("m1")
    assert first is not None
    assert (first.pre, first.post) == (("a", "c"), ("b", "d"))


def test_queries() -> None:
    text = (
        "alias net-* e1000\nalias net-pf-* af\noptions e1000 a=1\noptions e1000 b=2\n"
        "install x one\ninstall x two\nremove x r\nblacklist bad\nweakdep w a b\n"
    )
    config = parse_config(text, "q")
    assert config.alias_targets("net-pf-1") == ()  # patterns are normalised, names are not
    assert config.alias_targets("net_pf_1") == ("e1000", "af")
    assert config.options_for("e1000") == ("a=1", "b=2")
    assert config.install_command("x") == "one"
    assert config.remove_command("x") == "r"
    assert config.remove_command("y") is None
    assert config.is_blacklisted("bad")
    weak = config.weakdep("w")
    assert weak is not None
    assert weak.names == ("a", "b")


def test_install_remove_softdep_weakdep_take_the_first_matching_pattern() -> None:
    text = (
        "install d?m* glob\ninstall dummy literal\nremove dumm[x-z] r\nsoftdep d*y pre: a\n"
        "softdep dummy pre: b\nweakdep dummy w\nweakdep d* v\ninstall esc\\\\ape e\n"
        "options dumm? o=1\nblacklist dumm?\ninstall n-* n\n"
    )
    config = parse_config(text, "g")
    assert config.install_command("dummy") == "glob"
    assert config.install_command("dxy") is None
    assert config.install_command("escape") == "e"  # a backslash escapes in the pattern
    assert config.install_command("n-x") is None  # patterns are normalised, names must be too
    assert config.install_command("n_x") == "n"
    assert config.remove_command("dummy") == "r"
    assert config.remove_command("dummw") is None
    soft = config.softdep("dummy")
    assert soft is not None and soft.pre == ("a",)
    weak = config.weakdep("dummy")
    assert weak is not None and weak.names == ("w",)
    # options and blacklist name modules literally
    assert config.options_for("dummy") == ()
    assert config.options_for("dumm?") == ("o=1",)
    assert not config.is_blacklisted("dummy")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("softdep m pre: a\tpost: b", "softdep m pre: apost: b\n"),
        ("softdep m  pre: a post: b", "softdep m post: b\n"),  # " pre:" is no marker
        ("softdep m   pre: a", "softdep m pre: a\n"),
        ("softdep m \tpre: a", "softdep m \n"),
        ("softdep m\t\tpre: a", "softdep m \n"),
        ("softdep m pre: a\rb\vc\fd", "softdep m pre: a b c d\n"),
        ("weakdep w  a b", "weakdep w  a b\n"),
        ("weakdep w \ta  b", "weakdep w \ta b\n"),
        ("weakdep w   a b", "weakdep w a b\n"),
        ("weakdep w  ", "weakdep w \n"),
        ("weakdep w a\x1cb\xa0c", "weakdep w a\x1cb\xa0c\n"),  # only C's isspace separates
    ],
)
def test_dependency_lists_keep_kmods_first_blank(line: str, expected: str) -> None:
    assert shown(parse_config(line + "\n", "d")) == expected


# -- the kernel command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ('"q.r=s t"', 'options q r="s t"\n'),
        ('"q.r=st"x', 'options q r="st"x\n'),
        ('"q.r"=s', ""),
        ('"q".r=s', ""),
        ('q."r=s"', ""),
        ('q.r="s"', 'options q r="s"\n'),
        ('"q.r="', 'options q r=""\n'),
        ('"q.r= a"', 'options q r=" a"\n'),
        ('"a.b=c d', ""),
        ("q.r.s=1", ""),
        ("q..r=1", ""),
        (".=1", "options  =1\n"),
        (".", "options  \n"),
        ("q.=", "options q =\n"),
        ('q.r=a"b', ""),
        ("a.b\tc.d=1", "options a b\noptions c d=1\n"),
        ("a.b=1\r\n\v\fc.d", "options a b=1\noptions c d\n"),
        ('"a.b=1"c.d=2', 'options a b="1"c.d=2\n'),
        ('x "a.b=c" y nodot=1', 'options a b="c"\n'),
        ("a-b.c-d=x-y m.p=a.b", "options a_b c-d=x-y\noptions m p=a.b\n"),
        ("modprobe.blacklist=z-1,,z2,", "blacklist z-1\nblacklist \nblacklist z2\nblacklist \n"),
        ('"modprobe.blacklist=a b,c"', 'blacklist "a b\nblacklist c"\n'),
        ("modprobe.blacklist", "options modprobe blacklist\n"),
        ("Modprobe.blacklist=x", "options Modprobe blacklist=x\n"),
        ('"a.b=1"" c.d=2', ""),
        ('dummy.c_d=1 " modprobe.blacklist=nlmon, " quiet', "options dummy c_d=1\n"),
        ('" a.b=1" "a .b=1" "a.b c=1" "a.b\tc=1" "a.b=1 2"', 'options a b="1 2"\n'),
        ('a.b="x\ty\vz"', 'options a b="x y\vz"\n'),  # tabs become spaces, as in files
    ],
)
def test_kernel_cmdline(cmdline: str, expected: str) -> None:
    config = parse_kernel_cmdline(cmdline)
    assert shown(config) == expected
    assert not config.problems


def test_kernel_cmdline_bad_module_name() -> None:
    config = parse_kernel_cmdline("a[b.c=1 d[[]e.f=3 a-b]-c.x d-[e-]f-]g-h.y", "/proc/cmdline")
    assert shown(config) == "options d[[]e f=3\n"
    # The name is shown normalised up to the bracket kmod stops at, the rest as written.
    prefix = "kcmdline_parse_result: Ignoring bad option on kernel command line while parsing "
    assert problems(config) == [
        prefix + "module name: 'a[b'",
        prefix + "module name: 'a_b]-c'",
        prefix + "module name: 'd_[e-]f_]g-h'",
    ]


# -- MODPROBE_OPTIONS -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", []),
        (" ", [""]),
        ("-C /x", ["-C", "/x"]),
        ("-c -C ", ["-c", "-C"]),
        ("-c -C  ", ["-c", "-C", ""]),
        ("  --bogus", ["", "", "--bogus"]),
        ("-C\t/x", ["-C\t/x"]),
        ('--bo"g us"x', ["--bog usx"]),
        ("--x'y\"z' w", ['--xy"z', "w"]),
        ("--bo\\ gus", ["--bo\\", "gus"]),
        ("--bo'gus", ["--bo'gus"]),
        ('-C "a b', ["-C", '"a b']),
        ('-c -C ""', ["-c", "-C", ""]),
    ],
)
def test_split_modprobe_options(text: str, words: list[str]) -> None:
    assert split_modprobe_options(text) == words


def test_modprobe_options_come_first() -> None:
    args = arguments(["-C", "/b"], {"MODPROBE_OPTIONS": "-c -C /a"})
    assert args == ["-c", "-C", "/a", "-C", "/b"]
    printer = Printer("modprobe", io.BytesIO(), io.BytesIO())
    settings = parse(args, printer)
    assert isinstance(settings, Settings)
    assert settings.mode is Mode.SHOW_CONFIG
    assert settings.config_paths == ("/a", "/b")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sh"], "option '--sh' is ambiguous; possibilities: '--show-depends' '--showconfig' "
         "'--show-config' '--show-modversions' '--show-exports' '--show'"),
        (["--d"], "option '--d' is ambiguous; possibilities: '--dump-modversions' '--dry-run' "
         "'--dirname'"),
        (["-w"], "option requires an argument -- 'w'"),
        (["--all=1"], "option '--all' doesn't allow an argument"),
    ],
)  # fmt: skip
def test_usage_errors(args: list[str], message: str) -> None:
    err = io.BytesIO()
    assert parse(args, Printer("modprobe", io.BytesIO(), err)) == 1
    assert err.getvalue().decode() == f"modprobe: {message}\n"


def test_modes() -> None:
    printer = Printer("modprobe", io.BytesIO(), io.BytesIO())
    for args, mode in (
        (["-c", "-R", "-D", "-r"], Mode.SHOW_CONFIG),
        (["--ignore-remove", "x"], Mode.INSERT),
        (["-r", "x"], Mode.REMOVE),
        (["--dump-modversions", "x"], Mode.SHOW_MODVERSIONS),
    ):
        settings = parse(args, printer)
        assert isinstance(settings, Settings)
        assert settings.mode is mode
    settings = parse(["-f", "-qq", "-v", "-i"], printer)
    assert isinstance(settings, Settings)
    assert settings.force_modversion and settings.force_vermagic and settings.ignore_commands
    assert settings.verbosity == -1 and settings.quiet


# -- files ------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_shadowing_sorting_and_filtering(tmp_path: Path) -> None:
    high, low, moddir = tmp_path / "etc", tmp_path / "lib", tmp_path / "moddir"
    write(high / "same.conf", "blacklist high-same\n")
    write(low / "same.conf", "blacklist low-same\n")
    write(low / "a.conf", "blacklist low-a\n")
    write(high / "z.conf", "blacklist high-z\n")
    write(high / ".dot.conf", "blacklist dot\n")
    write(high / "x.conf~", "blacklist backup\n")
    write(high / "X.CONF", "blacklist upper\n")
    write(low / "sub.conf" / "in.conf", "blacklist insub\n")
    (low / "dangling.conf").symlink_to("nowhere")
    write(moddir / "modules.softdep", "softdep m pre: n\n")
    write(moddir / "modules.weakdep", "weakdep w v\n")
    config = load_config(
        [str(high), str(low), str(tmp_path / "missing")], module_dir=str(moddir), cmdline=None
    )
    assert shown(config) == (
        "blacklist low_a\nblacklist high_same\nblacklist high_z\nsoftdep m pre: n\nweakdep w v\n"
    )
    assert sorted(problems(config)) == [
        f"conf_files_filter_out: Cannot stat directory entry: {low}/dangling.conf",
        f"conf_files_filter_out: Directories inside directories are not supported: {low}/sub.conf",
    ]


def test_a_file_source_is_read_whatever_its_name(tmp_path: Path) -> None:
    single = write(tmp_path / "file2", "blacklist file2\n")
    directory = tmp_path / "dir"
    write(directory / "b.conf", "blacklist b\n")
    write(directory / "g.conf", "blacklist g\n")
    files = find_config_files([str(single), str(directory)])
    assert [os.path.basename(p) for p in files.paths] == ["b.conf", "file2", "g.conf"]


def test_cmdline_comes_last_and_a_missing_one_is_empty(tmp_path: Path) -> None:
    write(tmp_path / "d" / "z.conf", "options cfgz x=1\n")
    cmdline = write(tmp_path / "cmdline", "BOOT_IMAGE=/vmlinuz ro a.b=1 modprobe.blacklist=m\n")
    sources = [str(tmp_path / "d")]
    assert shown(load_config(sources, cmdline=str(cmdline))) == (
        "blacklist m\noptions cfgz x=1\noptions a b=1\n"
    )
    assert shown(load_config(sources, cmdline=str(tmp_path / "none"))) == "options cfgz x=1\n"


def test_show_config_dumps_alias_and_symbol_indexes(tmp_path: Path) -> None:
    (tmp_path / "modules.alias.bin").write_bytes(
        write_index([("pci:v1*", "e1000", 1), ("acpi*:X:*", "b", 0), ("pci:v1*", "igb", 2)])
    )
    (tmp_path / "modules.symbols.bin").write_bytes(b"broken")
    text = "".join(show_config(parse_config("blacklist x\n", "a"), str(tmp_path)))
    assert text == (
        "blacklist x\n\n# End of configuration files. Dumping indexes now:\n\n"
        "alias acpi*:X:* b\nalias pci:v1* e1000\nalias pci:v1* igb\n"
    )


# -- robustness -------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    ["alias ", "options ", "install ", "remove ", "blacklist ", "softdep ", "weakdep ",
     "include ", "pre: ", "post: ", "a-b ", "[", "]", "-", "\\", "\n", "\t", " ", "#", '"',
     "\0", "=", ".", "é", "\udcff"]
)  # fmt: skip


@given(st.lists(_TOKENS | st.text(max_size=8), max_size=40))
def test_parser_never_raises(parts: list[str]) -> None:
    text = "".join(parts)
    config = parse_config(text, "fuzz.conf") + parse_kernel_cmdline(text)
    rendered = shown(config)
    assert isinstance(rendered, str)
    split_modprobe_options(text)


@given(st.binary(max_size=300))
def test_parser_takes_any_bytes(data: bytes) -> None:
    shown(parse_config(data, "fuzz.conf"))
    shown(parse_kernel_cmdline(data))
