#!/usr/bin/env bash
# The whole test suite (`make test`): strict compile checks of the header in
# every language mode and configuration, the unit tests built plainly and
# under AddressSanitizer + UndefinedBehaviorSanitizer, the command-line tool's
# tests, and a replay of the fuzz corpus. Ends with "N passed, N failed, N skipped".
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
    compile "$cc -std=$std STATIC" "$cc" -std=$std $STRICT -Wno-unused-function -DMODELLOAD_STATIC -I. -c "$T/impl.c" -o "$T/o.o"
  done
done
for cxx in "$CXX" clang++ g++; do
  command -v "$cxx" > /dev/null 2>&1 || continue
  for std in c++11 c++17; do
    compile "$cxx -std=$std" "$cxx" -std=$std $STRICT -I. -c "$T/impl.cpp" -o "$T/o.o"
  done
done
# MODELLOAD_MALLOC/REALLOC/FREE and MODELLOAD_ASSERT are honoured
if "$CC" -std=c99 $STRICT -Wno-unused-function -I. "$T/malloc.c" -o "$T/malloc" > "$T/cc.log" 2>&1 && "$T/malloc"; then ok; else bad "custom allocator macros"; cat "$T/cc.log" >&2; fi
# defining only some of them is an error
if "$CC" -std=c99 -DMODELLOAD_MALLOC=malloc -I. -c "$T/impl.c" -o "$T/o.o" > /dev/null 2>&1; then bad "partial allocator macros accepted"; else ok; fi
# header included in several files, implementation in one: links
compile "multi-file link" "$CC" -std=c99 $STRICT -I. "$T/impl_only.c" "$T/user.c" "$T/main2.c" -o "$T/multi"
echo "compile checks: $pass passed, $fail failed"

# ---- 2. unit tests, plain and sanitized ---------------------------------------
SRCS="tests/main.c tests/util.c tests/impl.c tests/test_dtype.c tests/test_json.c tests/test_format.c tests/test_read.c tests/test_fixtures.c tests/test_cast.c tests/test_map.c tests/test_converter.c tests/test_offload.c"
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

# ---- 3. command-line tool -----------------------------------------------------
if "$CC" -std=c99 -O2 $STRICT -I. examples/inspect.c -o "$B/mload-inspect" -pthread &&
   "$CC" -std=c99 -O2 $STRICT -I. examples/convert.c -o "$B/mload-convert" -pthread &&
   "$CC" -std=c99 -O2 $STRICT -I. examples/bind.c -o "$B/bind" -pthread &&
   "$CC" -std=c99 -O2 $STRICT -I. examples/demo.c -o "$B/mload-demo" -pthread -lm &&
   "$CC" -std=c99 -O2 -Wall -Wextra tests/gen_checkpoint.c -o "$B/gen_checkpoint"; then
  bash tests/test_cli.sh "$B" > "$T/cli.out" 2> "$T/cli.err"
  cat "$T/cli.err" >&2
  tally "$T/cli.out" "mload-inspect tests"
else bad "cli build"; fi

# ---- 3b. one map used by many threads, under ThreadSanitizer ----------------------
if "$CC" -std=c99 -O1 -g -fsanitize=thread -Wall -Wextra -I. tests/test_threads.c -o "$B/test_threads" -pthread 2> "$T/tsan.log"; then
  TSAN_OPTIONS=halt_on_error=1 "$B/test_threads" > "$T/ts.out" 2> "$T/ts.err"; rc=$?
  if [ $rc -ne 0 ]; then bad "ThreadSanitizer run exited $rc"; tail -n 30 "$T/ts.err" >&2; else tally "$T/ts.out" "threads (TSan)"; fi
else
  echo "SKIP ThreadSanitizer unavailable: $(head -n 1 "$T/tsan.log")" >&2; skip=$((skip+1))
fi

# ---- 4. fuzz corpus replay (regressions), sanitized -----------------------------
for cfg in "-DMODELLOAD_NO_THREADS" "-DMODELLOAD_NO_CLONES"; do
  compile "c99 $cfg" "$CC" -std=c99 $STRICT $cfg -I. -c "$T/impl.c" -o "$T/o.o"
done

if "$CC" -std=c99 -O1 -g $SAN -I. tests/fuzz_parse.c -o "$B/fuzz_replay" &&
   ASAN_OPTIONS=detect_leaks=1 "$B/fuzz_replay" tests/fuzz_corpus > "$T/fz.out" 2>&1; then
  ok; echo "fuzz corpus: $(tail -n 1 "$T/fz.out")"
else bad "fuzz corpus replay"; tail -n 30 "$T/fz.out" >&2; fi
if "$CC" -std=c99 -O1 -g $SAN -I. tests/fuzz_index.c -o "$B/fuzz_index_replay" -pthread &&
   ASAN_OPTIONS=detect_leaks=1 "$B/fuzz_index_replay" tests/fuzz_index_corpus > "$T/fi.out" 2>&1; then
  ok; echo "index fuzz corpus: $(tail -n 1 "$T/fi.out")"
else bad "index fuzz corpus replay"; tail -n 30 "$T/fi.out" >&2; fi
if "$CC" -std=c99 -O1 -g $SAN -I. tests/fuzz_rules.c -o "$B/fuzz_rules_replay" -pthread &&
   ASAN_OPTIONS=detect_leaks=1 "$B/fuzz_rules_replay" tests/fuzz_rules_corpus > "$T/fr.out" 2>&1; then
  ok; echo "rules fuzz corpus: $(tail -n 1 "$T/fr.out")"
else bad "rules fuzz corpus replay"; tail -n 30 "$T/fr.out" >&2; fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
