#!/usr/bin/env python3
"""Writes the PyTorch checkpoint fixtures of tests/test_torch.c with real
torch.save, and beside each a reference: NAME.ref.safetensors holds every
tensor the checkpoint should list (names as modelload.h gives them) with
torch's own bytes of its values, contiguous. The tests compare the two
without torch. Run once with torch installed (any recent version):

    python3 tests/torch/make_fixtures.py tests/torch

The files are committed; nothing in `make test` needs torch.
"""
import collections, io, json, os, pickle, struct, sys, zipfile
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
NAMES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2", torch.int64: "I64", torch.int32: "I32",
         torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def write_ref(path, tensors):
    """A safetensors file, written by hand: torch's bytes of each value."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def save(name, obj, ref, **kw):
    torch.save(obj, os.path.join(OUT, name), **kw)
    if ref is not None:
        write_ref(os.path.join(OUT, name + ".ref.safetensors"), ref)


def main():
    torch.manual_seed(1234)
    g = torch.Generator().manual_seed(5)
    # every dtype the reader lists, a scalar and an empty tensor
    d = {"f64": torch.randn(3, 2, dtype=torch.float64, generator=g), "f32": torch.randn(2, 3, 4, generator=g),
         "f16": torch.randn(5, generator=g).half(), "bf16": torch.randn(2, 3, generator=g).bfloat16(),
         "f8e4m3": (torch.randn(7, generator=g) * 50).to(torch.float8_e4m3fn),
         "f8e5m2": (torch.randn(7, generator=g) * 50).to(torch.float8_e5m2),
         "i64": torch.tensor([-(2 ** 40), 0, 2 ** 50 + 3]), "i32": torch.tensor([-7, 1 << 30], dtype=torch.int32),
         "i16": torch.tensor([-300, 300], dtype=torch.int16), "i8": torch.tensor([-128, 127, 0], dtype=torch.int8),
         "u8": torch.tensor([0, 200, 255], dtype=torch.uint8), "bool": torch.tensor([True, False, True]),
         "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3)}
    save("dtypes.pt", d, d)
    # tied weights, views sharing one storage, non-contiguous views
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tied = torch.randn(3, 3, generator=g)
    v = {"emb.weight": tied, "head.weight": tied, "base": base, "rows": base[1:3], "transposed": base.t(),
         "every_other": base[:, ::2], "column": base[:, 4], "expanded": torch.arange(3.0).expand(2, 3),
         "bf16_t": torch.randn(3, 5, generator=g).bfloat16().t()}
    save("views.pt", v, v)
    # a real module's state dict (OrderedDict with _metadata, a BUILD), nested dicts, non-tensor leaves
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Conv2d(2, 2, 3))
    sd = model.state_dict()
    save("module.bin", sd, dict(sd))
    nested = {"encoder": {"layer": {"0": {"weight": torch.ones(2, 2)}, "1": {"weight": torch.full((2,), 3.0)}}},
              "step": 7, "name": "x", "lr": 0.5, "list": [torch.zeros(1)], 3: torch.zeros(1), "none": None}
    save("nested.pt", nested, {"encoder.layer.0.weight": nested["encoder"]["layer"]["0"]["weight"],
                               "encoder.layer.1.weight": nested["encoder"]["layer"]["1"]["weight"]})
    # wrappers: Lightning-style checkpoint, and {"module": ...} (DeepSpeed)
    save("lightning.ckpt", {"epoch": 3, "global_step": 10, "pytorch-lightning_version": "2.0.0", "state_dict": sd},
         dict(sd))
    save("deepspeed.pth", {"module": {"w": torch.ones(2)}}, {"w": torch.ones(2)})
    # parameters (_rebuild_parameter), protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE...)
    p = {"p": torch.nn.Parameter(torch.randn(2, 2, generator=g)), "q": torch.randn(3, generator=g)}
    save("parameter.pt", p, p)
    save("proto4.pt", d, d, pickle_protocol=4)
    # a sharded checkpoint: two shards and pytorch_model.bin.index.json
    sh = os.path.join(OUT, "sharded")
    os.makedirs(sh, exist_ok=True)
    s1 = {"a.weight": torch.randn(4, 4, generator=g), "a.bias": torch.randn(4, generator=g)}
    s2 = {"b.weight": torch.randn(2, 4, generator=g).half()}
    torch.save(s1, os.path.join(sh, "pytorch_model-00001-of-00002.bin"))
    torch.save(s2, os.path.join(sh, "pytorch_model-00002-of-00002.bin"))
    wm = {k: "pytorch_model-00001-of-00002.bin" for k in s1}
    wm.update({k: "pytorch_model-00002-of-00002.bin" for k in s2})
    with open(os.path.join(sh, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 4 * 20 + 2 * 8}, "weight_map": wm}, f, indent=2)
    write_ref(os.path.join(OUT, "sharded.ref.safetensors"), {**s1, **s2})
    # ZIP64: dtypes.pt repacked with every record in its 64-bit form (zipfile's
    # limits lowered), the same prefix and bytes
    src = zipfile.ZipFile(os.path.join(OUT, "dtypes.pt"))
    old = (zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT)
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 1, 1
    try:
        with zipfile.ZipFile(os.path.join(OUT, "zip64.pt"), "w", zipfile.ZIP_STORED, allowZip64=True) as zout:
            for info in src.infolist():
                with zout.open(info.filename, "w", force_zip64=True) as w:
                    w.write(src.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = old
    write_ref(os.path.join(OUT, "zip64.pt.ref.safetensors"), d)
    # the legacy (pre-1.6) format: refused by name
    save("legacy.pt", {"w": torch.ones(2)}, None, _use_new_zipfile_serialization=False)
    # a checkpoint whose pickle would run code under torch.load: data.pkl replaced
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf)
    zin = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    for name, payload, method in (("evil.pt", {"w": Evil()}, zipfile.ZIP_STORED),
                                  ("deflated.pt", None, zipfile.ZIP_DEFLATED)):
        with zipfile.ZipFile(os.path.join(OUT, name), "w", method) as zout:
            for info in zin.infolist():
                data = zin.read(info.filename)
                if payload is not None and info.filename.endswith("/data.pkl"):
                    data = pickle.dumps(payload, protocol=2)
                zout.writestr(info.filename.replace("archive/", "evil/"), data)
    # seeds of tests/fuzz_torch.c: pickles whose storages are "0".."3" of 64 bytes each
    corpus = os.path.join(OUT, "..", "fuzz_torch_corpus")
    os.makedirs(corpus, exist_ok=True)
    x = torch.randn(16, generator=g)
    seeds = {"plain": {"a": x, "b": torch.arange(32, dtype=torch.int16)},
             "views": {"t": x.reshape(4, 4).t(), "s": x[2:9:3], "e": torch.arange(8, dtype=torch.float64).expand(3, 8)},
             "nested": {"state_dict": {"m": {"w": x.reshape(2, 8)}}, "epoch": 1},
             "dtypes": {"h": torch.randn(32, generator=g).half(), "f8": torch.zeros(64, dtype=torch.float8_e5m2),
                        "bool": torch.zeros(64, dtype=torch.bool), "bf": torch.ones(32, dtype=torch.bfloat16)},
             "param": {"p": torch.nn.Parameter(x)}}
    for name, obj in seeds.items():
        for proto in (2, 4):
            buf = io.BytesIO()
            torch.save(obj, buf, pickle_protocol=proto)
            z = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
            pkl = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
            with open(os.path.join(corpus, "%s-p%d.pkl" % (name, proto)), "wb") as f:
                f.write(pkl)
    print("torch", torch.__version__, "->", OUT)


if __name__ == "__main__":
    main()
