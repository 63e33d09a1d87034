# lib.sh — the counters and checks the shell tests share; sourced after `set -u`:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# expect WHAT CMD...   counts a pass when CMD succeeds, else prints "FAIL: WHAT"
# ok / bad MSG         count a pass / a failure (printing MSG)
# has TEXT PATTERN     grep -q PATTERN in TEXT;  count TEXT PATTERN: its matching lines
# summary [LABEL]      prints the counts; its status (the script's last command) is 0 iff none failed
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
expect() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
has() { grep -q -- "$2" <<<"$1"; }
count() { grep -c -- "$2" <<<"$1"; }
summary() { echo "${1:+$1: }$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
