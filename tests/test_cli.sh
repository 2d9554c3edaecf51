#!/usr/bin/env bash
# Tests of the mload-inspect command-line tool. Usage: tests/test_cli.sh BUILD_DIR
# Expects BUILD_DIR/mload-inspect and BUILD_DIR/gen_checkpoint. Prints
# "N passed, N failed, N skipped" last.
set -u
B=${1:-build}
INSPECT=$B/mload-inspect
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0 skip=0
ok()   { pass=$((pass+1)); }
bad()  { fail=$((fail+1)); echo "  FAIL cli: $*" >&2; }
skipt(){ skip=$((skip+1)); echo "  SKIP cli: $*" >&2; }

# mkst OUT HEADER NDATA: a safetensors file with an 8-byte length prefix
mkst() {
  local out=$1 hdr=$2 n=$3 len i oct=""
  len=$(printf '%s' "$hdr" | wc -c)
  for i in 0 1 2 3 4 5 6 7; do oct="$oct\\$(printf '%03o' $(( (len >> (8*i)) & 255 )))"; done
  { printf "$oct"; printf '%s' "$hdr"; head -c "$n" /dev/zero; } > "$out"
}

# expect_exit CODE CMD... : runs CMD, compares the status
expect_exit() {
  local want=$1; shift
  "$@" > "$T/out" 2> "$T/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$* exited $rc, expected $want"; fi
}

# 1. the listing format
mkst "$T/a.st" '{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"s":{"dtype":"I64","shape":[],"data_offsets":[24,32]},"e":{"dtype":"BF16","shape":[0,4],"data_offsets":[32,32]}}' 32
expect_exit 0 "$INSPECT" "$T/a.st"
printf 'w\tF32\t[2,3]\t24\ns\tI64\t[]\t8\ne\tBF16\t[0,4]\t0\n' > "$T/want"
if cmp -s "$T/out" "$T/want"; then ok; else bad "listing differs: $(cat "$T/out")"; fi

# 2. --metadata, --verify
mkst "$T/m.st" '{"__metadata__":{"format":"pt","k":"v"},"x":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}' 4
expect_exit 0 "$INSPECT" --metadata --verify "$T/m.st"
printf '__metadata__\tformat\tpt\n__metadata__\tk\tv\nx\tU8\t[4]\t4\n' > "$T/want"
if cmp -s "$T/out" "$T/want"; then ok; else bad "metadata listing differs: $(cat "$T/out")"; fi
if grep -q 'verified 1 tensors, 4 bytes' "$T/err"; then ok; else bad "verify summary: $(cat "$T/err")"; fi

# 3. --json is valid JSON with the same content
expect_exit 0 "$INSPECT" --json "$T/m.st"
if command -v python3 >/dev/null 2>&1; then
  if python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
f=d["files"][0]
assert f["metadata"]=={"format":"pt","k":"v"}, d
t=d["tensors"][0]
assert t=={"name":"x","dtype":"U8","shape":[4],"file":0,"data_offsets":[0,4],"nbytes":4}, t
assert f["header_size"]+8==f["data_offset"]
' "$T/out"; then ok; else bad "json content"; fi
else skipt "python3 absent: JSON not validated"; fi

# 4. names with control characters stay on one line
mkst "$T/n.st" '{"a\tb\u0001\\":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' 1
expect_exit 0 "$INSPECT" "$T/n.st"
printf 'a\\tb\\x01\\\\\tU8\t[1]\t1\n' > "$T/want"
if cmp -s "$T/out" "$T/want"; then ok; else bad "escaped name: $(cat -A "$T/out")"; fi

