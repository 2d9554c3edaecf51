#!/usr/bin/env python3
"""Writes the LoRA fixtures of tests/test_lora.c: a small base checkpoint,
adapters in the published layouts (PEFT/diffusers lora_A/lora_B, kohya
lora_down/lora_up/alpha with underscores for dots, old diffusers
lora.down/lora.up), and for each case the merged weights numpy computes:
W + sum_i scale_i * alpha_i / rank_i * (B_i @ A_i), accumulated in float32,
plus a bound (|W| + sum |s_i| |B_i| @ |A_i|) the tests scale into their
tolerance, and BF16 results rounded to nearest even from the float32 sum.
Needs numpy only:

    python3 tests/lora/make_fixtures.py tests/lora
"""
import json, os, struct, sys
import numpy as np

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even (no NaN here)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def bf16_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write(path, tensors):
    """tensors: name -> (dtype name, numpy array of the stored values)"""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dt, a = tensors[name]
        raw = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(OUT, path), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def f32(a):
    return ("F32", np.asarray(a, dtype=np.float32))


def main():
    base = {"lin.weight": rng.standard_normal((48, 40), dtype=np.float32),
            "conv.weight": rng.standard_normal((16, 8, 3, 3), dtype=np.float32),
            "conv1.weight": rng.standard_normal((16, 8, 1, 1), dtype=np.float32),
            "other.bias": rng.standard_normal(48, dtype=np.float32)}
    lin_bf16 = bf16_bits(rng.standard_normal((48, 40), dtype=np.float32))
    store = {k: f32(v) for k, v in base.items()}
    store["lin_bf16.weight"] = ("BF16", lin_bf16)
    write("base.safetensors", store)
    values = dict(base)
    values["lin_bf16.weight"] = bf16_to_f32(lin_bf16)

    def pair(rank, shape):
        out, rest = shape[0], shape[1:]
        a = (rng.standard_normal((rank,) + rest, dtype=np.float32) * 0.1).astype(np.float32)
        b = (rng.standard_normal((out, rank) + (1,) * (len(shape) - 2), dtype=np.float32) * 0.1).astype(np.float32)
        return a, b

    adapters = {}  # name -> {"file": {...}, "terms": [(base name, A, B, alpha or None)]}

    def adapter(name, layout, entries):
        """entries: (base name, module name, rank, alpha stored or None)"""
        tensors, terms = {}, []
        for bname, module, rank, alpha in entries:
            a, b = pair(rank, values[bname].shape)
            if layout == "peft":
                tensors[module + ".lora_A.weight"] = f32(a)
                tensors[module + ".lora_B.weight"] = f32(b)
            elif layout == "kohya":
                tensors[module + ".lora_down.weight"] = f32(a)
                tensors[module + ".lora_up.weight"] = f32(b)
                if alpha is not None:
                    tensors[module + ".alpha"] = f32(np.float32(alpha))
            else:
                tensors[module + ".lora.down.weight"] = f32(a)
                tensors[module + ".lora.up.weight"] = f32(b)
            terms.append((bname, a, b, alpha))
        write(name + ".safetensors", tensors)
        adapters[name] = terms

    adapter("peft_r1", "peft", [("lin.weight", "base_model.model.lin", 1, None)])
    adapter("peft_r4", "peft", [("lin.weight", "lin", 4, None), ("lin_bf16.weight", "lin_bf16", 4, None)])
    adapter("peft_r64", "peft", [("lin.weight", "lin", 64, None)])
    adapter("kohya_r4", "kohya", [("lin.weight", "lora_unet_lin", 4, 2.0), ("conv.weight", "lora_unet_conv", 4, 3.0),
                                  ("conv1.weight", "lora_unet_conv1", 4, None)])
    adapter("kohya_r64", "kohya", [("lin.weight", "lora_te_lin", 64, None), ("lin_bf16.weight", "lora_te_lin_bf16", 64, 16.0)])
    adapter("diffusers_r4", "diffusers", [("lin.weight", "lin", 4, None)])

    # cases: name -> [(adapter, user scale, caller alpha (0 = rank))]
    cases = {"peft_r1": [("peft_r1", 1.0, 0.0)], "peft_r1_alpha": [("peft_r1", 0.5, 8.0)],
             "peft_r4": [("peft_r4", 1.0, 0.0)], "peft_r64": [("peft_r64", 2.0, 16.0)],
             "kohya_r4": [("kohya_r4", 1.0, 0.0)], "kohya_r64": [("kohya_r64", 0.75, 0.0)],
             "diffusers_r4": [("diffusers_r4", 1.0, 0.0)],
             "two": [("peft_r4", 0.5, 0.0), ("kohya_r4", 1.5, 0.0)]}
    for case, uses in cases.items():
        merged = {k: v.astype(np.float32).copy() for k, v in values.items()}
        bound = {k: np.abs(v).astype(np.float32) for k, v in values.items()}
        for aname, user, caller_alpha in uses:
            for bname, a, b, alpha in adapters[aname]:
                rank = a.shape[0]
                al = alpha if alpha is not None else (caller_alpha if caller_alpha else rank)
                s = np.float32(user * al / rank)
                a2 = a.reshape(rank, -1)
                b2 = b.reshape(b.shape[0], rank)
                d = (b2 @ a2).astype(np.float32).reshape(merged[bname].shape)
                merged[bname] = (merged[bname] + s * d).astype(np.float32)
                bound[bname] = bound[bname] + abs(s) * (np.abs(b2) @ np.abs(a2)).reshape(merged[bname].shape)
        ref, touched = {}, {t[0] for aname, _, _ in uses for t in adapters[aname]}
        for k in sorted(touched):  # the tensors the case changes; the others read as the base
            ref[k] = f32(merged[k])
            ref[k + ".bound"] = f32(bound[k])
            ref[k + ".bf16"] = ("BF16", bf16_bits(merged[k]))
        write("ref_" + case + ".safetensors", ref)
    # errors: shapes that do not fit, ranks that differ, names that match nothing
    a, b = pair(4, (48, 40))
    write("bad_shape.safetensors", {"lin.lora_A.weight": f32(np.zeros((4, 41), np.float32)), "lin.lora_B.weight": f32(b)})
    write("bad_rank.safetensors", {"lin.lora_A.weight": f32(a), "lin.lora_B.weight": f32(np.zeros((48, 5), np.float32))})
    write("nomatch.safetensors", {"lin.lora_A.weight": f32(a), "lin.lora_B.weight": f32(b),
                                  "nothing.lora_A.weight": f32(a), "nothing.lora_B.weight": f32(b)})
    print("numpy", np.__version__, "->", OUT)


if __name__ == "__main__":
    main()
