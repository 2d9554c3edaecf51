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

static void usage(void) {
    fprintf(stderr, "usage: mload-inspect [--convert RULES.txt] [--metadata] [--verify] [--json] PATH\n"
                    "       mload-inspect [--convert RULES.txt] --dump NAME [--as DTYPE] PATH\n");
}

/* one-line text form of a name or value */
static void put_text(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') fputs("\\\\", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

/* JSON string (input is valid UTF-8: the parser checked it) */
static void put_json(const char *s, size_t n) {
    size_t i;
    putchar('"');
    for (i = 0; i < n; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') fputs("\\\"", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void put_shape(const mload_tensor *t) {
    uint32_t d;
    putchar('[');
    for (d = 0; d < t->rank; ++d) printf("%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
    putchar(']');
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

/* tensor k of the listing: file order for a single file, else name order */
static const mload_tensor *listed(const mload_map *m, uint64_t k, int converted) {
    if (mload_map_file_count(m) == 1 && !converted) {
        const mload_tensor *ft = mload_file_tensor(mload_map_file(m, 0), k);
        return mload_map_find_n(m, ft->name, ft->name_len);
    }
    return mload_map_tensor(m, k);
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

int main(int argc, char **argv) {
    int i, want_meta = 0, verify = 0, json = 0, rc = 0;
    const char *path = NULL, *dump_name = NULL, *as_name = NULL, *rules_path = NULL;
    mload_rules *rules = NULL;
    mload_converter conv;
    mload_map_desc d;
    mload_map *m;
    mload_error e;
    uint64_t k, n;
    uint32_t fi;

    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--metadata") == 0) want_meta = 1;
        else if (strcmp(argv[i], "--verify") == 0) verify = 1;
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) dump_name = argv[++i];
        else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) as_name = argv[++i];
        else if (strcmp(argv[i], "--convert") == 0 && i + 1 < argc) rules_path = argv[++i];
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
    if (mload_map_open(&d, &m, &e) != MLOAD_OK) {
        mload_rules_destroy(rules);
        rc = report(path, &e);
        return e.code == MLOAD_ERR_NOT_FOUND ? 2 : rc; /* a folder without checkpoints */
    }
    mload_rules_destroy(rules); /* the map keeps nothing of it */
    if (dump_name) {
        rc = dump(m, path, dump_name, as_name);
        mload_map_close(m);
        return rc;
    }
    n = mload_map_count(m);

    if (verify) {
        size_t cap = 16u << 20;
        unsigned char *buf = (unsigned char *)malloc(cap);
        uint64_t total = 0;
        if (!buf) { fprintf(stderr, "mload-inspect: out of memory\n"); mload_map_close(m); return 1; }
        for (k = 0; k < n; ++k) {
            const mload_tensor *t = mload_map_tensor(m, k);
            uint64_t per = (uint64_t)cap * 8u / mload_dtype_bits(t->dtype), at;
            for (at = 0; at < t->numel; at += per) {
                uint64_t cnt = t->numel - at < per ? t->numel - at : per;
                if (mload_map_read_range(m, t, at, cnt, MLOAD_DTYPE_INVALID, buf, cap, &e) != MLOAD_OK) {
                    free(buf);
                    mload_map_close(m);
                    return report(path, &e);
                }
            }
            total += t->nbytes;
        }
        free(buf);
        fprintf(stderr, "verified %llu tensors, %llu bytes\n", (unsigned long long)n, (unsigned long long)total);
    }

    if (json) {
        printf("{\"path\":");
        put_json(path, strlen(path));
        printf(",\"files\":[");
        for (fi = 0; fi < mload_map_file_count(m); ++fi) {
            const mload_file *f = mload_map_file(m, fi);
            const char *fp = mload_map_file_path(m, fi);
            printf("%s\n{\"file\":", fi ? "," : "");
            put_json(fp, strlen(fp));
            printf(",\"file_size\":%llu,\"header_size\":%llu,\"data_offset\":%llu,\"metadata\":",
                   (unsigned long long)mload_file_size(f), (unsigned long long)mload_file_header_size(f),
                   (unsigned long long)mload_file_data_offset(f));
            if (!mload_file_has_metadata(f)) {
                printf("null");
            } else {
                putchar('{');
                for (k = 0; k < mload_file_metadata_count(f); ++k) {
                    const mload_kv *kv = mload_file_metadata(f, k);
                    if (k) putchar(',');
                    put_json(kv->key, kv->key_len);
                    putchar(':');
                    put_json(kv->value, kv->value_len);
                }
                putchar('}');
            }
            putchar('}');
        }
        printf("],\"tensors\":[");
        for (k = 0; k < n; ++k) {
            const mload_tensor *t = listed(m, k, rules != NULL);
            printf("%s\n{\"name\":", k ? "," : "");
            put_json(t->name, t->name_len);
            printf(",\"dtype\":\"%s\",\"shape\":", mload_dtype_name(t->dtype));
            put_shape(t);
            if (mload_map_is_direct(m, t)) {
                uint64_t begin = t->offset - mload_file_data_offset(mload_map_file(m, t->file_index));
                printf(",\"file\":%u,\"data_offsets\":[%llu,%llu]", (unsigned)t->file_index, (unsigned long long)begin,
                       (unsigned long long)(begin + t->nbytes));
            } else {
                printf(",\"file\":null,\"data_offsets\":null");
            }
            printf(",\"nbytes\":%llu}", (unsigned long long)t->nbytes);
        }
        printf("]}\n");
    } else {
        if (want_meta) {
            for (fi = 0; fi < mload_map_file_count(m); ++fi) {
                const mload_file *f = mload_map_file(m, fi);
                for (k = 0; k < mload_file_metadata_count(f); ++k) {
                    const mload_kv *kv = mload_file_metadata(f, k);
                    fputs("__metadata__\t", stdout);
                    put_text(kv->key, kv->key_len);
                    putchar('\t');
                    put_text(kv->value, kv->value_len);
                    putchar('\n');
                }
            }
        }
        for (k = 0; k < n; ++k) {
            const mload_tensor *t = listed(m, k, rules != NULL);
            put_text(t->name, t->name_len);
            printf("\t%s\t", mload_dtype_name(t->dtype));
            put_shape(t);
            printf("\t%llu\n", (unsigned long long)t->nbytes);
        }
    }
    if (mload_map_has_declared_size(m) && mload_map_declared_size(m) != mload_map_data_size(m))
        fprintf(stderr, "mload-inspect: warning: the index says total_size %llu, the tensors hold %llu bytes\n",
                (unsigned long long)mload_map_declared_size(m), (unsigned long long)mload_map_data_size(m));
    mload_map_close(m);
    if (fflush(stdout) != 0 || ferror(stdout)) { /* a full disk, a closed pipe: say so */
        fprintf(stderr, "mload-inspect: writing the listing failed: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
