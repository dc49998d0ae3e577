# fish completion for lkm. Generated from lkm's table of commands by `python -m lkm.cli.docs`: do not edit.

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

complete -c lkm -f
complete -c lkm -n '__lkm_at' -a 'modinfo' -d 'show information about kernel modules'
complete -c lkm -n '__lkm_at' -a 'modprobe' -d 'load and remove modules with their dependencies'
complete -c lkm -n '__lkm_at' -a 'depmod' -d 'write a module tree\'s dependency and alias indexes'
complete -c lkm -n '__lkm_at' -a 'lsmod' -d 'list the loaded modules'
complete -c lkm -n '__lkm_at' -a 'insmod' -d 'load one module file'
complete -c lkm -n '__lkm_at' -a 'rmmod' -d 'remove one loaded module'
complete -c lkm -n '__lkm_at' -a 'kmod' -d 'kmod itself: list, static-nodes, help'
complete -c lkm -n '__lkm_at' -a 'list' -d 'list the loaded modules (kmod list)'
complete -c lkm -n '__lkm_at' -a 'static-nodes' -d 'the device nodes modules want created at boot (kmod static-nodes)'
complete -c lkm -n '__lkm_at' -a 'sandbox' -d 'run an lkm command in a throwaway VM with a chosen kernel'
complete -c lkm -n '__lkm_at' -a 'links' -d 'put links named after kmod\'s tools, starting lkm, in a directory (or take them away)'
complete -c lkm -n '__lkm_at' -a 'loaded' -d 'the loaded modules as records, or who holds whom as a tree'
complete -c lkm -n '__lkm_at' -a 'closure' -d 'the module files and firmware an initramfs needs for some modules'
complete -c lkm -n '__lkm_at' -a 'status' -d 'where modules stand (loaded, built in, blacklisted, options, at boot) and whether a wanted state holds'
complete -c lkm -n '__lkm_at' -a 'drivers' -d 'each device\'s modalias, the modules that match it, and its driver now'
complete -c lkm -n '__lkm_at' -a 'graph' -d 'modules\' dependencies as a Graphviz graph (dot, SVG or PNG)'
complete -c lkm -n '__lkm_at' -a 'show' -d 'everything about modules: typed modinfo fields, file, signature, build-id, kernel state'
complete -c lkm -n '__lkm_at' -a 'completion' -d 'print the bash, zsh or fish completion script for lkm'
complete -c lkm -n '__lkm_at' -a 'keys' -d 'the certificates built into a kernel image, or the running kernel\'s keys'
complete -c lkm -n '__lkm_at' -a 'sign' -d 'append a signature to module files, as the kernel\'s sign-file does'
complete -c lkm -n '__lkm_at' -a 'audit' -d 'what in the running kernel\'s modules is not as it should be: taint, files, hidden and blacklisted modules, lockdown'
complete -c lkm -n '__lkm_at' -a 'verify' -d 'check modules\' signatures as the kernel does, against given or built-in certificates'
complete -c lkm -n '__lkm_at' -a 'modules-load' -d 'load the modules systemd-modules-load loads at boot, independent ones in parallel'
complete -c lkm -n '__lkm_at' -s h -l help -d 'show the commands'
complete -c lkm -n '__lkm_at' -s V -l version -d 'show the version'

complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s a -l author -d 'Print only \'author\''
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s d -l description -d 'Print only \'description\''
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s l -l license -d 'Print only \'license\''
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s p -l parameters -d 'Print only \'parm\''
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s n -l filename -d 'Print only \'filename\''
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s 0 -l null -d 'Use \\0 instead of \\n'
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s m -l modname -d 'Handle argument as module name instead of alias or filename'
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s F -l field -x -d 'Print only provided FIELD'
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'Use VERSION instead of `uname -r`'
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'Use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s V -l version -d 'Show version'
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -s h -l help -d 'Show this help'
complete -c lkm -n '__lkm_is --values=-F --values=--field --values=-k --values=--set-version --values=-b --values=--basedir -- modinfo' -a "(__lkm_modules_or_files '-b' '--basedir' '-k' '--set-version' --aliases)"

complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s a -l all -d 'Consider every non-argument to be a module name to be inserted or removed (-r)'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s r -l remove -d 'Remove modules instead of inserting'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l remove-dependencies -d 'Deprecated: use --remove-holders'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l remove-holders -d 'Also remove module holders (use together with -r)'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s w -l wait -x -d 'When removing a module, wait up to MSEC for module\'s refcount to become 0 so it can be removed (use together with -r)'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l first-time -d 'Fail if module already inserted or removed'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s i -l ignore-install -d 'Ignore install commands'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l ignore-remove -d 'Ignore remove commands'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s b -l use-blacklist -d 'Apply blacklist to resolved alias.'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s f -l force -d 'Force module insertion or removal. implies --force-modversions and'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l force-modversion -d 'Ignore module\'s version'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l force-vermagic -d 'Ignore module\'s version magic'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s R -l resolve-alias -d 'Only lookup and print alias and exit'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s D -l show-depends -d 'Only print module dependencies and exit'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s c -l showconfig -d 'Print out known configuration and exit'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l show-config -d 'Same as --showconfig'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l show-modversions -d 'Dump module symbol version and exit'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l dump-modversions -d 'Same as --show-modversions'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l show-exports -d 'Only print module exported symbol versions and exit'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s n -l dry-run -d 'Do not execute operations, just print out'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -l show -d 'Same as --dry-run'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s C -l config -r -F -d 'Use FILE instead of default search paths'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s d -l dirname -x -a "(__fish_complete_directories (commandline -ct))" -d 'Use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s S -l set-version -x -a "(__lkm_releases '-d' '--dirname' '-S' '--set-version')" -d 'Use VERSION instead of `uname -r`'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s s -l syslog -d 'print to syslog, not stderr'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s q -l quiet -d 'disable messages'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s v -l verbose -d 'enables more messages'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe; and __lkm_has \'r\' \'--remove\' \'wCdS\'' -a "(__lkm_loaded)"
complete -c lkm -n '__lkm_is --values=-w --values=--wait --values=-C --values=--config --values=-d --values=--dirname --values=-S --values=--set-version -- modprobe; and not __lkm_has \'r\' \'--remove\' \'wCdS\'' -a "(__lkm_modules_or_files '-d' '--dirname' '-S' '--set-version' --aliases)"

complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s a -l all -d 'Probe all modules'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s A -l quick -d 'Only does the work if there\'s a new module'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'Root path (default: /).'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s m -l moduledir -x -a "(__fish_complete_directories (commandline -ct))" -d 'Module directory (default: /lib/modules).'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s o -l outdir -x -a "(__fish_complete_directories (commandline -ct))" -d 'Output root path (default: same as <basedir>).'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s C -l config -r -F -d 'Read configuration from PATH'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s E -l symvers -r -F -d 'Use Module.symvers file to check symbol versions.'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s F -l filesyms -r -F -d 'Use the file instead of the current kernel symbols.'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s e -l errsyms -d 'Report not supplied symbols'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s n -l show -d 'Write the dependency file on stdout only'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -l dry-run -d 'same as --show'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s P -l symbol-prefix -x -d 'Architecture symbol prefix'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s v -l verbose -d 'Enable verbose mode'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s w -l warn -d 'Warn on duplicates'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-m --values=--moduledir --values=-o --values=--outdir --values=-C --values=--config --values=-E --values=--symvers --values=-F --values=--filesyms --values=-P --values=--symbol-prefix -- depmod' -a "(__lkm_releases '-b' '--basedir' '' '')"

complete -c lkm -n '__lkm_is -- lsmod' -s s -l syslog -d 'print to syslog, not stderr'
complete -c lkm -n '__lkm_is -- lsmod' -s v -l verbose -d 'enables more messages'
complete -c lkm -n '__lkm_is -- lsmod' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is -- lsmod' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is -- insmod' -s f -l force -d 'DANGEROUS: forces a module load, may cause data corruption and crash your machine'
complete -c lkm -n '__lkm_is -- insmod' -s s -l syslog -d 'print to syslog, not stderr'
complete -c lkm -n '__lkm_is -- insmod' -s v -l verbose -d 'enables more messages'
complete -c lkm -n '__lkm_is -- insmod' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is -- insmod' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is -- insmod' -F

