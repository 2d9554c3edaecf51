/* PyTorch checkpoints: the fixtures torch.save wrote (tests/torch, made by
   tests/torch/make_fixtures.py) against their references, strided views,
   sharded sets, the refusals, and hostile archives built here. */
#include "harness.h"
#include <stdlib.h>
#include <unistd.h>
#include "zip_write.h"

#if !defined(MODELLOAD_NO_PICKLE)

#define TORCH_DIR "tests/torch/"

static mload_map *open_map(const char *path, mload_error *e) {
    mload_map_desc d;
    mload_map *m = NULL;
    memset(&d, 0, sizeof d);
    d.paths = &path;
    d.path_count = 1;
    if (mload_map_open(&d, &m, e) != MLOAD_OK) {
        fprintf(stderr, "  cannot open %s: %s\n", path, e->message);
        return NULL;
    }
    return m;
}

static void *read_all(const mload_map *m, const mload_tensor *t, mload_dtype as, uint64_t *size) {
    mload_error e;
    void *p = NULL;
    if (mload_map_read_alloc(m, t, as, &p, size, &e) != MLOAD_OK) {
        fprintf(stderr, "  read %s: %s\n", t->name, e.message);
        return NULL;
    }
    return p;
}

/* every tensor of the reference is in the checkpoint with torch's bytes,
   and nothing else is; casts and ranges agree too */
static void check_against_ref(const char *ckpt, const char *ref) {
    mload_error e;
    mload_map *m = open_map(ckpt, &e), *r = open_map(ref, &e);
    uint64_t i;
    CHECK(m && r);
    if (!m || !r) goto done;
    CHECK_EQ_U64(mload_map_count(m), mload_map_count(r));
    for (i = 0; i < mload_map_count(r); ++i) {
        const mload_tensor *want = mload_map_tensor(r, i), *got = mload_map_find_n(m, want->name, want->name_len);
        uint64_t na = 0, nb = 0;
        unsigned char *a, *b;
        uint32_t k;
        CHECK(got != NULL);
        if (!got) { fprintf(stderr, "  missing %s in %s\n", want->name, ckpt); continue; }
        CHECK_EQ_U64(got->dtype, want->dtype);
        CHECK_EQ_U64(got->rank, want->rank);
        for (k = 0; k < got->rank && k < want->rank; ++k) CHECK_EQ_U64(got->shape[k], want->shape[k]);
        a = (unsigned char *)read_all(m, got, MLOAD_DTYPE_INVALID, &na);
        b = (unsigned char *)read_all(r, want, MLOAD_DTYPE_INVALID, &nb);
        CHECK(a && b && na == nb && memcmp(a, b, (size_t)na) == 0);
        mload_map_free_buffer(m, a, na);
        mload_map_free_buffer(r, b, nb);
        if (mload_dtype_kind(want->dtype) == MLOAD_KIND_FLOAT && want->numel) { /* through a cast, and a middle range */
            uint64_t first = want->numel / 3, count = want->numel - first - want->numel / 4;
            float *x = (float *)calloc((size_t)want->numel + 1, 4), *y = (float *)calloc((size_t)want->numel + 1, 4);
            CHECK_RES(mload_map_read(m, got, MLOAD_DTYPE_F32, x, want->numel * 4, &e), MLOAD_OK);
            CHECK_RES(mload_map_read(r, want, MLOAD_DTYPE_F32, y, want->numel * 4, &e), MLOAD_OK);
            CHECK(memcmp(x, y, (size_t)want->numel * 4) == 0);
            if (count) {
                memset(x, 0, (size_t)want->numel * 4);
                CHECK_RES(mload_map_read_range(m, got, first, count, MLOAD_DTYPE_F32, x, count * 4, &e), MLOAD_OK);
                CHECK(memcmp(x, y + first, (size_t)count * 4) == 0);
            }
            free(x);
            free(y);
        }
    }
done:
    mload_map_close(m);
    mload_map_close(r);
}

static void t_fixtures_match_torch(void) {
    static const char *const files[] = {"dtypes.pt", "views.pt", "module.bin", "nested.pt", "lightning.ckpt",
                                        "deepspeed.pth", "parameter.pt", "proto4.pt", "zip64.pt"};
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; ++i) {
        char a[256], b[256];
        snprintf(a, sizeof a, TORCH_DIR "%s", files[i]);
        snprintf(b, sizeof b, TORCH_DIR "%s.ref.safetensors", files[i]);
        check_against_ref(a, b);
    }
}

