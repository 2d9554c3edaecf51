/* mload-inspect: list, check, describe and dump safetensors checkpoints.

   Build:  cc -std=c99 -O2 -I. examples/tools/inspect.c -o mload-inspect -pthread

   Usage:  mload-inspect [--convert RULES.txt] [--metadata] [--verify] [--json] PATH
           mload-inspect [--convert RULES.txt] --dump NAME [--as DTYPE] PATH > tensor.bin

   PATH is a .safetensors file, a folder (every *.safetensors in it) or a
   sharded checkpoint's *.index.json.

   Default output, one line per tensor (file order for one file, name order
   for several):
       NAME<TAB>DTYPE<TAB>SHAPE<TAB>NBYTES        e.g.  w<TAB>F32<TAB>[2,3]<TAB>24
   Names are printed as stored; a backslash, tab, newline, carriage return or
   other control byte in a name is written as \\, \t, \n, \r or \xNN so each
   tensor stays on one line.
   --metadata  first prints one line per __metadata__ entry of each file:
               __metadata__<TAB>KEY<TAB>VALUE
   --verify    also reads every tensor's bytes (a truncated or unreadable file
               fails); a summary goes to stderr
   --json      prints one JSON document instead of the lines above
   --dump NAME writes tensor NAME's raw little-endian bytes to stdout,
               converted to DTYPE with --as (e.g. --as F32)
   --convert RULES.txt  shows the checkpoint through a converter (rules
               text, see docs/converters.md): names, shapes and bytes are the
               converted ones; computed tensors have "data_offsets": null in
               --json

   Exit status: 0 success; 1 invalid or unreadable checkpoint, or an unknown
   tensor (one line on stderr naming the error class and the byte offset or
   tensor); 2 usage error, a path that cannot be opened or a folder
   without .safetensors files. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h> /* stat: is PATH a folder */

static void usage(void) {
    fprintf(stderr, "usage: mload-inspect [--convert RULES.txt] [--lora FILE[:SCALE]]... [--metadata] [--verify] [--json] PATH\n"
                    "       mload-inspect [--convert RULES.txt] [--lora FILE[:SCALE]]... [--lora-alpha A] --dump NAME [--as DTYPE] PATH\n");
}

/* ---- output ---------------------------------------------------------------
   A listing of 20,000 tensors is a megabyte of text. It is formatted into
   one buffer by the put_* functions below (each writes at p and returns the
   new end, no bounds checks: the caller reserves room for a whole line
   first) and goes out in 64 KiB blocks, one fwrite each. */
static struct {
    char *buf;
    size_t n, cap;   /* bytes waiting in buf, its size */
    int failed, err; /* a write failed, and its errno (later blocks are dropped) */
} out;

static void out_flush(void) {
    if (out.n && !out.failed && fwrite(out.buf, 1, out.n, stdout) != out.n) {
        out.failed = 1;
        out.err = errno;
    }
    out.n = 0;
}

/* room for k more bytes at the returned pointer; out_commit(end) then says
   where the written bytes end */
static char *out_reserve(size_t k) {
    if (out.cap - out.n < k) {
        out_flush();
        if (out.cap < k || !out.buf) { /* the first call, or one item larger than a block */
            size_t cap = k > (1u << 16) ? k : (1u << 16);
            char *grown = (char *)realloc(out.buf, cap);
            if (!grown) {
                fprintf(stderr, "mload-inspect: out of memory\n");
                exit(1);
            }
            out.buf = grown;
            out.cap = cap;
        }
    }
    return out.buf + out.n;
}

static void out_commit(char *end) { out.n = (size_t)(end - out.buf); }

static char *put_bytes(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}

/* v in decimal, as printf's %llu: at most 20 bytes */
static char *put_u64(char *p, uint64_t v) {
    uint64_t rest = v;
    size_t digits = 1, i;
    while (rest >= 10u) {
        rest /= 10u;
        digits++;
    }
    for (i = digits; i-- > 0; v /= 10u) p[i] = (char)('0' + v % 10u);
    return p + digits;
}