complete -c lkm -n '__lkm_is -- rmmod' -s f -l force -d 'DANGEROUS: forces a module unload and may crash your machine'
complete -c lkm -n '__lkm_is -- rmmod' -s s -l syslog -d 'print to syslog, not stderr'
complete -c lkm -n '__lkm_is -- rmmod' -s v -l verbose -d 'enables more messages'
complete -c lkm -n '__lkm_is -- rmmod' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is -- rmmod' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is -- rmmod' -a "(__lkm_loaded)"

complete -c lkm -n '__lkm_is -- kmod' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is -- kmod' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_at -- kmod' -a 'help'
complete -c lkm -n '__lkm_at -- kmod' -a 'list'
complete -c lkm -n '__lkm_at -- kmod' -a 'static-nodes'

complete -c lkm -n '__lkm_is -- kmod list' -s s -l syslog -d 'print to syslog, not stderr'
complete -c lkm -n '__lkm_is -- kmod list' -s v -l verbose -d 'enables more messages'
complete -c lkm -n '__lkm_is -- kmod list' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is -- kmod list' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is -- kmod static-nodes' -s f -l format -x -a 'human tmpfiles devname' -d 'choose format to use: see "Formats"'
complete -c lkm -n '__lkm_is -- kmod static-nodes' -s o -l output -r -F -d 'write output to file'
complete -c lkm -n '__lkm_is -- kmod static-nodes' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is -- list' -s s -l syslog -d 'print to syslog, not stderr'
complete -c lkm -n '__lkm_is -- list' -s v -l verbose -d 'enables more messages'
complete -c lkm -n '__lkm_is -- list' -s V -l version -d 'show version'
complete -c lkm -n '__lkm_is -- list' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is --values=-f --values=--format --values=-o --values=--output -- static-nodes' -s f -l format -x -a 'human tmpfiles devname' -d 'choose format to use: see "Formats"'
complete -c lkm -n '__lkm_is --values=-f --values=--format --values=-o --values=--output -- static-nodes' -s o -l output -r -F -d 'write output to file'
complete -c lkm -n '__lkm_is --values=-f --values=--format --values=-o --values=--output -- static-nodes' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -s k -l kernel -r -F -d 'a kernel image to boot, instead of a package'
complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -s m -l modules -x -a "(__fish_complete_directories (commandline -ct))" -d 'its module tree (.../lib/modules/<release>)'
complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -s d -l deb -r -F -d 'a Debian kernel image package to boot'
complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -s w -l workdir -x -a "(__fish_complete_directories (commandline -ct))" -d 'keep the guest\'s files in DIR (default: a temporary directory)'
complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -s t -l timeout -x -d 'give up on the VM after this long (default: 300)'
complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -l keep -d 'keep the temporary directory too'
complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'modinfo' -d 'show information about kernel modules'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'modprobe' -d 'load and remove modules with their dependencies'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'depmod' -d 'write a module tree\'s dependency and alias indexes'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'lsmod' -d 'list the loaded modules'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'insmod' -d 'load one module file'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'rmmod' -d 'remove one loaded module'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'kmod' -d 'kmod itself: list, static-nodes, help'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'list' -d 'list the loaded modules (kmod list)'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'static-nodes' -d 'the device nodes modules want created at boot (kmod static-nodes)'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'sandbox' -d 'run an lkm command in a throwaway VM with a chosen kernel'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'links' -d 'put links named after kmod\'s tools, starting lkm, in a directory (or take them away)'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'loaded' -d 'the loaded modules as records, or who holds whom as a tree'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'closure' -d 'the module files and firmware an initramfs needs for some modules'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'status' -d 'where modules stand (loaded, built in, blacklisted, options, at boot) and whether a wanted state holds'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'drivers' -d 'each device\'s modalias, the modules that match it, and its driver now'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'graph' -d 'modules\' dependencies as a Graphviz graph (dot, SVG or PNG)'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'show' -d 'everything about modules: typed modinfo fields, file, signature, build-id, kernel state'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'completion' -d 'print the bash, zsh or fish completion script for lkm'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'keys' -d 'the certificates built into a kernel image, or the running kernel\'s keys'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'sign' -d 'append a signature to module files, as the kernel\'s sign-file does'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'audit' -d 'what in the running kernel\'s modules is not as it should be: taint, files, hidden and blacklisted modules, lockdown'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'verify' -d 'check modules\' signatures as the kernel does, against given or built-in certificates'
complete -c lkm -n '__lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a 'modules-load' -d 'load the modules systemd-modules-load loads at boot, independent ones in parallel'
complete -c lkm -n '__lkm_is --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox; and not __lkm_at --values=-k --values=--kernel --values=-m --values=--modules --values=-d --values=--deb --values=-w --values=--workdir --values=-t --values=--timeout -- sandbox' -a "(__lkm_nested '-k' '--kernel' '-m' '--modules' '-d' '--deb' '-w' '--workdir' '-t' '--timeout')"