# 5. invalid input: exit 1, one line naming the class and the offset or tensor
mkst "$T/off.st" '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[6,10]}}' 10
expect_exit 1 "$INSPECT" "$T/off.st"
if [ "$(wc -l < "$T/err")" = 1 ] && grep -q 'InvalidOffset' "$T/err" && grep -q 'tensor "b"' "$T/err"; then ok; else bad "InvalidOffset report: $(cat "$T/err")"; fi
[ -s "$T/out" ] && bad "stdout not empty on error" || ok
printf 'abc' > "$T/small.st"
expect_exit 1 "$INSPECT" "$T/small.st"
if grep -q 'HeaderTooSmall at byte 0' "$T/err"; then ok; else bad "HeaderTooSmall report: $(cat "$T/err")"; fi
mkst "$T/json.st" '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}' 4
expect_exit 1 "$INSPECT" "$T/json.st"
if grep -q 'InvalidHeaderDeserialization at byte' "$T/err"; then ok; else bad "JSON report: $(cat "$T/err")"; fi
mkst "$T/dup.st" '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' 8
expect_exit 1 "$INSPECT" "$T/dup.st"
if grep -q 'DuplicateKey' "$T/err" && grep -q 'tensor "a"' "$T/err"; then ok; else bad "DuplicateKey report: $(cat "$T/err")"; fi

# a listing that cannot be written (full disk) fails with a message
if [ -w /dev/full ]; then
  "$INSPECT" "$T/a.st" > /dev/full 2> "$T/err"; rc=$?
  if [ "$rc" = 1 ] && grep -q 'writing the listing failed' "$T/err"; then ok; else bad "full stdout: exit $rc, $(cat "$T/err")"; fi
else
  echo "SKIP cli: /dev/full absent: full-stdout report not checked" >&2; skip=$((skip+1))
fi

# 6. usage and missing files: exit 2
expect_exit 2 "$INSPECT"
expect_exit 2 "$INSPECT" --bogus "$T/a.st"
expect_exit 2 "$INSPECT" "$T/does-not-exist.st"
if grep -q 'CannotOpen' "$T/err"; then ok; else bad "missing file report: $(cat "$T/err")"; fi
expect_exit 2 "$INSPECT" "$T"
expect_exit 2 "$INSPECT" "$T/a.st" "$T/m.st"

# 7. a generated checkpoint lists and verifies
"$B/gen_checkpoint" "$T/g.st" 3 16 > /dev/null
expect_exit 0 "$INSPECT" --verify "$T/g.st"
if [ "$(wc -l < "$T/out")" = 14 ]; then ok; else bad "generated checkpoint: $(wc -l < "$T/out") lines"; fi