/* \xNN or \u00NN (lowercase hex, as printf's %02x and %04x) */
static char *put_hex_escape(char *p, char kind, unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    *p++ = '\\';
    *p++ = kind;
    if (kind == 'u') { *p++ = '0'; *p++ = '0'; }
    *p++ = hex[c >> 4];
    *p++ = hex[c & 15u];
    return p;
}

/* nonzero when one of the 8 bytes in x is below 0x20, 0x7f or a backslash
   (a byte b is zero exactly when (b - 1) & ~b has its high bit set) */
static uint64_t has_special8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t del = x ^ (0x7f * ones), bsl = x ^ ('\\' * ones);
    return (((x - 0x20 * ones) & ~x) | ((del - ones) & ~del) | ((bsl - ones) & ~bsl)) & high;
}

/* one-line text form of a name or value: \\, \t, \n, \r, and \xNN for the
   other control bytes; at most 4 bytes per byte of s. Names are mostly
   plain: they are checked and copied eight bytes at a time. */
#define TEXT_MAX(n) (4 * (size_t)(n))
static char *put_text(char *p, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c;
        uint64_t x;
        if (n - i >= 8) {
            memcpy(&x, s + i, 8);
            if (!has_special8(x)) {
                memcpy(p, &x, 8);
                p += 8;
                i += 8;
                continue;
            }
        }
        c = (unsigned char)s[i++];
        if (c >= 0x20 && c != 0x7f && c != '\\') *p++ = (char)c;
        else if (c == '\\') { *p++ = '\\'; *p++ = '\\'; }
        else if (c == '\t') { *p++ = '\\'; *p++ = 't'; }
        else if (c == '\n') { *p++ = '\\'; *p++ = 'n'; }
        else if (c == '\r') { *p++ = '\\'; *p++ = 'r'; }
        else p = put_hex_escape(p, 'x', c);
    }
    return p;
}

/* JSON string (input is valid UTF-8: the parser checked it); at most 6 bytes
   per byte of s, and the quotes */
#define JSON_MAX(n) (6 * (size_t)(n) + 2)
static char *put_json(char *p, const char *s, size_t n) {
    size_t i;
    *p++ = '"';
    for (i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') *p++ = (char)c;
        else if (c == '"') { *p++ = '\\'; *p++ = '"'; }
        else if (c == '\\') { *p++ = '\\'; *p++ = '\\'; }
        else if (c == '\n') { *p++ = '\\'; *p++ = 'n'; }
        else if (c == '\r') { *p++ = '\\'; *p++ = 'r'; }
        else if (c == '\t') { *p++ = '\\'; *p++ = 't'; }
        else p = put_hex_escape(p, 'u', c);
    }
    *p++ = '"';
    return p;
}

/* [d0,d1,...]: at most 2 + 21 bytes per dim */
#define SHAPE_MAX(rank) (2 + 21 * (size_t)(rank))
static char *put_shape(char *p, const mload_tensor *t) {
    uint32_t d;
    *p++ = '[';
    for (d = 0; d < t->rank; ++d) {
        if (d) *p++ = ',';
        p = put_u64(p, t->shape[d]);
    }
    *p++ = ']';
    return p;
}

/* DTYPE names with their lengths, looked up once per dtype */
typedef struct dtype_text { const char *s; size_t n; } dtype_text;
static const dtype_text *dtype_of(mload_dtype dt) {
    static dtype_text names[MLOAD_DTYPE_COUNT];
    dtype_text *d = &names[(unsigned)dt < MLOAD_DTYPE_COUNT ? dt : MLOAD_DTYPE_INVALID];
    if (!d->s) {
        d->s = mload_dtype_name(dt);
        if (!d->s) d->s = "?"; /* not a dtype: a parsed tensor never has one */
        d->n = strlen(d->s);
    }
    return d;
}