static void t_file_api(void) {
    mload_file_desc d;
    mload_file *f = NULL;
    mload_error e;
    const mload_tensor *t, *rows, *emb, *head;
    float buf[24];
    memset(&d, 0, sizeof d);
    d.path = TORCH_DIR "views.pt";
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_OK);
    if (!f) return;
    CHECK_EQ_U64(mload_file_format(f), MLOAD_FORMAT_PYTORCH);
    CHECK_EQ_U64(mload_file_data_offset(f), 0);
    CHECK(mload_file_header_size(f) > 0); /* the pickle's size */
    CHECK_EQ_U64(mload_file_metadata_count(f), 0);
    t = mload_file_find(f, "transposed");
    rows = mload_file_find(f, "rows");
    emb = mload_file_find(f, "emb.weight");
    head = mload_file_find(f, "head.weight");
    CHECK(t && rows && emb && head);
    if (t && rows && emb && head) {
        const uint64_t *st = mload_file_strides(f, t);
        uint64_t i, prev = 0;
        CHECK(st && st[0] == 1 && st[1] == 6);
        CHECK(mload_file_strides(f, rows) == NULL);
        CHECK_EQ_U64(emb->offset, head->offset); /* tied: one storage */
        CHECK_RES(mload_file_read(f, t, buf, sizeof buf, &e), MLOAD_OK);
        for (i = 0; i < 24; ++i) CHECK(buf[i] == (float)((i % 4) * 6 + i / 4)); /* base[j][i] = 6j + i */
        CHECK_RES(mload_file_read_bytes(f, t, 4 * 5, 4 * 3, buf, &e), MLOAD_OK); /* elements 5..7 */
        CHECK(buf[0] == 7.0f && buf[1] == 13.0f && buf[2] == 19.0f); /* row 1 of the view: base[1..3][1] */
        CHECK_RES(mload_file_read_bytes(f, t, 2, 4, buf, &e), MLOAD_ERR_INVALID_ARGUMENT); /* not whole elements */
        for (i = 0; i < mload_file_count(f); ++i) { /* file order: by offset */
            CHECK(mload_file_tensor(f, i)->offset >= prev);
            prev = mload_file_tensor(f, i)->offset;
        }
    }
    mload_file_close(f);
}

static void t_strided_in_the_map(void) {
    mload_error e;
    mload_map *m = open_map(TORCH_DIR "views.pt", &e);
    const mload_tensor *t, *rows;
    mload_view v;
    float out[24], ref[24];
    mload_load_item it[2];
    uint64_t i;
    if (!m) { CHECK(0); return; }
    t = mload_map_find(m, "transposed");
    rows = mload_map_find(m, "rows");
    CHECK(t && rows);
    if (!t || !rows) { mload_map_close(m); return; }
    CHECK(!mload_map_is_direct(m, t));
    CHECK(mload_map_is_direct(m, rows));
    CHECK_RES(mload_view_open(m, t, &v, &e), MLOAD_ERR_UNSUPPORTED);
    CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_INVALID, ref, sizeof ref, &e), MLOAD_OK);
    memset(it, 0, sizeof it);
    memset(out, 0, sizeof out);
    it[0].tensor = t; /* a bulk load, in two ranges on two threads */
    it[0].dst = out;
    it[0].dst_size = 40;
    it[0].first = 0;
    it[0].count = 10;
    it[1] = it[0];
    it[1].dst = out + 10;
    it[1].dst_size = 56;
    it[1].first = 10;
    it[1].count = 14;
    CHECK_RES(mload_map_load(m, it, 2, NULL, &e), MLOAD_OK);
    CHECK(memcmp(out, ref, sizeof ref) == 0);
    for (i = 0; i < 6; ++i) { /* rows of the view */
        float row[4];
        CHECK_RES(mload_map_read_rows(m, t, i, 1, MLOAD_DTYPE_INVALID, row, sizeof row, &e), MLOAD_OK);
        CHECK(memcmp(row, ref + 4 * i, sizeof row) == 0);
    }
    mload_map_close(m);
}

