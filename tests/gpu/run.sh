#!/usr/bin/env bash
# tests/gpu/run.sh - the CUDA back end on a machine with a GPU, in one run
# (a few minutes): `make cuda-check` (compile, link, embedded PTX), then
# tests/gpu/test_cuda.c (conversions on the device bit-identical to the
# host, loads into device memory, the offload manager under a budget with
# prefetch and the caller's stream, the B8 timings), then the demo on the
# GPU. Prints each part's summary and the B8 table last.
# CUDA_HOME defaults to /usr/local/cuda. Exit status: 0 when all passed.
set -u
cd "$(dirname "$0")/../.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
B=${BUILD:-build}/cuda
mkdir -p "$B"
rc=0
command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== make cuda-check"
bash tests/gpu/cuda_check.sh || rc=1
echo "== tests/gpu/test_cuda.c"
if gcc -std=c11 -O2 -Wall -Wextra -DMODELLOAD_CUDA -D_GNU_SOURCE -isystem "$CUDA_HOME/include" -I. tests/gpu/test_cuda.c \
     -o "$B/test_cuda" -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lcudart -pthread; then
  timeout 240 "$B/test_cuda" > "$B/test_cuda.out" 2>&1 || rc=1
  sed -n '/^B8/,$p' "$B/test_cuda.out" > "$B/b8.txt"
  grep -v -e '^B8' -e '^  staged' -e '^  streamed' "$B/test_cuda.out"
else rc=1; echo "FAIL building tests/gpu/test_cuda.c"; fi
echo "== the demo on the GPU"
if gcc -std=c11 -O2 -Wall -Wextra -DMODELLOAD_CUDA -isystem "$CUDA_HOME/include" -I. examples/tools/demo.c -o "$B/demo" \
     -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lcudart -pthread -lm; then
  timeout 120 "$B/demo" --cuda > "$B/demo.out" 2>&1 || rc=1
  tail -n 2 "$B/demo.out"
else rc=1; echo "FAIL building the demo"; fi
echo
cat "$B/b8.txt" 2>/dev/null
[ $rc -eq 0 ] && echo "tests/gpu/run.sh: all passed" || echo "tests/gpu/run.sh: FAILED"
exit $rc
