#!/usr/bin/env bash
# embed_ptx.sh [--check] - puts the PTX of tests/gpu/cast_kernel.cu (made by
# tests/gpu/ptx.sh) into modelload.h, between the lines
#   /* >>ptx (generated ...) */  and  /* <<ptx */
# as an array of one string per PTX line (no literal longer than C99's 4095
# bytes). --check: compare instead of writing (exit 1 when they differ).
# Exit 2 without a CUDA toolkit.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
bash tests/gpu/ptx.sh "$tmp/k.ptx" > "$tmp/log" 2>&1; rc=$?
if [ $rc -ne 0 ]; then cat "$tmp/log" >&2; exit $rc; fi
{
  echo 'static const char *const mload__cast_ptx[] = {'
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n",/' "$tmp/k.ptx"
  echo '};'
} > "$tmp/block"
awk -v blockfile="$tmp/block" '
  /^\/\* >>ptx / { print; while ((getline line < blockfile) > 0) print line; skip = 1; next }
  /^\/\* <<ptx \*\/$/ { skip = 0 }
  !skip { print }' modelload.h > "$tmp/modelload.h"
grep -q '^/\* >>ptx ' modelload.h || { echo "embed_ptx.sh: no >>ptx marker in modelload.h" >&2; exit 1; }
if [ "${1:-}" = "--check" ]; then
  if cmp -s "$tmp/modelload.h" modelload.h; then echo "embed_ptx.sh: the PTX in modelload.h is current"; exit 0; fi
  echo "embed_ptx.sh: the PTX in modelload.h differs from tests/gpu/cast_kernel.cu's (run: make ptx-embed)" >&2; exit 1
fi
cp "$tmp/modelload.h" modelload.h
echo "embed_ptx.sh: modelload.h updated ($(wc -l < "$tmp/k.ptx") PTX lines)"
