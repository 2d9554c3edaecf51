#!/usr/bin/env bash
# cuda_check.sh - `make cuda-check`: the CUDA back end where a CUDA toolkit
# is installed, GPU or not. The header with MODELLOAD_CUDA compiles without
# a warning and links against libcudart with gcc (C11), g++ (C++11), clang
# and nvcc when present; the PTX embedded in modelload.h is current (and
# ptxas accepts it for sm_75 and sm_90); tests/gpu/cuda_nogpu.c runs: a
# clean error naming the CUDA error without a driver or GPU, a round trip
# with one. CUDA_HOME defaults to /usr/local/cuda. The CUDA headers are
# included with -isystem (they use anonymous unions, which -Wpedantic
# flags in C99). Ends with "N passed, N failed". Exit 2 without a toolkit.
set -u
cd "$(dirname "$0")/../.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
STRICT="-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror"
INC="-isystem $CUDA_HOME/include"
LIB="-L$CUDA_HOME/lib64 -Wl,-rpath,$CUDA_HOME/lib64 -lcudart -pthread"
if [ ! -f "$CUDA_HOME/include/cuda_runtime_api.h" ]; then echo "cuda_check.sh: no CUDA toolkit at $CUDA_HOME" >&2; exit 2; fi
B=${BUILD:-build}/cuda
mkdir -p "$B"
pass=0 fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $*" >&2; }
build() { # label, command...
  local label=$1; shift
  if "$@" > "$B/cc.log" 2>&1; then ok; return 0; fi
  bad "$label"; head -n 20 "$B/cc.log" >&2; return 1
}
build "gcc -std=c11 MODELLOAD_CUDA" gcc -std=c11 -O2 $STRICT -DMODELLOAD_CUDA $INC -I. tests/gpu/cuda_nogpu.c -o "$B/nogpu_gcc" $LIB
build "g++ -std=c++11 MODELLOAD_CUDA" g++ -std=c++11 -O2 $STRICT -DMODELLOAD_CUDA $INC -I. -x c++ tests/gpu/cuda_nogpu.c -o "$B/nogpu_gxx" $LIB
if command -v clang > /dev/null 2>&1; then
  build "clang -std=c11 MODELLOAD_CUDA" clang -std=c11 -O2 $STRICT -DMODELLOAD_CUDA $INC -I. tests/gpu/cuda_nogpu.c -o "$B/nogpu_clang" $LIB
fi
if [ -x "$CUDA_HOME/bin/nvcc" ]; then
  build "nvcc MODELLOAD_CUDA" "$CUDA_HOME/bin/nvcc" -O2 -DMODELLOAD_CUDA -I. -x cu tests/gpu/cuda_nogpu.c -o "$B/nogpu_nvcc" -lcudart
fi
build "gcc -std=c11 MODELLOAD_CUDA NO_THREADS STATIC" gcc -std=c11 $STRICT -DMODELLOAD_CUDA -DMODELLOAD_NO_THREADS -DMODELLOAD_STATIC \
  -DMODELLOAD_IMPLEMENTATION $INC -x c -c modelload.h -o "$B/nothreads.o"
build "g++ -std=c++17 -O0 MODELLOAD_CUDA" g++ -std=c++17 -O0 $STRICT -DMODELLOAD_CUDA -DMODELLOAD_IMPLEMENTATION $INC -x c++ -c modelload.h -o "$B/cxx17.o"
# the same header without the define: nothing CUDA is needed
build "gcc -std=c99 without MODELLOAD_CUDA" gcc -std=c99 $STRICT -DMODELLOAD_IMPLEMENTATION -x c -c modelload.h -o "$B/plain.o"
if bash tests/gpu/embed_ptx.sh --check > "$B/embed.log" 2>&1; then ok; else bad "embedded PTX"; cat "$B/embed.log" >&2; fi
for exe in "$B"/nogpu_*; do
  [ -x "$exe" ] || continue
  if "$exe" > "$B/run.log" 2>&1; then ok; echo "$(basename "$exe"): $(head -n 1 "$B/run.log")"
  else bad "$(basename "$exe")"; cat "$B/run.log" >&2; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