/* a string literal without its NUL: at p, or straight to the output */
#define PUT_LIT(p, lit) put_bytes(p, "" lit, sizeof(lit) - 1)
#define OUT_LIT(lit) out_commit(PUT_LIT(out_reserve(sizeof(lit) - 1), lit))

/* ---- what is listed ------------------------------------------------------
   One file is listed in file order, straight from its table; several files
   (a folder, an index) or a converted view in the map's name order. */
typedef struct listing {
    const mload_map *m;    /* NULL when the file was opened alone */
    const mload_file *one; /* the file listed in file order, else NULL */
    const char *path;      /* its path when opened alone */
} listing;

static uint64_t listing_files(const listing *l) { return l->m ? mload_map_file_count(l->m) : 1; }
static const mload_file *listing_file(const listing *l, uint64_t i) { return l->m ? mload_map_file(l->m, i) : l->one; }
static const char *listing_file_path(const listing *l, uint64_t i) { return l->m ? mload_map_file_path(l->m, i) : l->path; }
static uint64_t listing_count(const listing *l) { return l->one ? mload_file_count(l->one) : mload_map_count(l->m); }

static const mload_tensor *listing_tensor(const listing *l, uint64_t k) {
    return l->one ? mload_file_tensor(l->one, k) : mload_map_tensor(l->m, k);
}

/* stored bytes at data_offsets (not computed by a converter) */
static int listing_direct(const listing *l, const mload_tensor *t) { return l->one ? 1 : mload_map_is_direct(l->m, t); }

/* the default listing: NAME<TAB>DTYPE<TAB>SHAPE<TAB>NBYTES, metadata first when asked */
static void list_text(const listing *l, int want_meta) {
    uint64_t fi, k, n = listing_count(l);
    char *p;
    if (want_meta) {
        for (fi = 0; fi < listing_files(l); ++fi) {
            const mload_file *f = listing_file(l, fi);
            for (k = 0; k < mload_file_metadata_count(f); ++k) {
                const mload_kv *kv = mload_file_metadata(f, k);
                p = out_reserve(TEXT_MAX(kv->key_len) + TEXT_MAX(kv->value_len) + 16);
                p = PUT_LIT(p, "__metadata__\t");
                p = put_text(p, kv->key, kv->key_len);
                *p++ = '\t';
                p = put_text(p, kv->value, kv->value_len);
                *p++ = '\n';
                out_commit(p);
            }
        }
    }
    for (k = 0; k < n; ++k) {
        const mload_tensor *t = listing_tensor(l, k);
        const dtype_text *dt = dtype_of(t->dtype);
        /* + 24: three tabs, NBYTES (at most 20 digits), the newline */
        p = out_reserve(TEXT_MAX(t->name_len) + dt->n + SHAPE_MAX(t->rank) + 24);
        p = put_text(p, t->name, t->name_len);
        *p++ = '\t';
        p = put_bytes(p, dt->s, dt->n);
        *p++ = '\t';
        p = put_shape(p, t);
        *p++ = '\t';
        p = put_u64(p, t->nbytes);
        *p++ = '\n';
        out_commit(p);
    }
}

