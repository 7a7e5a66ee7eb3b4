# shellcheck shell=bash
# Sourced by the completion tests: loads Debian's bash-completion (what
# loads the installed file on an operator's machine) and the script under
# test, and completes a command line as bash would hand it to _praefect.
# No `set -u` here: bash-completion's functions are not written for it.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# load_completion SCRIPT
load_completion() {
  local bash_completion=/usr/share/bash-completion/bash_completion
  [ -r "$bash_completion" ] ||
    fail "$bash_completion is missing: install bash-completion (scripts/setup does), the package that loads the completion"
  # Neither the machine's /etc/bash_completion.d nor the user's own files.
  # shellcheck disable=SC2034 # read by bash_completion
  BASH_COMPLETION_COMPAT_DIR=/nonexistent BASH_COMPLETION_USER_FILE=/dev/null
  # shellcheck source=/dev/null
  . "$bash_completion"
  # shellcheck source=/dev/null
  . "$1" || fail "sourcing $1 failed"
  complete -p praefect 2>/dev/null | grep -q -- '-F _praefect praefect$' ||
    fail "$1 does not register _praefect for praefect: $(complete -p praefect 2>&1)"
}

# complete_line LINE: the completions of LINE with the cursor at its end,
# one per line, sorted. The words are split as readline splits them: at
# blanks, and "=" (in COMP_WORDBREAKS) is a word of its own; a LINE ending in
# a blank completes an empty word.
complete_line() {
  local line=$1 token
  local -a tokens
  COMP_WORDS=()
  read -ra tokens <<<"$line"
  for token in "${tokens[@]}"; do
    while [[ $token == *=* ]]; do
      [ -n "${token%%=*}" ] && COMP_WORDS+=("${token%%=*}")
      COMP_WORDS+=("=")
      token=${token#*=}
    done
    [ -n "$token" ] && COMP_WORDS+=("$token")
  done
  [[ $line == *[[:blank:]] ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE=$line
  COMP_POINT=${#line}
  COMPREPLY=()
  _praefect praefect "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  if [ ${#COMPREPLY[@]} -gt 0 ]; then
    printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort
  fi
}