/* a converter's names over a strided tensor: still gathered, never direct */
static void t_strided_converted(void) {
    static const char *path = TORCH_DIR "views.pt";
    mload_rules *rules = NULL;
    mload_converter c;
    mload_map_desc d;
    mload_map *m = NULL;
    mload_error e;
    const char *text = "rename transposed w.t\nrename rows w.rows\n";
    const mload_tensor *t, *rows;
    float a[24];
    CHECK_RES(mload_rules_create(text, strlen(text), NULL, &rules, &e), MLOAD_OK);
    memset(&c, 0, sizeof c);
    c.rules = mload_rules_list(rules, &c.rule_count);
    memset(&d, 0, sizeof d);
    d.paths = &path;
    d.path_count = 1;
    d.converter = &c;
    CHECK_RES(mload_map_open(&d, &m, &e), MLOAD_OK);
    mload_rules_destroy(rules);
    if (!m) return;
    t = mload_map_find(m, "w.t");
    rows = mload_map_find(m, "w.rows");
    CHECK(t && rows && !mload_map_is_direct(m, t) && mload_map_is_direct(m, rows));
    if (t) {
        CHECK_RES(mload_map_read(m, t, MLOAD_DTYPE_F32, a, sizeof a, &e), MLOAD_OK);
        CHECK(a[1] == 6.0f && a[4] == 1.0f && a[23] == 23.0f);
    }
    mload_map_close(m);
}

static void t_sharded_and_folders(void) {
    check_against_ref(TORCH_DIR "sharded", TORCH_DIR "sharded.ref.safetensors");
    check_against_ref(TORCH_DIR "sharded/pytorch_model.bin.index.json", TORCH_DIR "sharded.ref.safetensors");
}

/* everything downstream: the writer turns a checkpoint into safetensors the
   reference equals; the fingerprint ignores the container */
static void t_write_and_fingerprint(void) {
    mload_error e;
    mload_map *m = open_map(TORCH_DIR "views.pt", &e), *r = open_map(TORCH_DIR "views.pt.ref.safetensors", &e);
    char fa[33], fb[33], out[256];
    CHECK(m && r);
    if (!m || !r) { mload_map_close(m); mload_map_close(r); return; }
    CHECK_RES(mload_map_fingerprint(m, fa, &e), MLOAD_OK);
    CHECK_RES(mload_map_fingerprint(r, fb, &e), MLOAD_OK);
    CHECK(strcmp(fa, fb) == 0);
    CHECK_RES(write_map_copy(m, "torch", out, sizeof out, &e), MLOAD_OK);
    mload_map_close(m);
    mload_map_close(r);
    check_against_ref(out, TORCH_DIR "views.pt.ref.safetensors");
    remove(out);
}

#if !defined(MODELLOAD_NO_OFFLOAD)
/* the offload manager streams a checkpoint's tensors, strided views among
   them, to a device: the bytes there are torch's */
static void t_offload_units(void) {
    static const char *const names[] = {"transposed", "rows", "bf16_t", "head.weight"};
    mload_error e;
    mload_map *m = open_map(TORCH_DIR "views.pt", &e), *r = open_map(TORCH_DIR "views.pt.ref.safetensors", &e);
    CHECK(m && r);
    if (m && r) CHECK_EQ_U64(host_unit_mismatches(m, names, 4, r), 0);
    mload_map_close(m);
    mload_map_close(r);
}
#endif

static void expect_fail(const char *path, mload_result want, const char *needle) {
    mload_file_desc d;
    mload_file *f = NULL;
    mload_error e;
    memset(&d, 0, sizeof d);
    d.path = path;
    CHECK_RES(mload_file_open(&d, &f, &e), want);
    CHECK(f == NULL);
    if (strstr(e.message, needle) == NULL) {
        th_failed_checks++;
        fprintf(stderr, "  FAIL %s: message '%s' lacks '%s'\n", path, e.message, needle);
    }
    mload_file_close(f);
}

static void t_refusals(void) {
    expect_fail(TORCH_DIR "evil.pt", MLOAD_ERR_PICKLE_REFUSED, "'posix.system'");
    expect_fail(TORCH_DIR "deflated.pt", MLOAD_ERR_UNSUPPORTED, "compressed");
    expect_fail(TORCH_DIR "legacy.pt", MLOAD_ERR_UNSUPPORTED, "legacy PyTorch format");
}

/* ---- hostile archives, built here ---- */

/* a checkpoint of one pickle (given as text with \x escapes) and one
   storage entry "0" of `storage` bytes */
