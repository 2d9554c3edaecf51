#!/usr/bin/env bash
# The whole test suite (`make test`): strict compile checks of the header in
# every language mode and configuration, the unit tests built plainly and
# under AddressSanitizer + UndefinedBehaviorSanitizer, the command-line tools'
# tests, the examples built and run on generated checkpoints, and a replay of
# the fuzz corpus. Ends with "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
B=${BUILD:-build}
mkdir -p "$B"
CC=${CC:-cc}
CXX=${CXX:-c++}
STRICT="-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
pass=0 fail=0 skip=0

ok()  { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $*" >&2; }

# add the counts of a runner's closing "N passed, N failed, N skipped" line
tally() {
  local line p f s
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
  if [ -z "$line" ]; then bad "$2: no summary line"; return; fi
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | sed -nE 's/.*, ([0-9]+) skipped.*/\1/p')
  pass=$((pass+p)); fail=$((fail+f)); skip=$((skip+${s:-0}))
  echo "$2: $line"
}

# ---- 1. compile checks ------------------------------------------------------
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
printf '#define MODELLOAD_IMPLEMENTATION\n#include "modelload.h"\nint main(void){return 0;}\n' > "$T/impl.c"
cp "$T/impl.c" "$T/impl.cpp"
cat > "$T/malloc.c" <<'C'
#include <stdlib.h>
static size_t n_calls;
static void *my_malloc(size_t n) { n_calls++; return malloc(n); }
#define MODELLOAD_MALLOC(sz) my_malloc(sz)
#define MODELLOAD_REALLOC(p, sz) realloc(p, sz)
#define MODELLOAD_FREE(p) free(p)
#define MODELLOAD_ASSERT(x) ((void)0)
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"
int main(void) {
    mload_file_desc d = {0};
    mload_file *f;
    d.data = "\002\0\0\0\0\0\0\0{}";
    d.data_size = 10;
    if (mload_file_open(&d, &f, NULL) != MLOAD_OK) return 1;
    mload_file_close(f);
    return n_calls > 0 ? 0 : 2;
}
C
printf '#include "modelload.h"\nconst char *other(void) { return mload_result_string(MLOAD_OK); }\n' > "$T/user.c"
printf '#include "modelload.h"\nconst char *other(void);\nint main(void){ return other() == mload_result_string(MLOAD_OK) ? 0 : 1; }\n' > "$T/main2.c"
printf '#define MODELLOAD_IMPLEMENTATION\n#include "modelload.h"\n' > "$T/impl_only.c"

compile() { # label, command...
  local label=$1; shift
  if "$@" > "$T/cc.log" 2>&1; then ok; else bad "compile $label"; head -n 20 "$T/cc.log" >&2; fi
}
for cc in "$CC" clang gcc; do
  command -v "$cc" > /dev/null 2>&1 || continue
  for std in c99 c11; do
    compile "$cc -std=$std" "$cc" -std=$std $STRICT -I. -c "$T/impl.c" -o "$T/o.o"
    compile "$cc -std=$std NO_STDIO" "$cc" -std=$std $STRICT -DMODELLOAD_NO_STDIO -I. -c "$T/impl.c" -o "$T/o.o"
    compile "$cc -std=$std STATIC" "$cc" -std=$std $STRICT -DMODELLOAD_STATIC -I. -c "$T/impl.c" -o "$T/o.o"
  done
done
for cxx in "$CXX" clang++ g++; do
  command -v "$cxx" > /dev/null 2>&1 || continue
  for std in c++11 c++17; do
    compile "$cxx -std=$std" "$cxx" -std=$std $STRICT -I. -c "$T/impl.cpp" -o "$T/o.o"
  done
  compile "$cxx -std=c++11 STATIC" "$cxx" -std=c++11 $STRICT -DMODELLOAD_STATIC -I. -c "$T/impl.cpp" -o "$T/o.o"