# 8. the official fixtures list and verify (skipped when absent)
FIX=""
for d in ../shared/fixtures/official ../../shared/fixtures/official; do [ -d "$d" ] && { FIX=$d; break; }; done
if [ -n "$FIX" ]; then
  for f in "$FIX"/non_sharded/*.safetensors "$FIX"/sharded/*.safetensors; do
    expect_exit 0 "$INSPECT" --verify --metadata "$f"
  done
  "$INSPECT" "$FIX/non_sharded/model.numpy.safetensors" > "$T/out"
  if grep -qP '^float32_357\tF32\t\[3,5,7\]\t420$' "$T/out"; then ok; else bad "fixture listing"; fi
else
  skipt "official fixtures absent"
fi

# 9. folders, index.json, --dump, --as
if [ -n "$FIX" ]; then
  expect_exit 0 "$INSPECT" "$FIX/sharded/model.safetensors.index.json"
  if [ "$(wc -l < "$T/out")" = 36 ] && [ "$(cut -f1 "$T/out" | LC_ALL=C sort -c && echo sorted)" = sorted ]; then ok; else bad "index listing"; fi
  expect_exit 0 "$INSPECT" "$FIX/sharded"
  if [ "$(wc -l < "$T/out")" = 36 ]; then ok; else bad "folder listing"; fi
  "$INSPECT" --dump float32_35 "$FIX/non_sharded/model.numpy.safetensors" > "$T/d.bin"
  if command -v python3 > /dev/null 2>&1; then
    if python3 -c 'import struct,sys; v=struct.unpack("<15f", open(sys.argv[1],"rb").read()); assert v==tuple(float(i) for i in range(15)), v' "$T/d.bin"; then ok; else bad "--dump bytes"; fi
    "$INSPECT" --dump int16_3 --as F64 "$FIX/non_sharded/model.numpy.safetensors" > "$T/d.bin"
    if python3 -c 'import struct,sys; assert struct.unpack("<3d", open(sys.argv[1],"rb").read())==(0.0,1.0,2.0)' "$T/d.bin"; then ok; else bad "--dump --as F64"; fi
  else skipt "python3 absent: dump bytes not checked"; fi
  expect_exit 1 "$INSPECT" --dump no.such.tensor "$FIX/non_sharded/model.numpy.safetensors"
  if grep -q 'NotFound' "$T/err"; then ok; else bad "--dump unknown: $(cat "$T/err")"; fi
  expect_exit 2 "$INSPECT" --dump float32_3 --as F128 "$FIX/non_sharded/model.numpy.safetensors"
  expect_exit 1 "$INSPECT" --dump float32_3 --as C64 "$FIX/non_sharded/model.numpy.safetensors"
  if grep -q 'Unsupported' "$T/err"; then ok; else bad "--as C64: $(cat "$T/err")"; fi
else
  skipt "official fixtures absent: folder/index/dump not checked"
fi

# 10. mload-convert: F32 -> BF16 into shards, re-read by the map (and by the official library when present)
"$B/gen_checkpoint" "$T/src.st" 2 16 > /dev/null
if [ -x "$B/mload-convert" ]; then
  mkdir -p "$T/cv"
  expect_exit 0 "$B/mload-convert" "$T/src.st" -o "$T/cv/m.safetensors" --dtype F8_E4M3 --shard-size 4000
  expect_exit 0 "$INSPECT" --verify "$T/cv/m.safetensors.index.json"
  if [ "$(cut -f2 "$T/out" | sort -u | tr '\n' ' ')" = "F8_E4M3 " ] && [ "$(wc -l < "$T/out")" = 10 ]; then ok; else bad "convert dtypes: $(cut -f2 "$T/out" | sort -u | tr '\n' ' ')"; fi
  if ls "$T"/cv/m-0000*-of-0000*.safetensors > /dev/null 2>&1; then ok; else bad "convert shards"; fi
  expect_exit 2 "$B/mload-convert" "$T/src.st"
  expect_exit 2 "$B/mload-convert" "$T/src.st" -o "$T/x.safetensors" --dtype I32
  if python3 -c 'import safetensors.numpy' > /dev/null 2>&1; then
    if python3 -c 'import sys,glob; from safetensors import deserialize
n=0
for f in sorted(glob.glob(sys.argv[1]+"/m-*.safetensors")):
  for name, t in deserialize(open(f,"rb").read()):
    assert t["dtype"] in ("float8_e4m3fn", "F8_E4M3"), t["dtype"]; n+=1
assert n==10, n' "$T/cv"; then ok; else bad "official library reads the converted shards"; fi
  else skipt "python safetensors absent: converted shards not cross-read"; fi
else bad "mload-convert not built"; fi

# 11. --convert RULES.txt: the converted view lists and dumps
"$B/gen_checkpoint" "$T/cvt.st" 2 4 > /dev/null
cat > "$T/rules.txt" <<'RULES'
# the original's kind of converter
strip-prefix model.
keep layers.
chunk layers.{n}.self_attn.qkv_proj.weight 3 1 layers.{n}.self_attn.k_proj.weight
transpose layers.{n}.mlp.up_proj.weight layers.{n}.mlp.up_t
cast layers.{n}.input_layernorm.weight BF16
RULES
expect_exit 0 "$INSPECT" --convert "$T/rules.txt" "$T/cvt.st"
if grep -qP '^layers.1.self_attn.k_proj.weight\tBF16\t\[4,4\]\t32$' "$T/out" && grep -qP '^layers.0.mlp.up_t\tBF16\t\[4,8\]\t64$' "$T/out" &&
   grep -qP '^layers.0.input_layernorm.weight\tBF16\t\[4\]\t8$' "$T/out" && ! grep -q qkv_proj "$T/out" && [ "$(wc -l < "$T/out")" = 8 ]; then ok
else bad "converted listing: $(cat "$T/out")"; fi
"$INSPECT" --convert "$T/rules.txt" --dump layers.1.self_attn.k_proj.weight "$T/cvt.st" > "$T/k.bin"
"$INSPECT" --dump model.layers.1.self_attn.qkv_proj.weight "$T/cvt.st" > "$T/qkv.bin"
if cmp -s "$T/k.bin" <(dd if="$T/qkv.bin" bs=32 skip=1 count=1 2> /dev/null); then ok; else bad "converted dump bytes"; fi
printf 'keep layers.\nfrobnicate x\n' > "$T/bad.txt"
expect_exit 1 "$INSPECT" --convert "$T/bad.txt" "$T/cvt.st"
if grep -q 'InvalidConverter' "$T/err" && grep -q 'line 2' "$T/err"; then ok; else bad "bad rules report: $(cat "$T/err")"; fi
printf 'concat x model.norm.weight model.embed_tokens.weight\n' > "$T/bad2.txt"
expect_exit 1 "$INSPECT" --convert "$T/bad2.txt" "$T/cvt.st"
if grep -q 'tensor "x"' "$T/err"; then ok; else bad "bad recipe report: $(cat "$T/err")"; fi
# rules from a pipe (no seekable size) read the same
expect_exit 0 "$INSPECT" --convert /dev/stdin "$T/cvt.st" < <(cat "$T/rules.txt")
if [ "$(wc -l < "$T/out")" = 8 ] && grep -q '^layers.0.mlp.up_t' "$T/out"; then ok; else bad "rules from a pipe: $(cat "$T/out") $(cat "$T/err")"; fi
# an error report naming a tensor with control characters stays one line
mkst "$T/ctl.st" '{"a\nb\u0001":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}' 4
expect_exit 1 "$INSPECT" "$T/ctl.st"
if [ "$(wc -l < "$T/err")" = 1 ] && grep -q 'tensor "a\\x0ab\\x01"' "$T/err"; then ok; else bad "escaped report: $(cat "$T/err")"; fi
# a dump whose output cannot be written fails
if [ -w /dev/full ]; then
  "$INSPECT" --dump model.norm.weight "$T/cvt.st" > /dev/full 2> "$T/err"; rc=$?
  if [ "$rc" = 1 ] && grep -q 'writing to stdout failed' "$T/err"; then ok; else bad "dump to /dev/full exited $rc: $(cat "$T/err")"; fi
else skipt "/dev/full absent: write failure not checked"; fi

# 12. the demo: a model 4x the budget streamed through the offload manager
if [ -x "$B/mload-demo" ]; then
  expect_exit 0 "$B/mload-demo"
  line=$(tail -n 1 "$T/out")
  peak=$(echo "$line" | sed -nE 's/.*peak_device_bytes=([0-9]+).*/\1/p'); budget=$(echo "$line" | sed -nE 's/.*budget_bytes=([0-9]+).*/\1/p')
  hits=$(echo "$line" | sed -nE 's/.*prefetch_hits=([0-9]+).*/\1/p')
  if echo "$line" | grep -q '^demo: OK ' && [ -n "$peak" ] && [ "$peak" -le "$budget" ] && [ "$hits" -gt 0 ]; then ok; else bad "demo line: $line"; fi
  expect_exit 0 "$B/mload-demo" --onload BF16
  if tail -n 1 "$T/out" | grep -q 'max_abs_diff=0.000000$'; then ok; else bad "demo with the same dtypes: $(tail -n 1 "$T/out")"; fi
  expect_exit 2 "$B/mload-demo" --onload I8
