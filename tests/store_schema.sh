#!/usr/bin/env bash
# store_schema.sh BIN MODEL_DIR DOC — builds a small store and checks, with h5dump, that a shard
# holds every attribute, group and dataset that the schema block of docs/storage.md lists, with
# the type listed there, and that the store's k/v datasets carry Fletcher32.
set -u
BIN=$1 MODEL=$2 DOC=$3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
printf '%s\n' '{"id": "a", "text": "Once upon a time there was a cat."}' '{"id": "b", "text": "Tom ran."}' > "$W/c.jsonl"
"$BIN" cache --model "$MODEL" --corpus "$W/c.jsonl" --store "$W/s" --quiet || { echo "FAIL: cache"; exit 1; }
shard=$(ls "$W"/s/shard-*.h5 | head -n1)
h5dump -H "$shard" > /dev/null 2>&1 && ok || bad "h5dump cannot read $shard"
declare -A H5T=([string]=H5T_STRING [int64]=H5T_STD_I64LE [int32]=H5T_STD_I32LE [uint8]=H5T_STD_U8LE
                [float64]=H5T_IEEE_F64LE [float]="floating-point")
rows=$(awk '/^```schema/{on=1; next} /^```/{on=0} on' "$DOC")
[ -n "$rows" ] || { echo "FAIL: no schema block in $DOC"; exit 1; }
while read -r path kind name type _; do
  p=${path//NNNNNN/000000}; p=${p//CCCC/0000}
  case $kind in
    attr)
      out=$(h5dump -a "${p%/}/$name" "$shard" 2>&1)
      [ "$p" = / ] && out=$(h5dump -a "/$name" "$shard" 2>&1)
      if grep -q "${H5T[$type]}" <<<"$out"; then ok; else bad "attribute $p $name is not $type"; fi ;;
    group)
      if h5dump -g "$p" -H "$shard" >/dev/null 2>&1; then ok; else bad "group $p missing"; fi ;;
    dataset)
      out=$(h5dump -H -p -d "$p" "$shard" 2>&1)
      if grep -q "${H5T[$type]}" <<<"$out" && grep -q FLETCHER32 <<<"$out"; then ok; else bad "dataset $p is not $type with Fletcher32"; fi ;;
    *) bad "schema row with unknown kind '$kind'" ;;
  esac
done <<<"$rows"
# k/v are [L][Hkv][n][Dh] = (5, 4, n, 8) for stories260K, chunked one head of one layer at a time
out=$(h5dump -H -p -d /d000000/c0000/k "$shard")
grep -Eq 'SIMPLE \{ \( 5, 4, [0-9]+, 8 \)' <<<"$out" && ok || bad "k shape"
grep -Eq 'CHUNKED \( 1, 1, [0-9]+, 8 \)' <<<"$out" && ok || bad "k chunking"
python3 -c "import json,sys; m=json.load(open('$W/s/manifest.json')); sys.exit(0 if m['format']=='infoflow-kv-store' and m['format_version']==2 and 'documents' not in m else 1)" 2>/dev/null && ok || bad "manifest fields"
# the catalog: its tables are the ones the catalog block of the document lists, word for word, and
# they hold the two documents, their shard and an index segment over both (Python's sqlite3 reads it)
python3 - "$W/s/catalog.sqlite" "$DOC" <<'PY' && ok || bad "catalog tables and rows"
import re, sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
want = re.search(r"```catalog\n(.*?)```", open(sys.argv[2]).read(), re.S).group(1).strip().splitlines()
have = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
assert have == want, (have, want)
ids = [r[0] for r in db.execute("SELECT doc_id FROM docs ORDER BY id")]
assert sorted(ids) == ["a", "b"], ids
(n,) = db.execute("SELECT sum(n_docs) FROM shards").fetchone()
assert n == 2, n
(first, nd) = db.execute("SELECT first_doc, n_docs FROM segments").fetchone()
assert (first, nd) == (0, 2), (first, nd)
PY
summary
