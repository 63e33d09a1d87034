#!/usr/bin/env bash
# bench_scale.sh [SMALL] [LARGE] — the store's cost as it grows (issue 14): caches synthetic
# documents (about 30 tokens each; stories260K, one rank, f16) into a fresh store of SMALL and one of
# LARGE documents (default 4,096 and 131,072), then adds 1,024 more to each, and prints, measured in
# this run: seconds per document at LARGE over SMALL (target <= 1.25), the time to open the store
# and resolve 3 ids to their first chunk at LARGE over SMALL (target <= 2), the peak RSS of caching,
# the time of an incremental run of 1,024 documents, and the --retrieve cost (the BM25 search on
# disk, the index loaded whole as before, and a whole `query --retrieve 3`) at both sizes. Uses
# build/infoflow (BIN overrides); MODEL the model folder; BENCH_KEEP=1 keeps the stores in the
# printed folder.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${1:-4096} LARGE=${2:-131072} ADD=1024
BIN=${BIN:-build/infoflow}
MODEL=${MODEL:-models/stories260K}
[ -d "$MODEL" ] || MODEL=../shared/models/stories260K
W=$(mktemp -d)
[ "${BENCH_KEEP:-0}" = 1 ] && echo "stores in $W" >&2 || trap 'rm -rf "$W"' EXIT

# n documents of 11 words from a 400-word vocabulary, ids prefix000000.. (deterministic)
corpus() { # n first prefix file
  awk -v n="$1" -v f="$2" -v p="$3" 'BEGIN {
    split("the a cat dog ran to park with ball and big red little girl boy was happy sad tree sun day", base, " ");
    for (i = 0; i < 400; i++) { w = base[1 + i % 21]; v[i] = (i < 21) ? w : w substr("abcdefghijklmnopqrst", 1 + int(i / 21), 1) }
    s = 7 + f; for (i = f; i < f + n; i++) { t = "";
      for (j = 0; j < 11; j++) { s = (s * 1103515245 + 12345) % 2147483648; t = t (j ? " " : "") v[int(s / 65536) % 400] }
      printf "{\"id\": \"%s%07d\", \"text\": \"%s.\"}\n", p, i, t } }' > "$4"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

declare -A SEC RSS OPEN ADDS LOAD SEARCH QUERY TOK DOPEN DSEARCH DRSS LRSS
for n in "$SMALL" "$LARGE"; do
  s="$W/s$n"
  corpus "$n" 0 d "$W/c$n.jsonl"
  /usr/bin/time -f "%e %M" -o "$W/t" "$BIN" cache --model "$MODEL" --corpus "$W/c$n.jsonl" --store "$s" --dtype f16 --quiet
  read -r SEC[$n] RSS[$n] < "$W/t"
  TOK[$n]=$("$BIN" inspect --store "$s" --json | python3 -c "import json,sys; m=json.load(sys.stdin); print('%.1f' % (m['tokens'] / m['documents']))")
  ids=$(printf 'd%07d,d%07d,d%07d' 0 $((n / 2)) $((n - 1)))
  OPEN[$n]=$("$BIN" bench open --store "$s" --ids "$ids" --repeat 20 --json | field "['open_resolve_ms']")
  q="the happy girl ran to the park with a red ball"
  # --retrieve's BM25 step, best of 10: the segments searched on disk, and loaded whole (the old
  # way, kept as the reference); peak RSS of each search process
  /usr/bin/time -f "%M" -o "$W/t" "$BIN" search --store "$s" --prompt "$q" --k 3 --repeat 10 2> "$W/se" > /dev/null
  DOPEN[$n]=$(sed -E 's/.*index open ([0-9.]+) ms.*/\1/' "$W/se")
  DSEARCH[$n]=$(sed -E 's/.*search on disk ([0-9.]+) ms.*/\1/' "$W/se")
  DRSS[$n]=$(cat "$W/t")
  /usr/bin/time -f "%M" -o "$W/t" "$BIN" search --store "$s" --prompt "$q" --k 3 --repeat 10 --full-load 2> "$W/se" > /dev/null
  LOAD[$n]=$(sed -E 's/.*index load ([0-9.]+) ms.*/\1/' "$W/se")
  SEARCH[$n]=$(sed -E 's/.*, search ([0-9.]+) ms.*/\1/' "$W/se")
  LRSS[$n]=$(cat "$W/t")
  /usr/bin/time -f "%e" -o "$W/t" "$BIN" query --model "$MODEL" --store "$s" --retrieve 3 --prompt "$q" --steps 1 > /dev/null
  QUERY[$n]=$(cat "$W/t")
  corpus "$ADD" "$n" d "$W/a$n.jsonl"
  cat "$W/c$n.jsonl" "$W/a$n.jsonl" > "$W/ca$n.jsonl"
  /usr/bin/time -f "%e" -o "$W/t" "$BIN" cache --model "$MODEL" --corpus "$W/ca$n.jsonl" --store "$s" --dtype f16 --quiet
  ADDS[$n]=$(cat "$W/t")
  "$BIN" verify --store "$s" > /dev/null
  rm -f "$W/c$n.jsonl" "$W/ca$n.jsonl"
  printf '%8d docs (%s tokens each): cache %s s (%.3f ms/doc), peak RSS %s KiB; open + 3 ids %s ms; +%d docs %s s; retrieval on disk: open %s ms, search %s ms (RSS %s KiB); loaded whole: load %s ms, search %s ms (RSS %s KiB); query --retrieve 3 %s s\n' \
    "$n" "${TOK[$n]}" "${SEC[$n]}" "$(awk -v a="${SEC[$n]}" -v b="$n" 'BEGIN { print 1e3 * a / b }')" "${RSS[$n]}" "${OPEN[$n]}" \
    "$ADD" "${ADDS[$n]}" "${DOPEN[$n]}" "${DSEARCH[$n]}" "${DRSS[$n]}" "${LOAD[$n]}" "${SEARCH[$n]}" "${LRSS[$n]}" "${QUERY[$n]}" >&2
done
awk -v s="$SMALL" -v l="$LARGE" -v a="${SEC[$SMALL]}" -v b="${SEC[$LARGE]}" -v oa="${OPEN[$SMALL]}" -v ob="${OPEN[$LARGE]}" \
    -v ra="${RSS[$SMALL]}" -v rb="${RSS[$LARGE]}" -v da="${ADDS[$SMALL]}" -v db="${ADDS[$LARGE]}" \
    -v la="${LOAD[$SMALL]}" -v lb="${LOAD[$LARGE]}" -v qa="${QUERY[$SMALL]}" -v qb="${QUERY[$LARGE]}" \
    -v doa="${DOPEN[$SMALL]}" -v dob="${DOPEN[$LARGE]}" -v dsa="${DSEARCH[$SMALL]}" -v dsb="${DSEARCH[$LARGE]}" 'BEGIN {
  printf "seconds per document, %d over %d documents:      %.2f (target <= 1.25)\n", l, s, (b / l) / (a / s);
  printf "open + resolve 3 ids, %d over %d:               %.2f (target <= 2)\n", l, s, ob / oa;
  printf "peak RSS of caching, %d over %d:                %.2f (%d vs %d KiB)\n", l, s, rb / ra, rb, ra;
  printf "adding 1,024 documents, store of %d over %d:    %.2f\n", l, s, db / da;
  printf "--retrieve on disk (open + search), %d over %d: %.2f; loaded whole (load): %.2f; whole query --retrieve 3: %.2f\n",
         l, s, (dob + dsb) / (doa + dsa), lb / la, qb / qa }'