done
# the module switches, alone and as parse-only builds (also with MODELLOAD_STATIC):
# whatever they remove, what is left must compile without a warning
PARSE_ONLY="-DMODELLOAD_NO_WRITER -DMODELLOAD_NO_CONVERTER -DMODELLOAD_NO_OFFLOAD -DMODELLOAD_NO_THREADS"
for cfg in "-DMODELLOAD_NO_WRITER" "-DMODELLOAD_NO_CONVERTER" "-DMODELLOAD_NO_OFFLOAD" "-DMODELLOAD_NO_FINGERPRINT" \
           "-DMODELLOAD_NO_PICKLE" "$PARSE_ONLY -DMODELLOAD_NO_PICKLE" "-DMODELLOAD_STATIC $PARSE_ONLY" "-DMODELLOAD_STATIC $PARSE_ONLY -DMODELLOAD_NO_FINGERPRINT"; do
  compile "$CC -std=c99 $cfg" "$CC" -std=c99 $STRICT $cfg -I. -c "$T/impl.c" -o "$T/o.o"
  compile "$CXX -std=c++11 $cfg" "$CXX" -std=c++11 $STRICT $cfg -I. -c "$T/impl.cpp" -o "$T/o.o"
done
# MODELLOAD_MALLOC/REALLOC/FREE and MODELLOAD_ASSERT are honoured
if "$CC" -std=c99 $STRICT -I. "$T/malloc.c" -o "$T/malloc" > "$T/cc.log" 2>&1 && "$T/malloc"; then ok; else bad "custom allocator macros"; cat "$T/cc.log" >&2; fi
# defining only some of them is an error
if "$CC" -std=c99 -DMODELLOAD_MALLOC=malloc -I. -c "$T/impl.c" -o "$T/o.o" > /dev/null 2>&1; then bad "partial allocator macros accepted"; else ok; fi
# header included in several files, implementation in one: links
compile "multi-file link" "$CC" -std=c99 $STRICT -I. "$T/impl_only.c" "$T/user.c" "$T/main2.c" -o "$T/multi"
echo "compile checks: $pass passed, $fail failed"

# ---- 2. unit tests, plain and sanitized ---------------------------------------
SRCS="tests/main.c tests/util.c tests/impl.c tests/test_dtype.c tests/test_json.c tests/test_format.c tests/test_read.c tests/test_fixtures.c tests/test_cast.c tests/test_cast_kernel.c tests/test_map.c tests/test_converter.c tests/test_offload.c tests/test_torch.c tests/test_lora.c"
if "$CC" -std=c99 -O2 -g $STRICT -Wno-conversion -Itests -I. $SRCS -o "$B/unit" -lm -pthread; then
  "$B/unit" > "$T/unit.out" 2> "$T/unit.err"; rc=$?
  cat "$T/unit.err" >&2
  tally "$T/unit.out" "unit tests (-O2)"
  [ $rc -eq 0 ] || [ "$(grep -c . "$T/unit.err")" -gt 0 ] || bad "unit tests exited $rc"
else bad "unit tests build"; fi
if "$CC" -std=c99 -O1 -g $SAN $STRICT -Wno-conversion -Itests -I. $SRCS -o "$B/unit_san" -lm -pthread; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$B/unit_san" > "$T/san.out" 2> "$T/san.err"; rc=$?
  grep -v '^  SKIP' "$T/san.err" | grep -E 'ERROR|runtime error|FAIL' >&2
  tally "$T/san.out" "unit tests (ASan+UBSan)"
  if [ $rc -ne 0 ] && ! grep -qE '^[0-9]+ passed, [1-9]' "$T/san.out"; then bad "sanitized unit tests exited $rc"; cat "$T/san.err" | tail -n 30 >&2; fi
else bad "sanitized unit tests build"; fi

# the same tests without threads (bulk loads, prefetch and the simulated device run inline)
if "$CC" -std=c99 -O1 -g -DMODELLOAD_NO_THREADS $STRICT -Wno-conversion -Itests -I. $SRCS -o "$B/unit_nothreads" -lm; then
  "$B/unit_nothreads" > "$T/nt.out" 2> "$T/nt.err"
  grep -E 'FAIL' "$T/nt.err" >&2
  tally "$T/nt.out" "unit tests (MODELLOAD_NO_THREADS)"
else bad "no-threads unit tests build"; fi
# without the PyTorch reader: a zip is Unsupported, naming the switch; the map works as before
if "$CC" -std=c99 -O1 -g -DMODELLOAD_NO_PICKLE $STRICT -Wno-conversion -Itests -I. $SRCS -o "$B/unit_nopickle" -lm -pthread; then
  "$B/unit_nopickle" torch map > "$T/np.out" 2> "$T/np.err"
  cat "$T/np.err" >&2
  tally "$T/np.out" "unit tests (MODELLOAD_NO_PICKLE: torch, map)"