complete -c lkm -n '__lkm_is -- links' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_at -- links' -a 'install'
complete -c lkm -n '__lkm_is -- links install' -a "(__fish_complete_directories (commandline -ct))"
complete -c lkm -n '__lkm_at -- links' -a 'remove'
complete -c lkm -n '__lkm_is -- links remove' -a "(__fish_complete_directories (commandline -ct))"

complete -c lkm -n '__lkm_is -- loaded' -s t -l tree -d 'who holds whom: the modules nobody holds, each with the modules it uses below it'
complete -c lkm -n '__lkm_is -- loaded' -l json -d 'print the records as JSON (schema lkm/loaded/1)'
complete -c lkm -n '__lkm_is -- loaded' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -l softdeps -d 'add soft dependencies (modprobe.d and modules.softdep)'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -l weakdeps -d 'add weak dependencies (modprobe.d and modules.weakdep)'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -l firmware-dir -x -a "(__fish_complete_directories (commandline -ct))" -d 'search DIR for firmware instead of the kernel\'s directories (may be repeated; searched in the order given)'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -l no-cache -d 'read every module file, keeping nothing (by default modules\' firmware fields are taken from lkm depmod\'s cache in the module directory, and kept in $XDG_CACHE_HOME/lkm/firmware, each read again once its file changes)'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -l json -d 'print the records as JSON (schema lkm/closure/1)'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=--firmware-dir --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- closure' -a "(__lkm_modules '-b' '--basedir' '-k' '--set-version' --aliases)"

complete -c lkm -n '__lkm_is --values=--want --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- status' -l want -x -a 'loaded absent' -d 'the state the exit status checks'
complete -c lkm -n '__lkm_is --values=--want --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- status' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=--want --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- status' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=--want --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- status' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=--want --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- status' -l json -d 'print the records as JSON (schema lkm/status/1)'
complete -c lkm -n '__lkm_is --values=--want --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- status' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=--want --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- status' -a "(__lkm_modules '-b' '--basedir' '-k' '--set-version' --aliases)"

complete -c lkm -n '__lkm_is --values=--sysfs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- drivers' -l sysfs -x -a "(__fish_complete_directories (commandline -ct))" -d 'read the devices (and the loaded modules) from DIR, not /sys'
complete -c lkm -n '__lkm_is --values=--sysfs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- drivers' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=--sysfs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- drivers' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=--sysfs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- drivers' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=--sysfs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- drivers' -l json -d 'print the records as JSON (schema lkm/drivers/1)'
complete -c lkm -n '__lkm_is --values=--sysfs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- drivers' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -s T -l format -x -a 'dot svg png' -d 'dot (the default), svg or png (these two run Graphviz\'s dot)'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -s o -l output -r -F -d 'write to FILE (replaced whole) instead of standard output'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -s s -l softdeps -d 'also follow soft and weak dependencies to their own dependencies'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -l json -d 'print the records as JSON (schema lkm/graph/1)'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=-T --values=--format --values=-o --values=--output --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- graph' -a "(__lkm_modules '-b' '--basedir' '-k' '--set-version' --aliases)"

complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- show' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- show' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- show' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- show' -l json -d 'print the records as JSON (schema lkm/show/1)'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- show' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- show' -a "(__lkm_modules_or_files '-b' '--basedir' '-k' '--set-version' --aliases)"

complete -c lkm -n '__lkm_is -- completion' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_at -- completion' -a 'bash'
complete -c lkm -n '__lkm_at -- completion' -a 'zsh'
complete -c lkm -n '__lkm_at -- completion' -a 'fish'

