#!/usr/bin/env bash
# bench_inspect.sh - the command-line inspector as a whole process: the default
# listing of a 20,000-tensor checkpoint by mload-inspect, measured against
# `cat` of the same file, both to /dev/null, in the same run.
#
# Usage: tests/bench/bench_inspect.sh [PATH/TO/mload-inspect]   (default ./mload-inspect)
#   It builds nothing: make the tool first (`make mload-inspect`).
#
# Environment:
#   BENCH_REPS   samples per side (default 21)
#   BENCH_BATCH  runs of each command per sample (default 5); a sample is the
#                batch's time divided by BENCH_BATCH
#   TMPDIR       where the temporary folder goes (default /tmp)
#
# It writes, in a fresh mktemp folder removed at exit, many.safetensors: the
# same 20,000 tiny tensors as tests/bench/bench_parse.c (F32/BF16 mixed, rank
# 1-3, <= 64 elements each, ~2.4 MB header, real zero data), with python3 and
# its standard library only. The samples alternate (cat batch, inspect
# batch) so that drift hits both sides alike; the figures are medians. Times
# come from bash's $EPOCHREALTIME (no process per reading) and include what a
# shell pays to start each command, for both sides.
#
# Target: mload-inspect FILE > /dev/null takes at most 3x `cat FILE > /dev/null`.
# Exit status: 0 when everything ran (a MISS is a report, not a failure; a
# skip too), 1 on a real error.
set -u
export LC_ALL=C # $EPOCHREALTIME with a '.', and the C collation

NAME=bench_inspect
INSPECT=${1:-./mload-inspect}
REPS=${BENCH_REPS:-21}
BATCH=${BENCH_BATCH:-5}
TARGET=3.00

die() { echo "$NAME: error: $*" >&2; exit 1; }

# the table of the other benchmarks (tests/bench/bench_load.c print_table)
row() { printf '%-4s %-50s %-13s %-13s %-7s %-11s %s\n' "$@"; }
table() { # id what figure baseline ratio target verdict
  local v=$7 pass=0 miss=0 skip=0
  echo
  row id what figure baseline ratio target verdict
  printf '%.0s-' $(seq 120); echo
  row "$@"
  case $v in PASS) pass=1 ;; MISS) miss=1 ;; skip) skip=1 ;; esac
  echo "summary: $pass PASS, $miss MISS, $skip skipped, $((1 - pass - miss - skip)) informational rows"
}
WHAT="mload-inspect listing of 20,000 tensors vs cat"

case $REPS$BATCH in *[!0-9]*) die "BENCH_REPS and BENCH_BATCH must be numbers" ;; esac
[ "$REPS" -gt 0 ] && [ "$BATCH" -gt 0 ] || die "BENCH_REPS and BENCH_BATCH must be positive"
[ -x "$INSPECT" ] && [ ! -d "$INSPECT" ] || die "no executable mload-inspect at '$INSPECT' (build it: make mload-inspect)"
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (\$EPOCHREALTIME)"
if ! command -v python3 > /dev/null 2>&1; then
  echo "$NAME: python3 absent: the checkpoint cannot be generated" >&2
  table CLI "$WHAT" - - - "<= ${TARGET}x" skip
  exit 0
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$T"' EXIT
F=$T/many.safetensors

# ---- the checkpoint: tests/bench/bench_parse.c gen_many + write_safetensors
python3 - "$F" << 'PY' || die "generating $F failed"
import struct, sys
parts, off = ['"__metadata__":{"format":"pt"}'], 0
for i in range(20000):
    dt, rank = ("F32" if i % 3 == 0 else "BF16"), 1 + i % 3
    if rank == 1:
        shape = [1 + (i // 3) % 64]
    elif rank == 2:
        shape = [1 + (i // 3) % 8, 1 + (i // 24) % 8]
    else:
        shape = [1 + (i // 3) % 4, 1 + (i // 12) % 4, 1 + (i // 48) % 4]
    n = 4 if dt == "F32" else 2
    for d in shape:
        n *= d
    parts.append('"model.layers.%d.block.%d.weight_%d":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'
                 % (i // 20, i % 20, i, dt, ",".join(map(str, shape)), off, off + n))
    off += n
header = ("{" + ",".join(parts) + "}").encode()
header += b" " * (-len(header) % 8)  # padded with spaces to a multiple of 8, as the reference writer does
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)))
    f.write(header)
    f.write(bytes(off))
PY

# ---- one run each: the tool works on this file (and both are in the page cache)
cat "$F" > /dev/null || die "cat $F failed"
"$INSPECT" "$F" > "$T/listing" 2> "$T/err" || die "$INSPECT $F exited $?: $(head -c 500 "$T/err")"
lines=$(wc -l < "$T/listing")
[ "$lines" -eq 20000 ] || die "$INSPECT listed $lines lines, expected 20000"
head -n 1 "$T/listing" | grep -q $'^model.layers.0.block.0.weight_0\tF32\t\\[1\\]\t4$' ||
  die "unexpected first line: $(head -n 1 "$T/listing")"
file_bytes=$(wc -c < "$F")
listing_bytes=$(wc -c < "$T/listing")
rm -f "$T/listing" "$T/err"

# ---- timing
# sample VAR CMD...: microseconds per run of CMD, over a batch of BATCH runs
# ($EPOCHREALTIME is read in this shell: no process per reading)
sample() {
  local var=$1 i t0 t1 rc=0
  shift
  t0=$EPOCHREALTIME
  for ((i = 0; i < BATCH; ++i)); do "$@" > /dev/null || rc=$?; done
  t1=$EPOCHREALTIME
  [ "$rc" = 0 ] || die "$* exited $rc during the timing"
  printf -v "$var" '%s' $(( ((${t1%.*} - ${t0%.*}) * 1000000 + 10#${t1#*.} - 10#${t0#*.}) / BATCH ))
}

cats=() inspects=()
for ((r = 0; r < REPS; ++r)); do
  sample c cat "$F"
  sample s "$INSPECT" "$F"
  cats+=("$c")
  inspects+=("$s")
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cat_us=$(median "${cats[@]}")
inspect_us=$(median "${inspects[@]}")
min_of() { printf '%s\n' "$@" | sort -n | head -n 1; }

read -r fig base ratio verdict < <(awk -v s="$inspect_us" -v c="$cat_us" -v t="$TARGET" 'BEGIN {
  r = c > 0 ? s / c : 0
  printf "%.2f %.2f %.2f %s\n", s / 1000, c / 1000, r, (c > 0 && r <= t) ? "PASS" : "MISS" }')

echo "$NAME: $(basename "$F") $file_bytes bytes, 20000 tensors; listing $listing_bytes bytes; $REPS samples x $BATCH runs per side, to /dev/null"
printf '  cat FILE                 median %8.2f ms  (min %.2f ms)\n' "$base" "$(awk -v v="$(min_of "${cats[@]}")" 'BEGIN { print v / 1000 }')"
printf '  mload-inspect FILE       median %8.2f ms  (min %.2f ms)\n' "$fig" "$(awk -v v="$(min_of "${inspects[@]}")" 'BEGIN { print v / 1000 }')"
table CLI "$WHAT" "$fig ms" "$base ms" "${ratio}x" "<= ${TARGET}x" "$verdict"
exit 0
