#!/usr/bin/env bash
# ptx.sh OUT.ptx - the PTX of tests/gpu/cast_kernel.cu for the CUDA back end,
# generated for compute_75 and labelled `.version 6.0` / `.target sm_70`
# (the toolkit's own label, .version 9.0 from CUDA 13, would need a CUDA 13
# driver to JIT; the kernel uses integer instructions that PTX 6.0 has),
# then checked: no floating-point instruction, and ptxas accepts it for
# sm_75 and sm_90. Needs nvcc and ptxas (CUDA_HOME/bin or PATH).
# Exit status: 0 when generated and accepted, 1 on a failure, 2 without a toolkit.
set -u
out=${1:?usage: ptx.sh OUT.ptx}
cd "$(dirname "$0")/../.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
PATH=$CUDA_HOME/bin:$PATH
command -v nvcc > /dev/null 2>&1 && command -v ptxas > /dev/null 2>&1 || { echo "ptx.sh: no nvcc/ptxas (CUDA_HOME=$CUDA_HOME)" >&2; exit 2; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
nvcc -ptx -arch=compute_75 tests/gpu/cast_kernel.cu -o "$tmp/k.ptx" || { echo "ptx.sh: nvcc failed" >&2; exit 1; }
grep -q '^\.version ' "$tmp/k.ptx" && grep -q '^\.target ' "$tmp/k.ptx" || { echo "ptx.sh: no .version/.target line" >&2; exit 1; }
sed -e 's/^\.version .*/.version 6.0/' -e 's/^\.target .*/.target sm_70/' "$tmp/k.ptx" > "$tmp/old.ptx"
if grep -qE '\.f(16|32|64)\b' "$tmp/old.ptx"; then echo "ptx.sh: the kernel uses floating-point instructions" >&2; exit 1; fi
grep -q '^\.visible \.entry mload_cast_kernel' "$tmp/old.ptx" || { echo "ptx.sh: no mload_cast_kernel entry" >&2; exit 1; }
for arch in sm_75 sm_90; do
  ptxas -arch="$arch" "$tmp/old.ptx" -o "$tmp/k.cubin" 2> "$tmp/ptxas.log" || { echo "ptx.sh: ptxas -arch=$arch refused it:" >&2; cat "$tmp/ptxas.log" >&2; exit 1; }
done
cp "$tmp/old.ptx" "$out"
echo "ptx.sh: $out ($(wc -c < "$out") bytes, .version 6.0 .target sm_70; ptxas accepts it for sm_75 and sm_90)"