complete -c lkm -n '__lkm_is --values=--kernel --values=--der -- keys' -l kernel -r -F -d 'read the certificates built into this kernel image'
complete -c lkm -n '__lkm_is --values=--kernel --values=--der -- keys' -l pem -d 'write the certificates as PEM to standard output'
complete -c lkm -n '__lkm_is --values=--kernel --values=--der -- keys' -l der -x -a "(__fish_complete_directories (commandline -ct))" -d 'write each certificate to DIR/KEYID.der'
complete -c lkm -n '__lkm_is --values=--kernel --values=--der -- keys' -l json -d 'print the records as JSON (schema lkm/keys/1)'
complete -c lkm -n '__lkm_is --values=--kernel --values=--der -- keys' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is --values=--key --values=--cert --values=--hash -- sign' -l key -r -F -d 'PEM private key, RSA or ECDSA (a PEM holding the certificate too is fine); an encrypted key takes its password from KBUILD_SIGN_PIN'
complete -c lkm -n '__lkm_is --values=--key --values=--cert --values=--hash -- sign' -l cert -r -F -d 'the key\'s X.509 certificate, PEM or DER'
complete -c lkm -n '__lkm_is --values=--key --values=--cert --values=--hash -- sign' -l hash -x -a 'sha224 sha256 sha384 sha512 sha3-256 sha3-384 sha3-512' -d 'sha256 (default), sha224, sha384, sha512, sha3-256, sha3-384, sha3-512'
complete -c lkm -n '__lkm_is --values=--key --values=--cert --values=--hash -- sign' -l replace -d 'replace a module\'s signature instead of refusing it'
complete -c lkm -n '__lkm_is --values=--key --values=--cert --values=--hash -- sign' -l json -d 'print the records as JSON (schema lkm/sign/1)'
complete -c lkm -n '__lkm_is --values=--key --values=--cert --values=--hash -- sign' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=--key --values=--cert --values=--hash -- sign' -F

complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -l root -x -a "(__fish_complete_directories (commandline -ct))" -d 'audit the system below DIR (its proc, sys, lib/modules, modprobe.d)'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -l cert -r -F -d 'verify signatures against the certificates in FILE, PEM or DER (may be repeated)'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -l kernel -r -F -d 'verify signatures against the certificates built into this image'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -s v -l verbose -d 'also list each signed module and its signer'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -l json -d 'print the records as JSON (schema lkm/audit/1)'
complete -c lkm -n '__lkm_is --values=--root --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- audit' -s h -l help -d 'show this help'

complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -l cert -r -F -d 'trust the certificates in FILE, PEM or DER (may be repeated)'
complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -l kernel -r -F -d 'trust the certificates built into this kernel image'
complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -l json -d 'print the records as JSON (schema lkm/verify/1)'
complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=--cert --values=--kernel --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- verify' -a "(__lkm_modules_or_files '-b' '--basedir' '-k' '--set-version')"

complete -c lkm -n '__lkm_is --values=-j --values=--jobs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- modules-load' -s j -l jobs -x -d 'load with N threads (default: the number of CPUs)'
complete -c lkm -n '__lkm_is --values=-j --values=--jobs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- modules-load' -s b -l basedir -x -a "(__fish_complete_directories (commandline -ct))" -d 'use DIR as filesystem root for /lib/modules'
complete -c lkm -n '__lkm_is --values=-j --values=--jobs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- modules-load' -s k -l set-version -x -a "(__lkm_releases '-b' '--basedir' '-k' '--set-version')" -d 'use VER as kernel version instead of the running one'
complete -c lkm -n '__lkm_is --values=-j --values=--jobs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- modules-load' -s C -l config -r -F -d 'modprobe configuration file or directory (may be repeated)'
complete -c lkm -n '__lkm_is --values=-j --values=--jobs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- modules-load' -l json -d 'print the records as JSON (schema lkm/modules-load/1)'
complete -c lkm -n '__lkm_is --values=-j --values=--jobs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- modules-load' -s h -l help -d 'show this help'
complete -c lkm -n '__lkm_is --values=-j --values=--jobs --values=-b --values=--basedir --values=-k --values=--set-version --values=-C --values=--config -- modules-load' -F