static void list_json(const listing *l, const char *path) {
    uint64_t fi, k, n = listing_count(l);
    char *p = out_reserve(JSON_MAX(strlen(path)) + 32);
    p = PUT_LIT(p, "{\"path\":");
    p = put_json(p, path, strlen(path));
    p = PUT_LIT(p, ",\"files\":[");
    out_commit(p);
    for (fi = 0; fi < listing_files(l); ++fi) {
        const mload_file *f = listing_file(l, fi);
        const char *fp = listing_file_path(l, fi);
        p = out_reserve(JSON_MAX(strlen(fp)) + 160); /* the keys (< 100 bytes), three numbers */
        if (fi) *p++ = ',';
        p = PUT_LIT(p, "\n{\"file\":");
        p = put_json(p, fp, strlen(fp));
        p = PUT_LIT(p, ",\"file_size\":");
        p = put_u64(p, mload_file_size(f));
        p = PUT_LIT(p, ",\"header_size\":");
        p = put_u64(p, mload_file_header_size(f));
        p = PUT_LIT(p, ",\"data_offset\":");
        p = put_u64(p, mload_file_data_offset(f));
        p = PUT_LIT(p, ",\"metadata\":");
        out_commit(p);
        if (!mload_file_has_metadata(f)) {
            OUT_LIT("null");
        } else {
            OUT_LIT("{");
            for (k = 0; k < mload_file_metadata_count(f); ++k) {
                const mload_kv *kv = mload_file_metadata(f, k);
                p = out_reserve(JSON_MAX(kv->key_len) + JSON_MAX(kv->value_len) + 2);
                if (k) *p++ = ',';
                p = put_json(p, kv->key, kv->key_len);
                *p++ = ':';
                p = put_json(p, kv->value, kv->value_len);
                out_commit(p);
            }
            OUT_LIT("}");
        }
        OUT_LIT("}");
    }
    OUT_LIT("],\"tensors\":[");
    for (k = 0; k < n; ++k) {
        const mload_tensor *t = listing_tensor(l, k);
        const dtype_text *dt = dtype_of(t->dtype);
        /* + 160: the keys (< 100 bytes) and four numbers (at most 20 digits each) */
        p = out_reserve(JSON_MAX(t->name_len) + dt->n + SHAPE_MAX(t->rank) + 160);
        if (k) *p++ = ',';
        p = PUT_LIT(p, "\n{\"name\":");
        p = put_json(p, t->name, t->name_len);
        p = PUT_LIT(p, ",\"dtype\":\"");
        p = put_bytes(p, dt->s, dt->n);
        p = PUT_LIT(p, "\",\"shape\":");
        p = put_shape(p, t);
        if (listing_direct(l, t)) {
            uint64_t begin = t->offset - mload_file_data_offset(listing_file(l, t->file_index));
            p = PUT_LIT(p, ",\"file\":");
            p = put_u64(p, t->file_index);
            p = PUT_LIT(p, ",\"data_offsets\":[");
            p = put_u64(p, begin);
            *p++ = ',';
            p = put_u64(p, begin + t->nbytes);
            *p++ = ']';
        } else {
            p = PUT_LIT(p, ",\"file\":null,\"data_offsets\":null");
        }
        p = PUT_LIT(p, ",\"nbytes\":");
        p = put_u64(p, t->nbytes);
        *p++ = '}';
        out_commit(p);
    }
    OUT_LIT("]}\n");
}

/* A single .safetensors file (not a folder, not an *.index.json: the map's
   own rule) can be listed without a map: the map would sort the names and
   index them, work a file-order listing never uses. */
static int is_one_file(const char *path) {
    struct stat st;
    size_t n = strlen(path);
    if (n >= 5 && memcmp(path + n - 5, ".json", 5) == 0) return 0;
    return stat(path, &st) != 0 || !S_ISDIR(st.st_mode);
}

/* s with control bytes and backslashes as \xNN, so a report stays one line */
static void put_escaped(FILE *fp, const char *s) {
    for (; *s; ++s) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\') fprintf(fp, "\\x%02x", c);
        else fputc(c, fp);
    }
}

static int report(const char *path, const mload_error *e) {
    fprintf(stderr, "mload-inspect: %s: %s", path, mload_result_string(e->code));
    if (e->offset != MLOAD_NO_OFFSET) fprintf(stderr, " at byte %llu", (unsigned long long)e->offset);
    if (e->tensor[0]) {
        fputs(", tensor \"", stderr);
        put_escaped(stderr, e->tensor);
        fputc('"', stderr);
    }
    fputs(": ", stderr);
    put_escaped(stderr, e->message);
    fputc('\n', stderr);
    return e->code == MLOAD_ERR_CANNOT_OPEN ? 2 : 1;
}