else bad "mload-demo not built"; fi

# 14. PyTorch checkpoints: listed, refused by name, converted to safetensors
expect_exit 0 "$INSPECT" tests/torch/nested.pt
printf 'encoder.layer.0.weight\tF32\t[2,2]\t16\nencoder.layer.1.weight\tF32\t[2]\t8\n' > "$T/want"
if cmp -s "$T/out" "$T/want"; then ok; else bad "PyTorch listing differs: $(cat "$T/out")"; fi
expect_exit 1 "$INSPECT" tests/torch/evil.pt
if grep -q "PickleRefused.*'posix.system'" "$T/err"; then ok; else bad "evil.pt: $(cat "$T/err")"; fi
if [ -x "$B/mload-convert" ]; then
  expect_exit 0 "$B/mload-convert" tests/torch/views.pt -o "$T/views.safetensors"
  expect_exit 0 "$INSPECT" --verify "$T/views.safetensors"
  sort "$T/out" > "$T/got"
  "$INSPECT" tests/torch/views.pt.ref.safetensors | sort > "$T/want"
  if cmp -s "$T/got" "$T/want"; then ok; else bad "converted .pt lists differently: $(cat "$T/got")"; fi
  for n in transposed bf16_t every_other; do
    "$INSPECT" --dump "$n" "$T/views.safetensors" > "$T/a.bin" && "$INSPECT" --dump "$n" tests/torch/views.pt.ref.safetensors > "$T/b.bin"
    if cmp -s "$T/a.bin" "$T/b.bin"; then ok; else bad "converted view $n differs from torch's bytes"; fi
  done
