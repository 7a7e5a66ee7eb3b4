#!/bin/sh
# expect.sh CODE PATTERN COMMAND...: runs COMMAND, passes when it exits with
# CODE and its output (stdout and stderr) matches the grep -E PATTERN.
# (ctest's PASS_REGULAR_EXPRESSION would ignore the exit code.)
code=$1 pattern=$2
shift 2
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne "$code" ]; then
  echo "expect.sh: exit status $rc, want $code: $*" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq -- "$pattern"; then
  echo "expect.sh: output does not match /$pattern/: $*" >&2
  exit 1
fi
