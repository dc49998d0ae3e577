"""bash, zsh and fish completion scripts for ``lkm``, written from the commands' interfaces.

Each script knows every command's options and what its operands are; module names and kernel
releases come at completion time from ``lkm complete-modules`` and ``lkm complete-releases``,
given the module tree the command line names (``-b``/``-k``, modprobe's ``-d``/``-S``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from lkm.cli.interface import Interface, Operands, OptionDoc, Value

HEADER = "Generated from lkm's table of commands by `python -m lkm.cli.docs`: do not edit."


def _function(name: str) -> str:
    return "_lkm_c_" + re.sub(r"\W", "_", name)


def _tree(interface: Interface) -> tuple[str, str, str, str]:
    """The spellings of the options that name the module tree: -b/--basedir (modprobe's
    -d/--dirname) and -k/--set-version (modprobe's -S); empty where the command has none."""
    base = interface.spelled("basedir") or interface.spelled("dirname")
    release = interface.spelled("set-version")

    def pair(doc: OptionDoc | None) -> tuple[str, str]:
        if doc is None:
            return "", ""
        return (f"-{doc.option.short}" if doc.option.short else "", f"--{doc.option.long}")

    return (*pair(base), *pair(release))


def _value_options(interface: Interface) -> list[str]:
    return [s for doc in interface.options if doc.option.has_arg for s in doc.spellings]


# ---------------------------------------------------------------------------------- bash


def _sh(text: str) -> str:
    """``text`` as one single-quoted shell word."""
    return "'" + text.replace("'", "'\\''") + "'"


BASH_HELPERS = r"""
# The value the last of the options $2 (short) and $3 (long) has, in the words from $1 on.
_lkm_value() {
    local i word value=
    for ((i = $1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == "$2" || $word == "$3" ]] && [[ -n $word ]]; then
            value=${COMP_WORDS[i + 1]}
            [[ $value == = ]] && value=${COMP_WORDS[i + 2]}
        elif [[ -n $3 && $word == "$3="* ]]; then
            value=${word#"$3="}
        elif [[ -n $2 && $word == "$2"?* && $word != --* ]]; then
            value=${word#"$2"}
        fi
    done
    printf '%s' "$value"
}

# The operands among the words from $1 to the cursor (and where they are), given the options
# that take a value ($2); with $3 set, the first operand ends the options (getopt's "+").
_lkm_operands() {
    local i word
    operands=() operand_at=()
    for ((i = $1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == -- ]] || [[ -n $3 && ${#operands[@]} -gt 0 ]]; then
            [[ $word == -- ]] && ((i++))
            for (( ; i < COMP_CWORD; i++)); do
                operands+=("${COMP_WORDS[i]}") operand_at+=("$i")
            done
            return
        elif [[ " $2 " == *" $word "* ]]; then
            [[ ${COMP_WORDS[i + 1]} == = ]] && ((i++))
            ((i++))
        elif [[ $word != -* && $word != = ]]; then
            operands+=("$word") operand_at+=("$i")
        fi
    done
}

# Module names from the tree given by $1 (basedir) and $2 (release); $3: --aliases (its
# aliases too) or --loaded (the loaded modules instead).
_lkm_modules() {
    local -a args=(complete-modules) names
    [[ -n $1 ]] && args+=(-b "$1")
    [[ -n $2 ]] && args+=(-k "$2")
    [[ -n $3 ]] && args+=("$3")
    # bash splits words at ':' (COMP_WORDBREAKS): an alias such as platform:foo is one word
    # of the line, and only what follows its last ':' is replaced.
    local word=$cur colon=
    if [[ $cur == : || $prev == : ]] && [[ -n ${COMP_LINE-} ]]; then
        word=${COMP_LINE:0:COMP_POINT}
        word=${word##*[[:space:]]}
        colon=${word%"${word##*:}"}
    fi
    local IFS=$'\n'
    names=($("$_lkm_program" "${args[@]}" -- "$word" 2>/dev/null))
    COMPREPLY+=("${names[@]#"$colon"}")
}

# Whether the words from $1 to the cursor hold the option -$2 (alone or among other letters,
# before any of those taking a value: $4) or its long spelling $3.
_lkm_has() {
    local i word
    for ((i = $1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        [[ $word == -- ]] && return 1
        [[ $word == "$3" ]] && return 0
        if [[ $word == -[!-]* ]]; then
            [[ -n $4 ]] && word=${word%%["$4"]*}
            [[ ${word#-} == *"$2"* ]] && return 0
        fi
    done
    return 1
}

# Kernel releases with a module directory under $1 (basedir).
_lkm_releases() {
    local -a args=(complete-releases)
    [[ -n $1 ]] && args+=(-b "$1")
    local IFS=$'\n'
    COMPREPLY+=($("$_lkm_program" "${args[@]}" -- "$cur" 2>/dev/null))
}

_lkm_files() {
    compopt -o filenames 2>/dev/null
    local IFS=$'\n'
    COMPREPLY+=($(compgen -f -- "$cur"))
}

_lkm_directories() {
    compopt -o filenames 2>/dev/null
    local IFS=$'\n'
    COMPREPLY+=($(compgen -d -- "$cur"))
}

# The words from $1 on, completed as an lkm command line of their own.
_lkm_nested() {
    local -a COMP_WORDS=("$_lkm_program" "${COMP_WORDS[@]:$1}")
    local COMP_CWORD=$((COMP_CWORD - $1 + 1))
    _lkm
}
"""


def _short_values(interface: Interface) -> str:
    """The short options that take a value, as letters: in a cluster such as ``-rC``, what
    follows one of them is its value."""
    return "".join(d.option.short for d in interface.options if d.option.short and d.option.has_arg)


def _bash_operands(
    kind: Operands | str, tree: tuple[str, str, str, str], aliases: bool = False
) -> str:
    base = f'"$(_lkm_value "$1" {_sh(tree[0])} {_sh(tree[1])})"'
    release = f'"$(_lkm_value "$1" {_sh(tree[2])} {_sh(tree[3])})"'
    modules = f"_lkm_modules {base} {release}" + (" --aliases" if aliases else "")
    if isinstance(kind, str):  # a command of the table, from the word after this one
        return f'{_function(kind)} "$((operand_at[0] + 1))"'
    return {
        Operands.NONE: ":",
        Operands.MODULES: modules,
        Operands.FILES: "_lkm_files",
        Operands.MODULES_OR_FILES: f"if [[ $cur == */* ]]; then _lkm_files; else {modules}; fi",
        Operands.LOADED: "_lkm_modules '' '' --loaded",
        Operands.RELEASES: f"_lkm_releases {base}",
        Operands.DIRECTORIES: "_lkm_directories",
        Operands.COMMANDS: '_lkm_nested "${operand_at[0]}"',
    }[kind]


def _bash_operand_action(interface: Interface, tree: tuple[str, str, str, str]) -> str:
    action = _bash_operands(interface.operands, tree, interface.aliases)
    removing = interface.removing
    if removing is None:
        return action
    test = " ".join(_sh(s) for s in (removing.option.short or "", f"--{removing.option.long}",
                                     _short_values(interface)))  # fmt: skip
    loaded = _bash_operands(Operands.LOADED, tree)
    return f'if _lkm_has "$1" {test}; then {loaded}; else {action}; fi'


def _bash_command(interface: Interface) -> Iterator[str]:
    tree = _tree(interface)
    values = " ".join(_value_options(interface))
    nested = interface.operands is Operands.COMMANDS or bool(interface.subcommands)
    yield f"{_function(interface.command.name)}() {{"
    yield f"    local values={_sh(values)}"
    yield "    local -a operands operand_at"
    # A sub-command or a nested command line owns every word after it, options included.
    yield f'    _lkm_operands "$1" "$values"{" +" if nested else ""}'
    if interface.subcommands:
        yield "    if ((${#operands[@]} > 0)); then"
        yield "        case ${operands[0]} in"
        for word, kind in interface.subcommands:
            yield f"            {word}) {_bash_operands(kind, tree)} ;;"
        yield "        esac"
        yield "        return"
        yield "    fi"
    elif interface.operands is Operands.COMMANDS:
        yield "    if ((${#operands[@]} > 0)); then"
        yield '        _lkm_nested "${operand_at[0]}"'
        yield "        return"
        yield "    fi"
    cases = []
    for doc in interface.options:
        if not doc.option.has_arg:
            continue
        action = {
            Value.TEXT: ":",
            Value.FILE: "_lkm_files",
            Value.DIRECTORY: "_lkm_directories",
            Value.RELEASE: f'_lkm_releases "$(_lkm_value "$1" {_sh(tree[0])} {_sh(tree[1])})"',
            Value.CHOICE: f'COMPREPLY=($(compgen -W {_sh(" ".join(doc.choices))} -- "$cur"))',
        }[doc.value]
        cases.append(f"        {'|'.join(doc.spellings)}) {action}; return ;;")
    if cases:
        yield "    case $prev in"
        yield from cases
        yield "    esac"
    spellings = " ".join(s for doc in interface.options for s in doc.spellings)
    yield "    if [[ $cur == -* ]]; then"
    yield f'        COMPREPLY=($(compgen -W {_sh(spellings)} -- "$cur"))'
    yield "        return"
    yield "    fi"
    if interface.subcommands:
        words = " ".join(word for word, _ in interface.subcommands)
        yield f'    COMPREPLY=($(compgen -W {_sh(words)} -- "$cur"))'
    elif interface.operands is Operands.COMMANDS:
        yield '    COMPREPLY=($(compgen -W "$_lkm_commands" -- "$cur"))'
    else:
        yield f"    {_bash_operand_action(interface, tree)}"
    yield "}"


def bash(interfaces: Sequence[Interface]) -> str:
    names = " ".join(i.command.name for i in interfaces)
    lines = [
        "# bash completion for lkm                                   -*- shell-script -*-",
        f"# {HEADER}",
        f"_lkm_commands={_sh(names)}",
        BASH_HELPERS,
    ]
    for interface in interfaces:
        lines += [*_bash_command(interface), ""]
    lines += [
        "_lkm() {",
        "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}",
        "    local _lkm_program=${COMP_WORDS[0]}",
        "    # bash splits --option=value at '=': complete the value, for the option before it.",
        "    if [[ $cur == = ]]; then",
        "        cur=",
        "    elif [[ $prev == = ]] && ((COMP_CWORD > 2)); then",
        "        prev=${COMP_WORDS[COMP_CWORD - 2]}",
        "    fi",
        "    COMPREPLY=()",
        "    if ((COMP_CWORD == 1)); then",
        '        COMPREPLY=($(compgen -W "$_lkm_commands -h --help -V --version" -- "$cur"))',
        "        return",
        "    fi",
        "    case ${COMP_WORDS[1]} in",
        *(f"        {i.command.name}) {_function(i.command.name)} 2 ;;" for i in interfaces),
        "    esac",
        "}",
        "complete -F _lkm lkm",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- zsh


def _zsh_brackets(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _zsh_message(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _zsh_action(
    kind: Operands | str, tree: tuple[str, str, str, str], aliases: bool = False
) -> str:
    args = " ".join(_sh(s) if s else "''" for s in tree) + (" --aliases" if aliases else "")
    if isinstance(kind, str):
        return "{" + _function(kind) + "}"
    return {
        Operands.NONE: " ",
        Operands.MODULES: "{_lkm_modules " + args + "}",
        Operands.FILES: "_files",
        Operands.MODULES_OR_FILES: "{_lkm_modules_or_files " + args + "}",
        Operands.LOADED: "{_lkm_loaded}",
        Operands.RELEASES: "{_lkm_releases " + args + "}",
        Operands.DIRECTORIES: "_files -/",
        Operands.COMMANDS: "{_lkm_nested}",
    }[kind]


def _zsh_specs(interface: Interface) -> Iterator[str]:
    tree = _tree(interface)
    args = " ".join(_sh(s) if s else "''" for s in tree)
    for doc in interface.options:
        text = _zsh_brackets(doc.description)
        value = ""
        if doc.option.has_arg:
            action = {
                Value.TEXT: " ",
                Value.FILE: "_files",
                Value.DIRECTORY: "_files -/",
                Value.RELEASE: "{_lkm_releases " + args + "}",
                Value.CHOICE: "(" + " ".join(doc.choices) + ")",
            }[doc.value]
            value = f":{_zsh_message(doc.metavar)}:{action}"
        if doc.option.short:
            mark = "+" if doc.option.has_arg else ""
            yield _sh(f"-{doc.option.short}{mark}[{text}]{value}")
        if doc.option.long:
            mark = "=" if doc.option.has_arg else ""
            yield _sh(f"--{doc.option.long}{mark}[{text}]{value}")


def _zsh_command(interface: Interface) -> Iterator[str]:
    tree = _tree(interface)
    specs = list(_zsh_specs(interface))
    yield f"{_function(interface.command.name)}() {{"
    yield "    local curcontext=$curcontext state line"
    yield "    typeset -A opt_args"
    if interface.subcommands:
        words = " ".join(word for word, _ in interface.subcommands)
        specs += [_sh(f"1:command:({words})"), _sh("*::argument:->argument")]
    elif interface.operands is Operands.COMMANDS:
        specs += [_sh("*::lkm command:{_lkm_nested}")]
    elif interface.operands is not Operands.NONE:
        action = _zsh_action(interface.operands, tree, interface.aliases)
        if interface.removing is not None:
            spellings = " ".join(_sh(s) for s in interface.removing.spellings)
            action = "{_lkm_loaded_if " + spellings + " " + action[1:-1] + "}"
        specs += [_sh("*:" + interface.operands.value + ":" + action)]
    flags = "-s -S -C" if interface.operands is not Operands.COMMANDS else "-s -C"
    yield f"    _arguments {flags} \\"
    for spec in specs:
        yield f"        {spec} \\"
    yield "        && return"
    if interface.subcommands:
        yield "    [[ $state == argument ]] || return 1"
        yield "    case $words[1] in"
        for word, kind in interface.subcommands:
            action = _zsh_action(kind, tree)
            call = action[1:-1] if action.startswith("{") else (
                f"_arguments '*:{word}:{action}'" if kind is not Operands.NONE else ":"
            )  # fmt: skip
            yield f"        {word}) {call} ;;"
        yield "    esac"
    yield "}"


ZSH_HELPERS = r"""
# The value of the option spelled $1 or $2, unquoted, from what _arguments parsed.
_lkm_value() {
    local value=${opt_args[$1]:-${opt_args[$2]}}
    print -r -- ${(Q)value}
}

# Module names of the tree the options $1 $2 (basedir) and $3 $4 (release) name; $5:
# --aliases for its aliases too.
_lkm_modules() {
    local -a args names expl
    local base=$(_lkm_value $1 $2) release=$(_lkm_value $3 $4)
    args=(complete-modules)
    [[ -n $base ]] && args+=(-b $base)
    [[ -n $release ]] && args+=(-k $release)
    [[ -n $5 ]] && args+=($5)
    names=(${(f)"$($_lkm_program $args -- $PREFIX 2>/dev/null)"})
    _wanted modules expl module compadd -a names
}

# The modules loaded now.
_lkm_loaded() {
    local -a names expl
    names=(${(f)"$($_lkm_program complete-modules --loaded -- $PREFIX 2>/dev/null)"})
    _wanted modules expl 'loaded module' compadd -a names
}

# The loaded modules when the option spelled $1 or $2 is on the line; else the command the
# words from $3 on make.
_lkm_loaded_if() {
    if (( ${+opt_args[$1]} || ${+opt_args[$2]} )); then
        _lkm_loaded
    else
        "${@:3}"
    fi
}

_lkm_modules_or_files() {
    if [[ $PREFIX == */* ]]; then
        _files
    else
        _lkm_modules "$@"
    fi
}

# Kernel releases with a module directory under the basedir the options $1 $2 name.
_lkm_releases() {
    local -a args names expl
    local base=$(_lkm_value $1 $2)
    args=(complete-releases)
    [[ -n $base ]] && args+=(-b $base)
    names=(${(f)"$($_lkm_program $args -- $PREFIX 2>/dev/null)"})
    _wanted releases expl 'kernel release' compadd -a names
}

# The words from here on, completed as an lkm command line of their own.
_lkm_nested() {
    words=("$_lkm_program" "${words[@]}")
    ((CURRENT++))
    _lkm_command_line
}
"""


def zsh(interfaces: Sequence[Interface]) -> str:
    lines = ["#compdef lkm", f"# zsh completion for lkm. {HEADER}", ZSH_HELPERS]
    for interface in interfaces:
        lines += [*_zsh_command(interface), ""]
    described = [_sh(_zsh_message(i.command.name) + ":" + i.command.summary) for i in interfaces]
    lines += [
        "_lkm_command_line() {",
        "    local curcontext=$curcontext state line",
        "    typeset -A opt_args",
        "    _arguments -C \\",
        "        '(- *)'{-h,--help}'[show the commands]' \\",
        "        '(- *)'{-V,--version}'[show the version]' \\",
        "        '1:command:->command' \\",
        "        '*::argument:->argument' \\",
        "        && return",
        "    case $state in",
        "    command)",
        "        local -a commands",
        "        commands=(",
        *(f"            {entry}" for entry in described),
        "        )",
        "        _describe -t commands 'lkm command' commands",
        "        ;;",
        "    argument)",
        "        case $words[1] in",
        *(f"        {i.command.name}) {_function(i.command.name)} ;;" for i in interfaces),
        "        esac",
        "        ;;",
        "    esac",
        "}",
        "",
        "_lkm() {",
        "    local _lkm_program=${words[1]}",
        "    _lkm_command_line",
        "}",
        "",
        '# Autoloaded from $fpath the file is the body of _lkm; read with "source" it registers.',
        "if [[ $funcstack[1] == _lkm ]]; then",
        '    _lkm "$@"',
        "else",
        "    compdef _lkm lkm",
        "fi",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- fish


def _fish(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


FISH_HELPERS = r"""
# The operands after "lkm" up to the cursor; $argv: the options that take a value there.
function __lkm_words
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for token in $tokens
        if test $skip = 1
            set skip 0
        else if contains -- $token $argv
            set skip 1
        else if not string match -q -- '-*' $token
            echo $token
        end
    end
end

# Whether the command line is "lkm $argv ..." (--values: the options taking a value).
function __lkm_is
    argparse 'values=+' -- $argv
    set -l words (__lkm_words $_flag_values)
    test (count $words) -ge (count $argv); or return 1
    for i in (seq (count $argv))
        test "$words[$i]" = "$argv[$i]"; or return 1
    end
end

# Whether the cursor is on the word just after "lkm $argv".
function __lkm_at
    argparse 'values=+' -- $argv
    set -l words (__lkm_words $_flag_values)
    test (count $words) -eq (count $argv); and __lkm_is --values=$_flag_values -- $argv
end

# The value of the options spelled $argv[1] (short) and $argv[2] (long) on the line.
function __lkm_value
    set -l tokens (commandline -opc)
    set -l value
    set -l next 0
    for token in $tokens
        if test $next = 1
            set value $token
            set next 0
        # "x": test would take a value such as "-b" for one of its own operators.
        else if test "x$argv[1]" != x -a "x$token" = "x$argv[1]"
            set next 1
        else if test "x$argv[2]" != x -a "x$token" = "x$argv[2]"
            set next 1
        else if test "x$argv[2]" != x; and string match -q -- "$argv[2]=*" $token
            set value (string replace -- "$argv[2]=" '' $token)
        else if test "x$argv[1]" != x; and string match -q -- "$argv[1]?*" $token
            and not string match -q -- '--*' $token
            set value (string sub -s 3 -- $token)
        end
    end
    echo $value
end

# Module names of the tree the options $argv[1..2] (basedir) and $argv[3..4] (release) name;
# $argv[5]: --aliases for its aliases too.
function __lkm_modules
    set -l args complete-modules
    set -l base (__lkm_value $argv[1] $argv[2])
    set -l release (__lkm_value $argv[3] $argv[4])
    test "x$base" != x; and set args $args -b $base
    test "x$release" != x; and set args $args -k $release
    test "x$argv[5]" != x; and set args $args $argv[5]
    set -l program (commandline -opc)[1]
    $program $args -- (commandline -ct) 2>/dev/null
end

function __lkm_modules_or_files
    if string match -q -- '*/*' (commandline -ct)
        __fish_complete_path (commandline -ct)
    else
        __lkm_modules $argv
    end
end

# The modules loaded now.
function __lkm_loaded
    set -l program (commandline -opc)[1]
    $program complete-modules --loaded -- (commandline -ct) 2>/dev/null
end

# Whether the line holds the option -$argv[1] (alone or among other letters, before any of
# those taking a value: $argv[3]) or its long spelling $argv[2].
function __lkm_has
    for token in (commandline -opc)[2..-1]
        test "x$token" = x--; and return 1
        test "x$token" = "x$argv[2]"; and return 0
        if string match -qr -- '^-[^-]' $token
            set -l head (string sub -s 2 -- $token)
            test "x$argv[3]" != x; and set head (string replace -r -- "[$argv[3]].*" '' $head)
            string match -q -- "*$argv[1]*" $head; and return 0
        end
    end
    return 1
end

# Kernel releases with a module directory under the basedir the options $argv[1..2] name.
function __lkm_releases
    set -l args complete-releases
    set -l base (__lkm_value $argv[1] $argv[2])
    test "x$base" != x; and set args $args -b $base
    set -l program (commandline -opc)[1]
    $program $args -- (commandline -ct) 2>/dev/null
end

# The words after the first operand of "lkm $argv[1]", completed as an lkm command line.
function __lkm_nested
    set -l tokens (commandline -opc)
    set -l rest
    set -l found 0
    set -l skip 0
    for token in $tokens[3..-1]
        if test $found = 1
            set rest $rest $token
        else if test $skip = 1
            set skip 0
        else if contains -- $token $argv
            set skip 1
        else if not string match -q -- '-*' $token
            set found 1
            set rest $token
        end
    end
    complete -C (string join ' ' -- (string escape -- $tokens[1] $rest) (commandline -ct))
end
"""


def _fish_operands(
    kind: Operands | str, tree: tuple[str, str, str, str], aliases: bool = False
) -> str:
    args = " ".join(_fish(s) if s else "''" for s in tree) + (" --aliases" if aliases else "")
    if isinstance(kind, str):
        return ""
    return {
        Operands.NONE: "",
        Operands.MODULES: f'-a "(__lkm_modules {args})"',
        Operands.FILES: "-F",
        Operands.MODULES_OR_FILES: f'-a "(__lkm_modules_or_files {args})"',
        Operands.LOADED: '-a "(__lkm_loaded)"',
        Operands.RELEASES: f'-a "(__lkm_releases {args})"',
        Operands.DIRECTORIES: '-a "(__fish_complete_directories (commandline -ct))"',
        Operands.COMMANDS: "",
    }[kind]


def _fish_command(
    interface: Interface,
    path: Sequence[str],
    values: Sequence[str],
    commands: Sequence[Interface],
) -> Iterator[str]:
    tree = _tree(interface)
    flag = " ".join(f"--values={v}" for v in values)
    condition = f"__lkm_is {flag} -- {' '.join(path)}".replace("  ", " ")
    args = " ".join(_fish(s) if s else "''" for s in tree)
    for doc in interface.options:
        spell = f"-s {doc.option.short}" if doc.option.short else ""
        spell += f" -l {doc.option.long}" if doc.option.long else ""
        value = ""
        if doc.option.has_arg:
            value = {
                Value.TEXT: " -x",
                Value.FILE: " -r -F",
                Value.DIRECTORY: ' -x -a "(__fish_complete_directories (commandline -ct))"',
                Value.RELEASE: f' -x -a "(__lkm_releases {args})"',
                Value.CHOICE: " -x -a " + _fish(" ".join(doc.choices)),
            }[doc.value]
        yield (
            f"complete -c lkm -n {_fish(condition)} {spell.strip()}{value}"
            f" -d {_fish(doc.description)}"
        )
    at = f"__lkm_at {flag} -- {' '.join(path)}".replace("  ", " ")
    if interface.subcommands:
        for word, kind in interface.subcommands:
            yield f"complete -c lkm -n {_fish(at)} -a {_fish(word)}"
            operand = _fish_operands(kind, tree)
            if operand:
                inner = f"__lkm_is {flag} -- {' '.join([*path, word])}".replace("  ", " ")
                yield f"complete -c lkm -n {_fish(inner)} {operand}"
    elif interface.operands is Operands.COMMANDS:
        for other in commands:
            yield (
                f"complete -c lkm -n {_fish(at)} -a {_fish(other.command.name)}"
                f" -d {_fish(other.command.summary)}"
            )
        nested = " ".join(_fish(v) for v in values)
        yield (
            f"complete -c lkm -n {_fish(condition + '; and not ' + at)}"
            f' -a "(__lkm_nested {nested})"'
        )
    else:
        operand = _fish_operands(interface.operands, tree, interface.aliases)
        removing = interface.removing
        if operand and removing is not None:
            test = " ".join(_fish(s) for s in (removing.option.short or "",
                                               f"--{removing.option.long}",
                                               _short_values(interface)))  # fmt: skip
            loaded = _fish_operands(Operands.LOADED, tree)
            yield f"complete -c lkm -n {_fish(f'{condition}; and __lkm_has {test}')} {loaded}"
            condition += f"; and not __lkm_has {test}"
        if operand:
            yield f"complete -c lkm -n {_fish(condition)} {operand}"


def fish(interfaces: Sequence[Interface]) -> str:
    by_name = {i.command.name: i for i in interfaces}
    lines = [f"# fish completion for lkm. {HEADER}", FISH_HELPERS, "complete -c lkm -f"]
    for interface in interfaces:
        lines.append(
            f"complete -c lkm -n '__lkm_at' -a {_fish(interface.command.name)}"
            f" -d {_fish(interface.command.summary)}"
        )
    lines += [
        "complete -c lkm -n '__lkm_at' -s h -l help -d 'show the commands'",
        "complete -c lkm -n '__lkm_at' -s V -l version -d 'show the version'",
        "",
    ]
    for interface in interfaces:
        values = _value_options(interface)
        lines += [*_fish_command(interface, [interface.command.name], values, interfaces), ""]
        for word, kind in interface.subcommands:
            if isinstance(kind, str):
                sub = by_name[kind]
                path = [interface.command.name, word]
                lines += [*_fish_command(sub, path, values, interfaces), ""]
    return "\n".join(lines)


__all__ = ["bash", "fish", "zsh"]
