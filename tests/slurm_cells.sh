#!/usr/bin/env bash
# slurm_cells.sh SRC — the cells of slurm/eval-array.sbatch come from its JOB spec, and each cell's
# spec carries every key the cell needs (no SLURM needed: --cells, --list and --spec print them).
set -u
SRC=$1
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
A="bash $SRC/slurm/eval-array.sbatch"
unset METHODS BUDGETS REORDER
printf '[job]\nmodel = m\nstore = s\nqueries = q.jsonl\nout = o\nmethods = full,infoflow\nbudgets = 0.15\n' > "$W/j1.ini"
n=$(JOB=$W/j1.ini $A --cells)
expect "cells from JOB's methods and budgets (full is the reference, no cell): $n" test "$n" = 1
expect "... infoflow at 0.15, reorder off (JOB's default)" test "$(JOB=$W/j1.ini $A --list)" = "infoflow 0.15 off"
out=$(JOB=$W/nonexist.ini $A --cells 2>&1); rc=$?
expect "a missing JOB is refused (rc $rc: $out)" test "$rc" -eq 1 -a -n "$(grep 'no such job spec' <<<"$out")"
printf '[job]\nmodel = m\nstore = s\nqueries = q.jsonl\nmethods = full, epic, infoflow ; comment\nbudgets = 0.1,0.2\n' > "$W/j2.ini"
printf 'reorder = both\ndev = alpha=1\nscore_layers = 1-2\nseed = 3\n[needle]\nlengths = 128\ndepths = 0\nseed = 1\n[ablation]\nlayers = 0-1\n' >> "$W/j2.ini"
list=$(JOB=$W/j2.ini $A --list | tr '\n' '|')
expect "cells: epic x 2 budgets, infoflow x 2 budgets x reorder off/on ($list)" \
  test "$list" = "epic 0.1 off|epic 0.2 off|infoflow 0.1 off|infoflow 0.1 on|infoflow 0.2 off|infoflow 0.2 on|"
expect "env overrides (documented) still apply" test "$(JOB=$W/j2.ini METHODS='none epic' BUDGETS=0.5 REORDER=off $A --cells)" = 2
n=$(JOB=$W/j2.ini $A --cells)
for k in $(seq 0 $((n - 1))); do
  read -r m b r <<<"$(JOB=$W/j2.ini $A --list | sed -n "$((k + 1))p")"
  spec=$(JOB=$W/j2.ini $A --spec "$k")
  job=$(awk '/^\[/ { s = $0 } s == "[job]"' <<<"$spec")
  expect "cell $k: methods = full,$m" test "$(grep -c "^methods = full,$m\$" <<<"$job")" -eq 1 -a "$(grep -c '^methods' <<<"$job")" -eq 1
  expect "cell $k: budgets = $b" test "$(grep -c "^budgets = $b\$" <<<"$job")" -eq 1 -a "$(grep -c '^budgets' <<<"$job")" -eq 1
  expect "cell $k: reorder = $r (written even where JOB has the key otherwise)" test "$(grep -c "^reorder = $r\$" <<<"$job")" -eq 1 -a "$(grep -c '^reorder' <<<"$job")" -eq 1
  expect "cell $k: no dev, seed in [job] (no infoflow-dev or random cell)" test -z "$(grep -E '^(dev|seed)' <<<"$job")"
  if [ "$m" = infoflow ]; then expect "cell $k: keeps score_layers" grep -q '^score_layers = 1-2' <<<"$job"
  else expect "cell $k: drops score_layers" test -z "$(grep '^score_layers' <<<"$job")"; fi
  expect "cell $k: no needle grid, the ablation kept" test -z "$(grep -F '[needle]' <<<"$spec")" -a -n "$(grep -F '[ablation]' <<<"$spec")"
done
# a JOB without a reorder key: its "on" cells (from REORDER) must still run reordered
expect "an 'on' cell of a JOB without reorder says so" grep -q '^reorder = on' <(JOB=$W/j1.ini REORDER="off on" $A --spec 1)
summary "slurm_cells"