else bad "no-pickle unit tests build"; fi

# ---- 3. command-line tools ----------------------------------------------------
if "$CC" -std=c99 -O2 $STRICT -I. examples/tools/inspect.c -o "$B/mload-inspect" -pthread &&
   "$CC" -std=c99 -O2 $STRICT -I. examples/tools/convert.c -o "$B/mload-convert" -pthread &&
   "$CC" -std=c99 -O2 $STRICT -I. examples/tools/demo.c -o "$B/mload-demo" -pthread -lm &&
   "$CC" -std=c99 -O2 -Wall -Wextra tests/gen_checkpoint.c -o "$B/gen_checkpoint"; then
  bash tests/test_cli.sh "$B" > "$T/cli.out" 2> "$T/cli.err"
  cat "$T/cli.err" >&2
  tally "$T/cli.out" "mload-inspect tests"
else bad "cli build"; fi

# ---- 3a. the short examples (examples/*.c) ------------------------------------
# Each builds as strict C99 under ASan+UBSan (-O1) and as strict C++11 (-O2), then runs on
# generated checkpoints (leak checks on); each run counts once.
EXAMPLES="list read_tensor bind_model stream_layers custom_source"
ex_pass0=$pass ex_fail0=$fail
E=$T/examples
mkdir -p "$E"
for ex in $EXAMPLES; do # the builds run in parallel: the sanitized ones are slow
  ( "$CC" -std=c99 -O1 -g $SAN $STRICT -I. "examples/$ex.c" -o "$E/$ex" -pthread > "$E/$ex.c.log" 2>&1; echo $? > "$E/$ex.c.rc" ) &
  ( "$CXX" -std=c++11 -O2 $STRICT -x c++ -I. "examples/$ex.c" -o "$E/$ex.cxx" -pthread > "$E/$ex.cxx.log" 2>&1; echo $? > "$E/$ex.cxx.rc" ) &
done
wait
for ex in $EXAMPLES; do
  for lang in c cxx; do
    if [ "$(cat "$E/$ex.$lang.rc")" = 0 ]; then ok; else bad "build examples/$ex.c ($lang)"; head -n 20 "$E/$ex.$lang.log" >&2; fi
  done
done

# exrun WANT CMD...: true when CMD exits WANT and no sanitizer reports; output in $T/ex.out, $T/ex.err
exrun() {
  local want=$1 rc
  shift
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 "$@" > "$T/ex.out" 2> "$T/ex.err"; rc=$?
  if [ "$rc" = "$want" ] && ! grep -qE 'Sanitizer|runtime error' "$T/ex.err"; then return 0; fi
  echo "  ${*##*/}: exited $rc, expected $want: $(head -c 800 "$T/ex.err")" >&2
  return 1
}
G=$E/g.safetensors # 10 tensors: the names and shapes bind_model expects
"$B/gen_checkpoint" "$G" 2 8 > /dev/null
"$B/gen_checkpoint" "$E/wide.safetensors" 2 16 > /dev/null
"$B/gen_checkpoint" "$E/deep.safetensors" 4 64 > /dev/null # 4 layers of 57600 bytes
mkdir -p "$E/sharded"
"$B/mload-convert" "$G" -o "$E/sharded/m.safetensors" --shard-size 2000 > /dev/null 2>&1
# F32 [2,4] = 1 2 3 4 5 6 7 -0.5 (sum 27.5), converted to BF16 (exactly) by mload-convert
{ printf '\x40\0\0\0\0\0\0\0%-64s' '{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}}'
  printf '\0\0\x80\x3f\0\0\0\x40\0\0\x40\x40\0\0\x80\x40\0\0\xa0\x40\0\0\xc0\x40\0\0\xe0\x40\0\0\0\xbf'; } > "$E/v32.safetensors"
"$B/mload-convert" "$E/v32.safetensors" -o "$E/v16.safetensors" --dtype BF16 > /dev/null 2>&1

# list: a file, an index.json, a missing path
if exrun 0 "$E/list" "$G" && [ "$(wc -l < "$T/ex.out")" = 11 ] && grep -qxF '10 tensors, 5984 bytes in 1 file(s)' "$T/ex.out" &&
   grep -qP '^model\.layers\.1\.mlp\.up_proj\.weight\tBF16\t\[16,8\]\t256$' "$T/ex.out"; then ok; else bad "example list: $(tail -n 1 "$T/ex.out")"; fi
