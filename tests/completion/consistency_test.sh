#!/usr/bin/env bash
# The bash completion (completions/praefect.bash) against the binary, so that
# a subcommand or flag added to or removed from src/cli/ cannot leave it
# behind:
#
#   * the subcommands `praefect -h` lists are exactly those `praefect <TAB>`
#     offers;
#   * each global flag the completion offers is one praefect knows, and the
#     usage's [-config FILE] is offered;
#   * for each subcommand, the flags its help (OPTIONS, or the usage line
#     `[-flag ...]` of the commands that print one) names are exactly those
#     `praefect SUBCOMMAND -<TAB>` offers (-help for "--help, -h");
#   * after a flag that takes a value the completion offers no flag (it
#     completes the value), after a boolean flag it offers the flags again.
#
#   consistency_test.sh PRAEFECT_BINARY SOURCE_DIR
set -o pipefail

bin=$1
src=$(cd "$2" && pwd) || exit 1
# shellcheck source=tests/completion/harness.sh
. "$src/tests/completion/harness.sh"
load_completion "$src/completions/praefect.bash"
[ -x "$bin" ] || fail "$bin is not an executable"

script="completions/praefect.bash"
checks=0

# same_set WHAT EXPECTED OFFERED: both newline-separated lists, any order.
same_set() {
  local what=$1 missing extra
  missing=$(LC_ALL=C comm -23 <(LC_ALL=C sort -u <<<"$2" | sed '/^$/d') <(LC_ALL=C sort -u <<<"$3" | sed '/^$/d'))
  extra=$(LC_ALL=C comm -13 <(LC_ALL=C sort -u <<<"$2" | sed '/^$/d') <(LC_ALL=C sort -u <<<"$3" | sed '/^$/d'))
  [ -z "$missing" ] || fail "$what: the binary has $(tr '\n' ' ' <<<"$missing")but $script does not offer it: add it there"
  [ -z "$extra" ] || fail "$what: $script offers $(tr '\n' ' ' <<<"$extra")but the binary does not have it: remove it there"
  checks=$((checks + 1))
}

usage=$("$bin" -h 2>&1) || fail "$bin -h exited $?: $usage"
subcommands=$(awk '/^subcommands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }' <<<"$usage")
grep -qx dataloss <<<"$subcommands" || fail "no subcommand list found in \`praefect -h\`:
$usage"
same_set "subcommands (praefect -h)" "$subcommands" "$(complete_line "praefect ")"

# Global flags: the usage names -config; every offered one is known.
grep -q '^usage: praefect \[-config FILE\]' <<<"$usage" || fail "the usage line of praefect -h changed: $usage"
grep -qx -- -config <<<"$(complete_line "praefect -")" || fail "$script to offer -config"
for flag in $(complete_line "praefect -"); do
  out=$("$bin" "$flag" 2>&1 </dev/null)
  grep -q "unknown flag" <<<"$out" && fail "$script offers the global flag $flag, which praefect does not know: $out"
  checks=$((checks + 1))
done

for sub in $subcommands; do
  words=$sub
  [ "$sub" = configuration ] && words="configuration validate"
  # shellcheck disable=SC2086 # words is one or two words
  help=$("$bin" $words -h 2>&1 </dev/null)
  # OPTIONS rows: "   --name, --alias value   usage"; the left column names
  # the flags, " value" says they take one.
  flags="" value_flags=""
  while IFS= read -r row; do
    left=${row#   }
    left=${left%%  *}
    names=$(grep -oE -- '--[a-z0-9][a-z0-9-]*' <<<"$left" | sed 's/^--//')
    flags+=$'\n'$names
    [[ $left == *" value" ]] && value_flags+=$'\n'$names
  done < <(sed -n '/^OPTIONS:/,$p' <<<"$help" | grep -E '^   -')
  # Usage lines: "praefect ... SUB [-flag] [-flag VALUE] [-flag[=false]]".
  while IFS= read -r line; do
    rest=${line#*" $words"}
    flags+=$'\n'$(grep -oE -- '\[-[a-z0-9][a-z0-9-]*' <<<"$rest" | sed 's/^\[-//')
    value_flags+=$'\n'$(grep -oE -- '\[-[a-z0-9][a-z0-9-]* [A-Z]' <<<"$rest" | sed 's/^\[-//; s/ [A-Z]$//')
  done < <(grep -E "praefect .*$words( |$)" <<<"$help")
  # "--help, -h": -help is offered, -h is its short spelling.
  flags=$(sed '/^h$/d' <<<"$flags")
  offered=$(complete_line "praefect $words -" | sed 's/^-//')
  same_set "flags of $words (praefect $words -h)" "$flags" "$offered"
  while IFS= read -r flag; do
    [ -n "$flag" ] || continue
    after=$(complete_line "praefect $words -$flag " | grep -- '^-')
    if grep -qx -- "$flag" <<<"$value_flags"; then
      [ -z "$after" ] || fail "praefect $words -$flag takes a value, but $script offers flags after it (add it to the value flags there):
$after"
    else
      [ -n "$after" ] || fail "praefect $words -$flag takes no value, but $script offers no flag after it"
    fi
    checks=$((checks + 1))
  done <<<"$flags"
done

echo "PASS: $checks consistency checks, $(wc -w <<<"$subcommands") subcommands"