/* (when it opens, its tensors must be exactly the nwant names of want) */
static mload_result open_pickle_names(const char *pkl, size_t pkl_len, size_t storage, const char *const *want, size_t nwant,
                                      mload_error *e) {
    static unsigned char zeros[256];
    const char *names[2] = {"ck/data.pkl", "ck/data/0"};
    const unsigned char *data[2];
    size_t len[2];
    zw_buf zb;
    tbuf z;
    mload_file *f = NULL;
    mload_result r;
    data[0] = (const unsigned char *)pkl;
    data[1] = zeros;
    len[0] = pkl_len;
    len[1] = storage;
    zb = zw_archive(names, data, len, 2);
    z.p = zb.p;
    z.n = zb.n;
    z.cap = zb.cap;
    r = open_mem(&z, &f, e);
    CHECK((r == MLOAD_OK) == (f != NULL));
    if (f && want) {
        size_t i;
        CHECK_EQ_U64(mload_file_count(f), nwant);
        for (i = 0; i < nwant; ++i) CHECK(mload_file_find(f, want[i]) != NULL);
    }
    mload_file_close(f);
    tbuf_free(&z);
    return r;
}
static mload_result open_pickle(const char *pkl, size_t pkl_len, size_t storage, mload_error *e) {
    return open_pickle_names(pkl, pkl_len, storage, NULL, 0, e);
}
#define PK(lit) lit, sizeof(lit) - 1

/* the start of one tensor "w" of 4 floats: {'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 4), ...)} */
#define PK_V2 "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x04tQ"