static int dump(mload_map *m, const char *path, const char *name, const char *as_name) {
    const mload_tensor *t = mload_map_find(m, name);
    mload_dtype as = MLOAD_DTYPE_INVALID;
    mload_error e;
    void *buf;
    uint64_t size;
    if (!t) {
        fprintf(stderr, "mload-inspect: %s: NotFound, tensor \"%s\": no such tensor\n", path, name);
        return 1;
    }
    if (as_name) {
        as = mload_dtype_from_name(as_name, strlen(as_name));
        if (as == MLOAD_DTYPE_INVALID) {
            fprintf(stderr, "mload-inspect: unknown dtype %s\n", as_name);
            return 2;
        }
    }
    if (mload_map_read_alloc(m, t, as, &buf, &size, &e) != MLOAD_OK) return report(path, &e);
    if ((size && fwrite(buf, 1, (size_t)size, stdout) != (size_t)size) || fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mload-inspect: writing to stdout failed\n");
        mload_map_free_buffer(m, buf, size);
        return 1;
    }
    mload_map_free_buffer(m, buf, size);
    return 0;
}

/* --verify: reads every tensor's bytes through a 16 MiB buffer; a summary to stderr */
static int verify_all(const mload_map *m, const char *path) {
    size_t cap = 16u << 20;
    unsigned char *buf = (unsigned char *)malloc(cap);
    uint64_t k, n = mload_map_count(m), total = 0;
    mload_error e;
    if (!buf) { fprintf(stderr, "mload-inspect: out of memory\n"); return 1; }
    for (k = 0; k < n; ++k) {
        const mload_tensor *t = mload_map_tensor(m, k);
        uint64_t per = (uint64_t)cap * 8u / mload_dtype_bits(t->dtype), at;
        for (at = 0; at < t->numel; at += per) {
            uint64_t cnt = t->numel - at < per ? t->numel - at : per;
            if (mload_map_read_range(m, t, at, cnt, MLOAD_DTYPE_INVALID, buf, cap, &e) != MLOAD_OK) {
                free(buf);
                return report(path, &e);
            }
        }
        total += t->nbytes;
    }
    free(buf);
    fprintf(stderr, "verified %llu tensors, %llu bytes\n", (unsigned long long)n, (unsigned long long)total);
    return 0;
}

