#!/usr/bin/env bash
# 100,000 small files against the free plan's quotas (issue #14): HF -> HF and MS -> HF, the
# time each run took against its quota floor, the least time the destination's limits allow,
# and the requests each hub admitted per bucket (per 1,000 files).
#
# The floor: commits on one branch are sequential, and the Hub spends time on each (hubsim
# models it: --commit-op-cost per file, --commit-mib-cost per MiB of inline content); here both
# are scaled down 30 times (1 ms a file, as in the e2e tests' spirit) so a run takes minutes,
# not the 50 the real costs would. The request quotas (free plan: 1,000 api, 5,000 resolves per
# 5 minutes) would add whole windows only if a run needed more than one window's worth; the
# commit quota (128 an hour) only past 128 commits. Both are printed so the floor can be checked.
# Usage: bench/many.sh [FILES]   (default 100000; 3 LFS objects of 4 KiB besides)
set -euo pipefail
cd "$(dirname "$0")/.."
files="${1:-100000}"
. bench/lib.sh many

op_ms=1
mib_ms=100
echo "repo: $files regular files of 64 B + 3 LFS objects of 4 KiB; destination commit cost ${op_ms} ms a file + ${mib_ms} ms a MiB inline (the Hub's / 30)"
for flavor in hf ms; do
  "$bin/hubsim" seed --data "$work/src-$flavor" --flavor "$flavor" --repo bench/many \
    --files "$files" --file-size 64 --lfs-files 3 --lfs-size 4KiB >/dev/null 2>&1
  serve "$flavor" "$work/src-$flavor"
  src=$(url "$work/src-$flavor")
  serve hf "$work/dst-$flavor" --commit-op-cost "${op_ms}ms" --commit-mib-cost "${mib_ms}ms" --commit-timeout 2s
  dst=$(url "$work/dst-$flavor")
  t0=$(now)
  HF_TOKEN="$token" MODELSCOPE_TOKEN="$token" HUBMIGRATE_SOURCE_TOKEN="$token" \
    "$bin/migrate-coord" run --source "$flavor:bench/many" --dest hf:bench/many-copy \
    --source-endpoint "$src" --dest-endpoint "$dst" --parallel --report "$work/report-$flavor.json" \
    >"$work/log-$flavor" 2>&1 || { tail -5 "$work/log-$flavor"; exit 1; }
  t1=$(now)
  commits=$(grep -c "committed a part" "$work/log-$flavor" || true)
  python3 - "$src" "$dst" "$flavor" "$files" "$commits" "$(secs "$t0" "$t1")" "$op_ms" "$mib_ms" <<'EOF'
import json, sys, urllib.request
src, dst, flavor, files, commits, took, op_ms, mib_ms = sys.argv[1:]
files, commits, took = int(files), int(commits), float(took)
def stats(url):
    with urllib.request.urlopen(url + "/_hubsim/stats") as r:
        return json.load(r)
s, d = stats(src), stats(dst)
def refused(st):
    return sum(int(c.get("429", 0)) for c in st.get("requests", {}).values())
def buckets(st):
    q = st.get("quota", {})
    return {b: q.get(b, {}).get("admitted", 0) for b in ("api", "resolvers", "pages")}
total = files + 4
inline_mib = files * 64 / 2**20
floor = total * int(op_ms) / 1000 + inline_mib * int(mib_ms) / 1000
sb, db = buckets(s), buckets(d)
per_k = lambda b: ", ".join(f"{k} {v} ({v * 1000 / total:.2f} per 1,000 files)" for k, v in b.items())
print(f"{flavor.upper()} -> HF: {took:.1f} s, {commits} commits; quota floor {floor:.1f} s (commit time); "
      f"x floor {took / floor:.2f}; 429s answered: source {refused(s)}, destination {refused(d)}")
print(f"  source calls: {per_k(sb)}" if flavor == "hf" else f"  source calls (ModelScope: no request quota modelled): {sum(int(n) for c in s.get('requests', {}).values() for n in c.values())} requests")
print(f"  destination calls: {per_k(db)}; commits {commits} of 128 an hour")
EOF
  kill "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