static void t_hostile_pickles(void) {
    mload_error e;
    /* an empty dict: a checkpoint with no tensor */
    CHECK_RES(open_pickle(PK("\x80\x02}."), 0, &e), MLOAD_OK);
    /* a valid one first: the harness builds real checkpoints */
    CHECK_RES(open_pickle(PK("\x80\x02}(X\x01\x00\x00\x00w" PK_V2 "K\x00K\x04\x85K\x01\x85\x89}tRu."), 16, &e), MLOAD_OK);
    CHECK_RES(open_pickle(PK("\x80\x02}(X\x01\x00\x00\x00w" PK_V2 "K\x00K\x04\x85K\x01\x85\x89}tRu."), 12, &e), MLOAD_ERR_INVALID_ARCHIVE);
    /* past its storage: 4 elements from offset 1 */
    CHECK_RES(open_pickle(PK("\x80\x02}(X\x01\x00\x00\x00w" PK_V2 "K\x01K\x04\x85K\x01\x85\x89}tRu."), 16, &e), MLOAD_ERR_INVALID_OFFSET);
    /* strides reaching past it: shape (2,2) strides (3,1) needs 5 */
    CHECK_RES(open_pickle(PK("\x80\x02}(X\x01\x00\x00\x00w" PK_V2 "K\x00K\x02K\x02\x86K\x03K\x01\x86\x89}tRu."), 16, &e), MLOAD_ERR_INVALID_OFFSET);
    /* code under torch.load: os.system through STACK_GLOBAL, eval through GLOBAL, and REDUCE of them */
    CHECK_RES(open_pickle(PK("\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK(strstr(e.message, "'os.system'") != NULL);
    CHECK_RES(open_pickle(PK("\x80\x02" "cbuiltins\neval\nX\x01\x00\x00\x00" "1\x85R."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK(strstr(e.message, "'builtins.eval'") != NULL && strcmp(e.tensor, "eval") == 0);
    /* REDUCE of an allowed global that is not a callable here (a dtype) */
    CHECK_RES(open_pickle(PK("\x80\x02" "ctorch\nfloat32\n)R."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK(strstr(e.message, "REDUCE") != NULL);
    /* opcodes torch.save never writes: NEWOBJ, EXT1, INST, OBJ, PERSID (text), BUILD on a tensor */
    CHECK_RES(open_pickle(PK("\x80\x02" "ccollections\nOrderedDict\n)\x81."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK(strstr(e.message, "NEWOBJ") != NULL);
    CHECK_RES(open_pickle(PK("\x80\x02\x82\x01."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK(strstr(e.message, "EXT1") != NULL);
    CHECK_RES(open_pickle(PK("\x80\x02(iposix\nsystem\n."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK_RES(open_pickle(PK("\x80\x02(cbuiltins\nobject\no."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK_RES(open_pickle(PK("\x80\x02Pfoo\n."), 0, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK_RES(open_pickle(PK("\x80\x02}(X\x01\x00\x00\x00w" PK_V2 "K\x00K\x04\x85K\x01\x85\x89}tR}b."), 16, &e), MLOAD_ERR_PICKLE_REFUSED);
    CHECK(strstr(e.message, "BUILD") != NULL);
    /* malformed: no STOP, truncated string, memo never put, bad protocol, unknown opcode, unbalanced marks */
    CHECK_RES(open_pickle(PK("\x80\x02}"), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK_RES(open_pickle(PK("\x80\x02X\xff\x00\x00\x00" "ab."), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK_RES(open_pickle(PK("\x80\x02h\x05."), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK_RES(open_pickle(PK("\x80\x09}."), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK_RES(open_pickle(PK("\x80\x02\xff."), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK_RES(open_pickle(PK("\x80\x02}(."), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK_RES(open_pickle(PK("\x80\x02]."), 0, &e), MLOAD_ERR_INVALID_PICKLE); /* a list, not a dict */
    CHECK(strstr(e.message, "list") != NULL);
    /* a dict that holds itself, and one reached twice: refused, not walked forever */
    CHECK_RES(open_pickle(PK("\x80\x02}q\x00X\x01\x00\x00\x00" "ah\x00s."), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK_RES(open_pickle(PK("\x80\x02}q\x00(X\x01\x00\x00\x00" "a}q\x01X\x01\x00\x00\x00" "bh\x01u."), 0, &e), MLOAD_ERR_INVALID_PICKLE);
    /* a tensor's storage named but absent */
    CHECK_RES(open_pickle(PK("\x80\x02}(X\x01\x00\x00\x00w" PK_V2 "K\x00K\x04\x85K\x01\x85\x89}tRu."), 0, &e), MLOAD_ERR_INVALID_ARCHIVE);
}

/* the wrappers the original unwraps (a dict with no tensor of its own), and a
   dict that has a tensor of its own, which is not unwrapped */
static void t_wrappers(void) {
    static const char *const w[] = {"w"}, *const both[] = {"w2", "model.w"};
    mload_error e;
    CHECK_RES(open_pickle_names(PK("\x80\x02}(X\x0b\x00\x00\x00model_state}(X\x01\x00\x00\x00w" PK_V2 "K\x00K\x04\x85K\x01\x85\x89}tRuu."),
                                16, w, 1, &e), MLOAD_OK);
    CHECK_RES(open_pickle_names(PK("\x80\x02}(X\x05\x00\x00\x00" "epochK\x01X\x05\x00\x00\x00model}(X\x01\x00\x00\x00w" PK_V2
                                   "K\x00K\x04\x85K\x01\x85\x89}tRuu."), 16, w, 1, &e), MLOAD_OK);
    CHECK_RES(open_pickle_names(PK("\x80\x02}(X\x02\x00\x00\x00w2" PK_V2 "K\x00K\x04\x85K\x01\x85\x89}tRX\x05\x00\x00\x00model}(X\x01\x00\x00\x00w"
                                   PK_V2 "K\x00K\x04\x85K\x01\x85\x89}tRuu."), 16, both, 2, &e), MLOAD_OK);
}

static void t_nesting_limits(void) {
    mload_error e;
    tbuf p = {0};
    size_t i;
    /* 300 open MARKs */
    tbuf_put(&p, "\x80\x02", 2);
    for (i = 0; i < 300; ++i) tbuf_put(&p, "(", 1);
    tbuf_put(&p, ".", 1);
    CHECK_RES(open_pickle((const char *)p.p, p.n, 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK(strstr(e.message, "MARK") != NULL);
    tbuf_free(&p);
    /* dicts nested 100 deep: {'a': {'a': ...}} */
    tbuf_put(&p, "\x80\x02", 2);
    for (i = 0; i < 100; ++i) tbuf_put(&p, "}X\x01\x00\x00\x00" "a", 7);
    tbuf_put(&p, "}", 1);
    for (i = 0; i < 100; ++i) tbuf_put(&p, "s", 1);
    tbuf_put(&p, ".", 1);
    CHECK_RES(open_pickle((const char *)p.p, p.n, 0, &e), MLOAD_ERR_INVALID_PICKLE);
    CHECK(strstr(e.message, "deeper") != NULL);
    tbuf_free(&p);
}

/* every truncation and many single-byte changes of a real checkpoint give
   an error or a valid table, never a crash (run under ASan by make test) */
static void t_damaged_files(void) {
    FILE *fp = fopen(TORCH_DIR "module.bin", "rb");
    tbuf b = {0}, c = {0};
    unsigned char chunk[4096];
    size_t n, cut, i, opened = 0;
    mload_error e;
    CHECK(fp != NULL);
    if (!fp) return;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) tbuf_put(&b, chunk, n);
    fclose(fp);
    for (cut = 0; cut < b.n; cut += 7) {
        mload_file *f = NULL;
        c.n = 0;
        tbuf_put(&c, b.p, cut);
        CHECK(open_mem(&c, &f, &e) != MLOAD_OK);
        mload_file_close(f);
    }
    for (i = 0; i < b.n; i += 3) {
        mload_file *f = NULL;
        c.n = 0;
        tbuf_put(&c, b.p, b.n);
        c.p[i] ^= (unsigned char)(0x5A + i);
        if (open_mem(&c, &f, &e) == MLOAD_OK) {
            uint64_t k;
            opened++;
            for (k = 0; k < mload_file_count(f); ++k) {
                const mload_tensor *t = mload_file_tensor(f, k);
                void *dst = malloc((size_t)t->nbytes + 1);
                mload_file_read(f, t, dst, t->nbytes, &e);
                free(dst);
            }
        }
        mload_file_close(f);
    }
    CHECK(opened > 0); /* changes inside tensor data keep the file valid */
    tbuf_free(&b);
    tbuf_free(&c);
}

/* every allocation of an open failing in turn: OutOfMemory, nothing leaked,
   every free of the size allocated; then the open succeeds */
static void t_allocation_failures(void) {
    static const char *const files[] = {TORCH_DIR "views.pt", TORCH_DIR "module.bin"};
    size_t i;
    for (i = 0; i < 2; ++i) {
        mload_file_desc d;
        mload_file *f = NULL;
        mload_error e;
        wacct acc;
        mload_result r = MLOAD_ERR_OUT_OF_MEMORY;
        long k;
        for (k = 0; k < 2000 && r == MLOAD_ERR_OUT_OF_MEMORY; ++k) {
            memset(&acc, 0, sizeof acc);
            memset(&d, 0, sizeof d);
            acc.fail_at = k;
            d.path = files[i];
            d.allocator.alloc = wacct_alloc;
            d.allocator.free = wacct_free;
            d.allocator.user = &acc;
            r = mload_file_open(&d, &f, &e);
            if (r == MLOAD_OK) {
                const mload_tensor *t = mload_file_tensor(f, mload_file_count(f) - 1);
                unsigned char buf[4096];
                acc.fail_at = -1; /* a strided read allocates too */
                CHECK(t != NULL && t->nbytes <= sizeof buf);
                if (t && t->nbytes <= sizeof buf) CHECK_RES(mload_file_read(f, t, buf, sizeof buf, &e), MLOAD_OK);
                mload_file_close(f);
            }
            CHECK(f == NULL || r == MLOAD_OK);
            wacct_done(&acc);
            if (acc.bytes != 0 || acc.live != 0 || acc.mismatches != 0) {
                CHECK(acc.bytes == 0 && acc.live == 0 && acc.mismatches == 0);
                fprintf(stderr, "  %s, failing allocation %ld: %lld bytes in %ld blocks not returned\n", files[i], k, acc.bytes, acc.live);
                break;
            }
        }
        CHECK_RES(r, MLOAD_OK);
        CHECK(k > 10); /* the failures were really exercised */
    }
}

void area_torch(void) {
    RUN(t_allocation_failures);
    RUN(t_fixtures_match_torch);
    RUN(t_file_api);
    RUN(t_strided_in_the_map);
    RUN(t_strided_converted);
    RUN(t_sharded_and_folders);
    RUN(t_write_and_fingerprint);
#if !defined(MODELLOAD_NO_OFFLOAD)
    RUN(t_offload_units);
#endif
    RUN(t_refusals);
    RUN(t_hostile_pickles);
    RUN(t_wrappers);
    RUN(t_nesting_limits);
    RUN(t_damaged_files);
}

#else
static void t_no_pickle(void) {
    mload_file_desc d;
    mload_file *f = NULL;
    mload_error e;
    memset(&d, 0, sizeof d);
    d.path = "tests/torch/module.bin";
    CHECK_RES(mload_file_open(&d, &f, &e), MLOAD_ERR_UNSUPPORTED);
    CHECK(strstr(e.message, "MODELLOAD_NO_PICKLE") != NULL);
}
void area_torch(void) { RUN(t_no_pickle); }
#endif
