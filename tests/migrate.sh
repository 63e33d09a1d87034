#!/usr/bin/env bash
# migrate.sh BIN MODEL_DIR DATA_DIR — `infoflow migrate` of version-1 stores made from a version-2
# store (the breaker report's mkv1.py): a clean one converts to a store identical to the original;
# each damaged one (duplicate id, comma, empty id, a group or shard that is not there, n_tokens
# and chunk lengths disagreeing with the shard) is refused naming the problem, BEFORE anything is
# replaced: manifest.json is still version 1 and byte-identical, and a second try fails the same way.
set -u
BIN=$1 MODEL=$2 DATA=$3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # pass/fail counters: expect, ok, bad, has, count, summary
cat > "$W/mkv1.py" <<'PY'
import json,sqlite3,sys,os,shutil,struct
src,dst,mut=sys.argv[1],sys.argv[2],sys.argv[3] if len(sys.argv)>3 else ""
if os.path.exists(dst): shutil.rmtree(dst)
os.makedirs(dst)
for f in os.listdir(src):
    if f.startswith('shard-'): shutil.copy(os.path.join(src,f),dst)
m=json.load(open(os.path.join(src,'manifest.json')))
db=sqlite3.connect(os.path.join(src,'catalog.sqlite'))
shards=[r[0] for r in db.execute('select name from shards order by id')]
docs=[]
for did,shard,grp,nt,ch in db.execute('select doc_id,shard,grp,n_tokens,chunks from docs order by id'):
    n=len(ch)//4; cl=list(struct.unpack('<%di'%n,ch)) if n*4==len(ch) else [nt]
    docs.append({"id":did,"group":grp,"n_tokens":nt,"chunks":cl,"shard":shard})
m['format_version']=1; m['shards']=shards; m['documents']=docs
if mut=='dupid': docs[1]['id']=docs[0]['id']
if mut=='comma': docs[0]['id']='a,b'
if mut=='badgroup': docs[0]['group']='/d999999'
if mut=='missingshard': m['shards'][0]='shard-nope.h5'
if mut=='emptyid': docs[0]['id']=''
if mut=='ntok': docs[0]['n_tokens']+=1; docs[0]['chunks'][0]+=1
json.dump(m,open(os.path.join(dst,'manifest.json'),'w'))
PY
"$BIN" cache --model "$MODEL" --corpus "$DATA/stories_corpus.jsonl" --store "$W/base" --quiet || { echo "FAIL: cache"; exit 1; }
python3 "$W/mkv1.py" "$W/base" "$W/v1" || { echo "FAIL: mkv1.py"; exit 1; }
expect "a clean version-1 store migrates" "$BIN" migrate --store "$W/v1"
expect "... to a store identical to the original" "$BIN" verify --store "$W/v1" --against "$W/base"
for case in "dupid|duplicate id" "comma|contains a comma" "emptyid|empty \"id\"" \
            "badgroup|its group is not in the shard" "missingshard|shard-nope.h5: shard is missing" \
            "ntok|the shard holds .* tokens"; do
  mut=${case%%|*} pat=${case#*|} s="$W/v1-${case%%|*}"
  python3 "$W/mkv1.py" "$W/base" "$s" "$mut"
  cp "$s/manifest.json" "$W/before.json"
  for try in 1 2; do
    out=$("$BIN" migrate --store "$s" 2>&1); rc=$?
    expect "$mut (try $try): refused ($out)" test "$rc" -eq 1
    expect "$mut (try $try): naming the problem ($out)" grep -q -- "$pat" <<<"$out"
    expect "$mut (try $try): manifest.json untouched (still version 1)" cmp -s "$s/manifest.json" "$W/before.json"
  done
done
# a failure after the conversion (the index cannot be written): manifest.json is put back
python3 "$W/mkv1.py" "$W/base" "$W/v1i"
cp "$W/v1i/manifest.json" "$W/before.json"
out=$(INFOFLOW_FAULT=index.segment.rename:1 INFOFLOW_FAULT_ACTION=fail "$BIN" migrate --store "$W/v1i" 2>&1); rc=$?
expect "a failing index write fails migrate ($out)" test "$rc" -eq 1
expect "... saying it is undone ($out)" grep -q "migrate undone" <<<"$out"
expect "... and leaves version 1" cmp -s "$W/v1i/manifest.json" "$W/before.json"
expect "... which a rerun converts" "$BIN" migrate --store "$W/v1i"
expect "... identical to the original" "$BIN" verify --store "$W/v1i" --against "$W/base"
summary