if exrun 0 "$E/list" "$E/sharded/m.safetensors.index.json" && grep -qE '^10 tensors, 5984 bytes in [2-9] file\(s\)$' "$T/ex.out"; then ok
else bad "example list (index.json): $(tail -n 1 "$T/ex.out")"; fi
if exrun 1 "$E/list" "$E/none.safetensors" && grep -q 'CannotOpen' "$T/ex.err"; then ok; else bad "example list (missing file)"; fi
# read_tensor: known values through a BF16 -> F32 conversion; an unknown name
if exrun 0 "$E/read_tensor" "$E/v16.safetensors" w 3 && grep -qx 'w: BF16 \[2,4\], 8 values' "$T/ex.out" &&
   grep -qx 'first: 1 2 3' "$T/ex.out" && grep -qx 'sum: 27.5' "$T/ex.out"; then ok; else bad "example read_tensor: $(cat "$T/ex.out")"; fi
if exrun 1 "$E/read_tensor" "$G" no.such.tensor && grep -q 'no tensor named' "$T/ex.err"; then ok; else bad "example read_tensor (unknown name)"; fi
# bind_model: the matching checkpoint; one of another width is refused
if exrun 0 "$E/bind_model" "$G" && grep -q '^bind_model: loaded 10 tensors' "$T/ex.out"; then ok; else bad "example bind_model: $(cat "$T/ex.out")"; fi
if exrun 1 "$E/bind_model" "$E/wide.safetensors" && grep -q 'BindMismatch' "$T/ex.err" && grep -q 'ShapeMismatch' "$T/ex.err"; then ok
else bad "example bind_model (other shapes)"; fi
# stream_layers: 4 layers (230400 bytes) under a 150000-byte budget; a budget below one layer
if exrun 0 "$E/stream_layers" "$E/deep.safetensors" 150000 3; then
  line=$(cat "$T/ex.out")
  peak=$(echo "$line" | sed -nE 's/.* peak_device_bytes=([0-9]+).*/\1/p'); hits=$(echo "$line" | sed -nE 's/.* prefetch_hits=([0-9]+).*/\1/p')
  if echo "$line" | grep -q '^4 layers x 3 passes: budget=150000 ' && [ -n "$peak" ] && [ "$peak" -gt 0 ] && [ "$peak" -le 150000 ] &&
     [ "${hits:-0}" -gt 0 ]; then ok; else bad "example stream_layers: $line"; fi
else bad "example stream_layers"; fi
if exrun 1 "$E/stream_layers" "$E/deep.safetensors" 50000 && grep -q 'Budget' "$T/ex.err"; then ok; else bad "example stream_layers (budget too small)"; fi
# custom_source: the checkpoint at byte 1000 of a pack file; the tensor's checksum (djb2)
# must be the same through the pack, through memory and over the bytes mload-inspect dumps
{ head -c 1000 /dev/zero | tr '\0' 'p'; cat "$G"; head -c 333 /dev/zero; } > "$E/game.pak"
h=5381
for byte in $("$B/mload-inspect" --dump model.norm.weight "$G" | od -An -tu1 -v); do h=$(( h * 33 + byte )); done
want=$(printf 'checksum %x' "$h")
if exrun 0 "$E/custom_source" "$E/game.pak" 1000 "$(wc -c < "$G")" model.norm.weight &&
   [ "$(grep -c '^pack: model\.' "$T/ex.out")" = 10 ] && [ "$(grep -c '^memory: model\.' "$T/ex.out")" = 10 ] &&
   grep -qx "pack: read model.norm.weight, 32 bytes, $want" "$T/ex.out" &&
   grep -qx "memory: read model.norm.weight, 32 bytes, $want" "$T/ex.out"; then ok
else bad "example custom_source (wanted $want): $(grep read "$T/ex.out")"; fi
if exrun 1 "$E/custom_source" "$E/game.pak" 999 "$(wc -c < "$G")"; then ok; else bad "example custom_source (wrong offset)"; fi
echo "examples: $((pass - ex_pass0)) passed, $((fail - ex_fail0)) failed"

