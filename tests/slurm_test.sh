#!/usr/bin/env bash
# slurm_test.sh BIN REPO — the batch scripts on a real one-node SLURM started here: munged,
# slurmctld and slurmd run with all their state in a temporary folder (no system-wide
# configuration is read or written) and are stopped by PID at the end, also on failure.
set -u
BIN=$1 REPO=$2
for t in munged mungekey slurmctld slurmd sbatch sinfo scancel squeue; do
  command -v "$t" >/dev/null || { echo "FAIL: $t is missing (apt-get install slurm-wlm munge)"; exit 1; }
done
S=$(mktemp -d /tmp/infoflow-slurm-XXXXXX)
chmod 755 "$S"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
stop() {
  for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munge/munged.pid"; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$S"
}
trap stop EXIT

# ---- munge and slurm, private to this test ----
mkdir -p "$S/munge" "$S/state" "$S/spool" && chmod 755 "$S/munge"
mungekey -c -k "$S/munge/munge.key" 2>/dev/null || { echo "FAIL: mungekey"; exit 1; }
munged --key-file="$S/munge/munge.key" --socket="$S/munge/munge.sock" --pid-file="$S/munge/munged.pid" \
  --log-file="$S/munge/munged.log" --seed-file="$S/munge/munged.seed" || { echo "FAIL: munged"; exit 1; }
port=$((20000 + RANDOM % 20000))
cat > "$S/slurm.conf" <<CONF
ClusterName=infoflowtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.sock
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=pmix
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MailProg=/bin/true
EnforcePartLimits=ALL
NodeName=localhost CPUs=$(nproc) Sockets=1 CoresPerSocket=$(nproc) ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF=$S/slurm.conf
slurmctld -f "$SLURM_CONF" || { echo "FAIL: slurmctld"; exit 1; }
slurmd -N localhost -f "$SLURM_CONF" || { echo "FAIL: slurmd"; exit 1; }
for _ in $(seq 150); do [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break; sleep 0.2; done
expect "the one-node cluster is up" test "$(sinfo -h -o %T)" = idle

cd "$REPO"
export INFOFLOW=$BIN OPENBLAS_NUM_THREADS=1

# 1. a script outside SLURM refuses with a clear message
out=$(env -u SLURM_JOB_ID bash slurm/cache.sbatch 2>&1); rc=$?
expect "outside SLURM: exit 2 ($rc)" test "$rc" -eq 2
expect "... saying why ($out)" grep -q "not inside a SLURM job" <<<"$out"

# 2. caching the sample corpus with 2 ranks
STORE=$S/store sbatch --wait -o "$S/cache.out" slurm/cache.sbatch > /dev/null; rc=$?
expect "cache.sbatch completes ($rc): $(tail -n 3 "$S/cache.out")" test "$rc" -eq 0
expect "it prints hosts and start time" grep -q "on localhost, 2 tasks, started" "$S/cache.out"
expect "the store verifies" "$BIN" verify --store "$S/store"

# 3. scancel mid-way, resubmit: a complete store equal to an uninterrupted one
awk 'BEGIN { s = 5; for (i = 0; i < 80; i++) { printf "{\"id\": \"t%03d\", \"tokens\": [", i;
  for (j = 0; j < 256; j++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s%d", (j ? ", " : ""), 3 + s % 990 }
  print "]}" } }' > "$S/big.jsonl"
SHAPE="dim=256,layers=6,heads=8,kv_heads=4,hidden=768,vocab=1000,seq=1024"
"$BIN" cache --random-model "$SHAPE" --corpus "$S/big.jsonl" --store "$S/ref" --quiet || bad "reference store"
jid=$(RANDOM_MODEL=$SHAPE CORPUS=$S/big.jsonl STORE=$S/big EXTRA="--commit-docs 1" sbatch --parsable -o "$S/big1.out" slurm/cache.sbatch)
for _ in $(seq 600); do
  n=$("$BIN" inspect --store "$S/big" --json 2>/dev/null | sed -E 's/.*"documents": ([0-9]+).*/\1/')
  [ -n "$n" ] && [ "$n" -ge 5 ] 2>/dev/null && break
  sleep 0.1
