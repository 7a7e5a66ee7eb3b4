# bash completion for praefect(8)                          -*- shell-script -*-
#
# Installed as /usr/share/bash-completion/completions/praefect, where
# bash-completion (2.11 on Debian 12) loads it the first time `praefect` is
# completed; it uses bash-completion's _init_completion and _filedir.
#
# Completes the global flags, the subcommands `praefect -h` lists, and each
# subcommand's flags, spelled -flag, or --flag when the word starts with
# "--" (praefect accepts both, and -flag=value). File names after -config and
# -input-path; after -virtual-storage, the virtual storage names of the
# configuration (-config FILE on the line, else /etc/praefect/config.toml);
# after -storage and -authoritative-storage, its nodes' storage names.
#
# tests/completion/consistency_test.sh checks it against the binary: every
# subcommand `praefect -h` lists and every flag a subcommand's help or usage
# names must be offered here. `reconcile` is left out on purpose: praefect
# only answers it with what replaced it (src/cli/subcmd_reconcile.cc).

# The flags of subcommand $1, without their dash (src/cli/subcmd_*.cc).
# "help" only where praefect prints the command's help for -h/-help.
_praefect_flags()
{
    case $1 in
        configuration) echo skip-unreadable-credentials ;;
        dial-nodes) echo timeout ;;
        sql-migrate) echo ignore-unknown verbose ;;
        sql-migrate-down) echo f ;;
        set-replication-factor)
            echo virtual-storage relative-path repository replication-factor help
            ;;
        dataloss) echo virtual-storage partially-unavailable help ;;
        accept-dataloss)
            echo virtual-storage relative-path repository authoritative-storage help
            ;;
        list-storages) echo virtual-storage help ;;
        metadata) echo repository-id virtual-storage relative-path repository help ;;
        remove-repository)
            echo virtual-storage relative-path repository apply db-only help
            ;;
        track-repository)
            echo virtual-storage relative-path repository replica-path \
                authoritative-storage replicate-immediately help
            ;;
        track-repositories) echo input-path replicate-immediately help ;;
        list-untracked-repositories) echo older-than delimiter help ;;
        check) echo q help ;;
        verify) echo repository-id virtual-storage storage help ;;
        maintenance) echo content-budget content-max wait untracked-older-than help ;;
    esac
}