# ---- 3a. the CUDA back end where a toolkit is installed (no GPU needed): builds with
# MODELLOAD_CUDA (gcc, g++, clang, nvcc), the embedded PTX current and accepted by ptxas,
# the run without a GPU (make cuda-check)
BUILD="$B" bash tests/gpu/cuda_check.sh > "$T/cuda.out" 2> "$T/cuda.err"; rc=$?
if [ $rc -eq 2 ]; then echo "SKIP CUDA back end: $(head -n 1 "$T/cuda.err")" >&2; skip=$((skip+1))
else cat "$T/cuda.err" >&2; tally "$T/cuda.out" "CUDA back end (make cuda-check)"; fi

# ---- 3b. one map used by many threads, under ThreadSanitizer ----------------------
if "$CC" -std=c99 -O1 -g -fsanitize=thread -Wall -Wextra -DMLOAD__CHECK_SIZES -I. tests/test_threads.c -o "$B/test_threads" -pthread 2> "$T/tsan.log"; then
  TSAN_OPTIONS=halt_on_error=1 "$B/test_threads" > "$T/ts.out" 2> "$T/ts.err"; rc=$?
  if [ $rc -ne 0 ]; then bad "ThreadSanitizer run exited $rc"; tail -n 30 "$T/ts.err" >&2; else tally "$T/ts.out" "threads (TSan)"; fi
else
  echo "SKIP ThreadSanitizer unavailable: $(head -n 1 "$T/tsan.log")" >&2; skip=$((skip+1))
fi

# ---- 4. fuzz corpus replay (regressions), sanitized -----------------------------
for cfg in "-DMODELLOAD_NO_THREADS" "-DMODELLOAD_NO_CLONES" "-DMODELLOAD_NO_SIMD"; do
  compile "c99 $cfg" "$CC" -std=c99 $STRICT $cfg -I. -c "$T/impl.c" -o "$T/o.o"
done
compile "c++11 -DMODELLOAD_NO_SIMD" "$CXX" -std=c++11 $STRICT -DMODELLOAD_NO_SIMD -I. -c "$T/impl.cpp" -o "$T/o.o"

if "$CC" -std=c99 -O1 -g $SAN -DMLOAD__CHECK_SIZES -I. tests/fuzz_parse.c -o "$B/fuzz_replay" &&
   ASAN_OPTIONS=detect_leaks=1 "$B/fuzz_replay" tests/fuzz_corpus > "$T/fz.out" 2>&1; then
  ok; echo "fuzz corpus: $(tail -n 1 "$T/fz.out")"
else bad "fuzz corpus replay"; tail -n 30 "$T/fz.out" >&2; fi
if "$CC" -std=c99 -O1 -g $SAN -DMLOAD__CHECK_SIZES -I. tests/fuzz_index.c -o "$B/fuzz_index_replay" -pthread &&
   ASAN_OPTIONS=detect_leaks=1 "$B/fuzz_index_replay" tests/fuzz_index_corpus > "$T/fi.out" 2>&1; then
  ok; echo "index fuzz corpus: $(tail -n 1 "$T/fi.out")"
else bad "index fuzz corpus replay"; tail -n 30 "$T/fi.out" >&2; fi
if "$CC" -std=c99 -O1 -g $SAN -DMLOAD__CHECK_SIZES -I. tests/fuzz_rules.c -o "$B/fuzz_rules_replay" -pthread &&
   ASAN_OPTIONS=detect_leaks=1 "$B/fuzz_rules_replay" tests/fuzz_rules_corpus > "$T/fr.out" 2>&1; then
  ok; echo "rules fuzz corpus: $(tail -n 1 "$T/fr.out")"
else bad "rules fuzz corpus replay"; tail -n 30 "$T/fr.out" >&2; fi

if "$CC" -std=c99 -O1 -g $SAN -DMLOAD__CHECK_SIZES -I. tests/fuzz_torch.c -o "$B/fuzz_torch_replay" -pthread &&
   ASAN_OPTIONS=detect_leaks=1 "$B/fuzz_torch_replay" tests/fuzz_torch_corpus > "$T/ft.out" 2>&1; then
  ok; echo "PyTorch fuzz corpus: $(tail -n 1 "$T/ft.out")"
else bad "PyTorch fuzz corpus replay"; tail -n 30 "$T/ft.out" >&2; fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