done
scancel "$jid"
for _ in $(seq 300); do [ -z "$(squeue -h -j "$jid" 2>/dev/null)" ] && break; sleep 0.2; done
n=$("$BIN" inspect --store "$S/big" --json | sed -E 's/.*"documents": ([0-9]+).*/\1/')
expect "cancelled mid-way ($n of 80 documents)" test "$n" -ge 1 -a "$n" -lt 80
RANDOM_MODEL=$SHAPE CORPUS=$S/big.jsonl STORE=$S/big sbatch --wait -o "$S/big2.out" slurm/cache.sbatch > /dev/null; rc=$?
expect "resubmitted job completes ($rc): $(tail -n 3 "$S/big2.out")" test "$rc" -eq 0
expect "resumed, not restarted" grep -q "already in the store" "$S/big2.out"
expect "the resumed store verifies and equals an uninterrupted one" "$BIN" verify --store "$S/big" --against "$S/ref"

# 4. an eval grid as a job array, merged by collect.sh
cat > "$S/job.ini" <<INI
[job]
model = models/stories260K
store = $S/store
queries = jobs/data/demo_queries.jsonl
methods = full,infoflow
budgets = 0.15
reorder = off
steps = 4
[ablation]
layers = 2-3
INI
export JOB=$S/job.ini OUT=$S/eval METHODS="none epic infoflow" BUDGETS="0.15 0.5" REORDER="off"
cells=$(bash slurm/eval-array.sbatch --cells)
expect "the grid has 5 cells ($cells)" test "$cells" -eq 5
sbatch --wait --array=0-$((cells - 1)) -o "$S/eval-%a.out" slurm/eval-array.sbatch > /dev/null; rc=$?
expect "eval-array.sbatch completes ($rc): $(tail -n 2 "$S"/eval-*.out | tail -n 4)" test "$rc" -eq 0
out=$(bash slurm/collect.sh "$S/eval" 2>&1); rc=$?
expect "collect.sh merges ($rc)" test "$rc" -eq 0
expect "merged summary has every cell" sh -c "grep -q '| none | 0.00 |' '$S/eval/merged/summary.md' && grep -q '| epic | 0.50 |' '$S/eval/merged/summary.md' && grep -q '| infoflow | 0.15 |' '$S/eval/merged/summary.md'"
expect "the full reference appears once per item" test "$(grep -c '"method": "full"' "$S/eval/merged/fidelity.jsonl")" -eq $((16 * cells))
expect "... and is counted once" grep -q '| full | 1.00 | off | 16 |' "$S/eval/merged/summary.md"
expect "plots written" test -s "$S/eval/merged/speed_accuracy.png"
unset JOB OUT METHODS BUDGETS REORDER

# 5. a tensor-parallel query on 2 ranks
STORE=$S/store RESULT=$S/q.json sbatch --wait -o "$S/query.out" slurm/query-tp.sbatch > /dev/null; rc=$?
expect "query-tp.sbatch completes ($rc): $(tail -n 3 "$S/query.out")" test "$rc" -eq 0
expect "it ran on 2 ranks" grep -q '"ranks": 2' "$S/q.json"
expect "and compared with full" grep -q '"compare_full"' "$S/q.json"

# 6. batch answering on 2 ranks as one group of TP=2, then caching as a group (TP=2)
head -n 4 jobs/data/demo_queries.jsonl > "$S/bq.jsonl"
STORE=$S/store QUERIES=$S/bq.jsonl OUT=$S/answers.jsonl TP=2 sbatch --wait -o "$S/batch.out" slurm/query-tp.sbatch \
  > /dev/null; rc=$?
expect "query-tp.sbatch QUERIES=... TP=2 completes ($rc): $(tail -n 3 "$S/batch.out")" test "$rc" -eq 0
expect "one answer per question" test "$(wc -l < "$S/answers.jsonl")" -eq 4
expect "answered by a group of 2" grep -q '"ranks": 2' "$S/answers.jsonl"
STORE=$S/store-tp2 TP=2 sbatch --wait -o "$S/cache-tp2.out" slurm/cache.sbatch > /dev/null; rc=$?
expect "cache.sbatch TP=2 completes ($rc): $(tail -n 3 "$S/cache-tp2.out")" test "$rc" -eq 0
expect "its store agrees with the TP=1 store within 2e-3" "$BIN" verify --store "$S/store-tp2" --against "$S/store" \
  --tolerance 2e-3

summary