else bad "mload-convert not built"; fi

# 15. LoRA: mload-convert --lora writes what mload-inspect --lora --dump reads; an adapter matching nothing is exit 1
if [ -x "$B/mload-convert" ]; then
  expect_exit 0 "$B/mload-convert" tests/lora/base.safetensors --lora tests/lora/peft_r4.safetensors:0.5 \
    --lora tests/lora/kohya_r4.safetensors:1.5 -o "$T/merged.safetensors"
  for n in lin.weight conv.weight lin_bf16.weight; do
    "$INSPECT" --lora tests/lora/peft_r4.safetensors:0.5 --lora tests/lora/kohya_r4.safetensors:1.5 --dump "$n" \
      tests/lora/base.safetensors > "$T/a.bin" && "$INSPECT" --dump "$n" "$T/merged.safetensors" > "$T/b.bin" &&
      "$INSPECT" --dump "$n" tests/lora/base.safetensors > "$T/c.bin"
    if cmp -s "$T/a.bin" "$T/b.bin" && ! cmp -s "$T/a.bin" "$T/c.bin"; then ok; else bad "LoRA merge of $n: converted and inspected differ"; fi
  done
  expect_exit 1 "$INSPECT" --lora tests/lora/nomatch.safetensors tests/lora/base.safetensors
  if grep -q "NotFound.*nothing.lora_A.weight" "$T/err"; then ok; else bad "LoRA mismatch: $(cat "$T/err")"; fi
  expect_exit 0 "$B/mload-convert" tests/lora/base.safetensors --lora tests/lora/peft_r4.safetensors --lora-alpha 8 -o "$T/x.safetensors"
  expect_exit 1 "$INSPECT" --lora tests/lora/peft_r1.safetensors --dump lin.weight tests/lora/base.safetensors # its names need rules
else bad "mload-convert not built"; fi

# 13. the tool builds alone with one cc command
if cc -std=c99 -O2 -I. examples/tools/inspect.c -o "$T/inspect-alone" 2> "$T/err" && "$T/inspect-alone" "$T/a.st" > /dev/null; then ok; else bad "standalone build: $(cat "$T/err")"; fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