# Names from the configuration FILE ($2): with $1 = virtual-storage, the
# name of each [[virtual_storage]]; with $1 = storage, the storage of each
# [[virtual_storage.node]]. Without [[virtual_storage]], the 2019 spelling
# praefect then reads: top-level virtual_storage_name and [[node]] tables
# (storage, or its old spelling name). A line scan, not a TOML parser: it
# finds `key = "value"` lines, as config.toml.example writes them, and prints
# nothing for a file it cannot read.
_praefect_config_names()
{
    [[ -f $2 && -r $2 ]] || return
    awk -v want="$1" -v sq="'" '
        /^[ \t]*\[/ {
            table = $0
            gsub(/[ \t]/, "", table)
            sub(/#.*/, "", table)
            next
        }
        match($0, /^[ \t]*[A-Za-z0-9_-]+[ \t]*=[ \t]*/) {
            key = substr($0, 1, RLENGTH)
            gsub(/[ \t=]/, "", key)
            value = substr($0, RLENGTH + 1)
            quote = substr(value, 1, 1)
            if (quote != "\"" && quote != sq) next
            value = substr(value, 2)
            end = index(value, quote)
            if (end < 2) next
            value = substr(value, 1, end - 1)
            if (quote == "\"" && index(value, "\\")) next
            if (want == "virtual-storage") {
                if (table == "[[virtual_storage]]" && key == "name") modern[++m] = value
                else if (table == "" && key == "virtual_storage_name") legacy[++l] = value
            } else if (key == "storage" || key == "name") {
                if (table == "[[virtual_storage.node]]") modern[++m] = value
                else if (table == "[[node]]") legacy[++l] = value
            }
        }
        END {
            if (m > 0) for (i = 1; i <= m; i++) { if (!seen[modern[i]]++) print modern[i] }
            else for (i = 1; i <= l; i++) { if (!seen[legacy[i]]++) print legacy[i] }
        }' "$2" 2>/dev/null
}

# COMPREPLY: the lines of $1 that start with $cur.
_praefect_reply_lines()
{
    local name
    local -a names
    mapfile -t names <<<"$1"
    COMPREPLY=()
    for name in "${names[@]}"; do
        [[ -n $name && $name == "$cur"* ]] && COMPREPLY+=("$name")
    done
}

_praefect()
{
    local cur prev words cword
    _init_completion -n = || return

    # -flag=value: complete the value (readline replaces the text after "=").
    if [[ $cur == -?*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    fi

    # The global flags end at the subcommand; -config takes a value.
    local i subcmd="" sub_index=0 config=/etc/praefect/config.toml
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            -config | --config)
                ((i++))
                ((i < cword)) && config=${words[i]}
                ;;
            -config=* | --config=*) config=${words[i]#*=} ;;
            -*) ;;
            *)
                subcmd=${words[i]}
                sub_index=$i
                break
                ;;
        esac
    done
    # What the shell would make of a quoted or ~/ path, in the simple cases.
    [[ $config == \"*\" || $config == \'*\' ]] && config=${config:1:-1}
    # shellcheck disable=SC2088 # the word as typed: a literal "~/"
    [[ $config == "~/"* ]] && config=$HOME/${config#"~/"}

    local dashes=${cur%%[!-]*}
    if [[ -z $subcmd ]]; then
        case $prev in
            -config | --config)
                _filedir
                return
                ;;
        esac
        if [[ $cur == -* ]]; then
            ((${#dashes} <= 2)) &&
                mapfile -t COMPREPLY < <(compgen -P "$dashes" -W "config version help" -- "${cur#"$dashes"}")
        else
            mapfile -t COMPREPLY < <(compgen -W "serve configuration dial-nodes sql-ping sql-migrate
                sql-migrate-status sql-migrate-down replication-backlog set-replication-factor dataloss
                accept-dataloss list-storages metadata remove-repository track-repository
                track-repositories list-untracked-repositories check verify maintenance version" -- "$cur")
        fi
        return
    fi

    if [[ $subcmd == configuration ]]; then
        if ((cword == sub_index + 1)); then
            mapfile -t COMPREPLY < <(compgen -W "validate" -- "$cur")
            return
        fi
        [[ ${words[sub_index + 1]} == validate ]] || return
    fi

    local flags
    flags=" $(_praefect_flags "$subcmd") "
    local flag=${prev#-}
    flag=${flag#-}
    if [[ $prev == -* && $flags == *" $flag "* ]]; then
        case $flag in
            input-path)
                _filedir
                return
                ;;
            virtual-storage | authoritative-storage | storage)
                local kind=virtual-storage
                [[ $flag != virtual-storage ]] && kind=storage
                _praefect_reply_lines "$(_praefect_config_names "$kind" "$config")"
                return
                ;;
            relative-path | repository | replica-path | repository-id | \
                replication-factor | older-than | delimiter | timeout | content-budget | content-max | \
                wait | untracked-older-than)
                # A value praefect cannot list offline.
                return
                ;;
        esac
    fi

    # The flags, also for an empty word: no subcommand but sql-migrate-down
    # takes a positional argument.
    if [[ -z $cur || $cur == -* ]] && ((${#dashes} <= 2)); then
        [[ -z $dashes ]] && dashes=-
        mapfile -t COMPREPLY < <(compgen -P "$dashes" -W "$flags" -- "${cur#"$dashes"}")
    fi
} &&
    complete -F _praefect praefect

# ex: filetype=sh