/* writes what is left of the listing; a full disk, a closed pipe: say so */
static int finish_output(void) {
    out_flush();
    free(out.buf);
    if (out.failed || fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "mload-inspect: writing the listing failed: %s\n", strerror(out.failed ? out.err : errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int i, want_meta = 0, verify = 0, json = 0, rc = 0;
    const char *path = NULL, *dump_name = NULL, *as_name = NULL, *rules_path = NULL;
    mload_rules *rules = NULL;
    mload_converter conv;
    mload_map_desc d;
    mload_map *m;
    mload_error e;
    listing l;
    mload_lora *loras = (mload_lora *)calloc((size_t)argc, sizeof(mload_lora));
    uint32_t nlora = 0, k;
    double alpha = 0;

    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--metadata") == 0) want_meta = 1;
        else if (strcmp(argv[i], "--verify") == 0) verify = 1;
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) dump_name = argv[++i];
        else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) as_name = argv[++i];
        else if (strcmp(argv[i], "--convert") == 0 && i + 1 < argc) rules_path = argv[++i];
        else if (strcmp(argv[i], "--lora") == 0 && i + 1 < argc && loras) { /* FILE, or FILE:SCALE (default 1) */
            char *spec = argv[++i], *colon = strrchr(spec, ':'), *end = NULL;
            loras[nlora].scale = colon ? strtod(colon + 1, &end) : 1.0;
            if (colon && end != colon + 1 && *end == '\0') *colon = '\0';
            else loras[nlora].scale = 1.0; /* the ':' belongs to the path */
            loras[nlora++].path = spec;
        } else if (strcmp(argv[i], "--lora-alpha") == 0 && i + 1 < argc) {
            char *end;
            alpha = strtod(argv[++i], &end);
            if (*end || alpha <= 0) { usage(); return 2; }
        }
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(); return 0; }
        else if (strcmp(argv[i], "--") == 0 && i + 1 < argc && !path) path = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "mload-inspect: unknown or incomplete option %s\n", argv[i]);
            usage();
            return 2;
        } else if (!path) path = argv[i];
        else { usage(); return 2; }
    }
    if (!path || (as_name && !dump_name)) { usage(); return 2; }

    memset(&d, 0, sizeof d);
    d.paths = &path;
    d.path_count = 1;
    for (k = 0; k < nlora; ++k) loras[k].alpha = alpha;
    d.loras = loras;
    d.lora_count = nlora;
    if (rules_path) {
        FILE *fp = fopen(rules_path, "rb");
        char *text = NULL;
        size_t len = 0, cap = 0;
        if (!fp) { fprintf(stderr, "mload-inspect: cannot open rules file %s\n", rules_path); return 2; }
        for (;;) { /* read to the end: works for pipes too */
            size_t got;
            if (len == cap) {
                char *grown = (char *)realloc(text, cap ? cap * 2 : 4096);
                if (!grown) break;
                text = grown;
                cap = cap ? cap * 2 : 4096;
            }
            got = fread(text + len, 1, cap - len, fp);
            len += got;
            if (got == 0) break;
        }
        if (!text || ferror(fp) || len == cap) {
            fprintf(stderr, "mload-inspect: cannot read %s\n", rules_path);
            fclose(fp);
            free(text);
            return 2;
        }
        fclose(fp);
        if (mload_rules_create(text, len, NULL, &rules, &e) != MLOAD_OK) {
            free(text);
            return report(rules_path, &e);
        }
        free(text);
        memset(&conv, 0, sizeof conv);
        conv.rules = mload_rules_list(rules, &conv.rule_count);
        d.converter = &conv;
    }
    memset(&l, 0, sizeof l);
    if (!rules_path && !nlora && !dump_name && !verify && is_one_file(path)) { /* the listing of one file: no map */
        mload_file_desc fd;
        mload_file *f;
        free(loras);
        memset(&fd, 0, sizeof fd);
        fd.path = path;
        if (mload_file_open(&fd, &f, &e) != MLOAD_OK) {
            rc = report(path, &e);
            return e.code == MLOAD_ERR_NOT_FOUND ? 2 : rc;
        }
        l.one = f;
        l.path = path;
        if (json) list_json(&l, path);
        else list_text(&l, want_meta);
        mload_file_close(f);
        return finish_output();
    }
    i = mload_map_open(&d, &m, &e) != MLOAD_OK;
    free(loras); /* the map keeps nothing of the descs */
    if (i) {
        mload_rules_destroy(rules);
        rc = report(path, &e);
        return e.code == MLOAD_ERR_NOT_FOUND && !nlora ? 2 : rc; /* a folder without checkpoints */
    }
    mload_rules_destroy(rules); /* the map keeps nothing of it */
    if (dump_name) {
        rc = dump(m, path, dump_name, as_name);
        mload_map_close(m);
        return rc;
    }
    if (verify && (rc = verify_all(m, path)) != 0) {
        mload_map_close(m);
        return rc;
    }
    l.m = m;
    if (mload_map_file_count(m) == 1 && !rules_path) l.one = mload_map_file(m, 0); /* file order */
    if (json) list_json(&l, path);
    else list_text(&l, want_meta);
    if (mload_map_has_declared_size(m) && mload_map_declared_size(m) != mload_map_data_size(m)) {
        out_flush(); /* the listing first, then the warning */
        fflush(stdout);
        fprintf(stderr, "mload-inspect: warning: the index says total_size %llu, the tensors hold %llu bytes\n",
                (unsigned long long)mload_map_declared_size(m), (unsigned long long)mload_map_data_size(m));
    }
    mload_map_close(m);
    return finish_output();
}
