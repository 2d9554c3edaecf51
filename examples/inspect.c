/* mload-inspect: list, check and describe safetensors files.

   Build:  cc -std=c99 -O2 -I. examples/inspect.c -o mload-inspect

   Usage:  mload-inspect [--metadata] [--verify] [--json] FILE

   Default output, one line per tensor in file order:
       NAME<TAB>DTYPE<TAB>SHAPE<TAB>NBYTES        e.g.  w<TAB>F32<TAB>[2,3]<TAB>24
   Names are printed as stored; a backslash, tab, newline, carriage return or
   other control byte in a name is written as \\, \t, \n, \r or \xNN so each
   tensor stays on one line.
   --metadata  first prints one line per __metadata__ entry:
               __metadata__<TAB>KEY<TAB>VALUE
   --verify    also reads every tensor's bytes (a truncated or unreadable file
               fails); a summary goes to stderr
   --json      prints one JSON document instead of the lines above

   Exit status: 0 success; 1 invalid or unreadable file (one line on stderr
   naming the error class and the byte offset or tensor); 2 usage error or a
   file that cannot be opened. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: mload-inspect [--metadata] [--verify] [--json] FILE\n");
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

static int report(const char *path, const mload_error *e) {
    fprintf(stderr, "mload-inspect: %s: %s", path, mload_result_string(e->code));
    if (e->offset != MLOAD_NO_OFFSET) fprintf(stderr, " at byte %llu", (unsigned long long)e->offset);
    if (e->tensor[0]) fprintf(stderr, ", tensor \"%s\"", e->tensor);
    fprintf(stderr, ": %s\n", e->message);
    return e->code == MLOAD_ERR_CANNOT_OPEN ? 2 : 1;
}

int main(int argc, char **argv) {
    int i, want_meta = 0, verify = 0, json = 0;
    const char *path = NULL;
    mload_file_desc d;
    mload_file *f;
    mload_error e;
    uint64_t k, n, m;

    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--metadata") == 0) want_meta = 1;
        else if (strcmp(argv[i], "--verify") == 0) verify = 1;
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) { usage(); return 0; }
        else if (strcmp(argv[i], "--") == 0 && i + 1 < argc && !path) path = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "mload-inspect: unknown option %s\n", argv[i]);
            usage();
            return 2;
        } else if (!path) path = argv[i];
        else { usage(); return 2; }
    }
    if (!path) { usage(); return 2; }

    memset(&d, 0, sizeof d);
    d.path = path;
    if (mload_file_open(&d, &f, &e) != MLOAD_OK) return report(path, &e);
    n = mload_file_count(f);
    m = mload_file_metadata_count(f);

    if (verify) {
        size_t cap = 16u << 20;
        unsigned char *buf = (unsigned char *)malloc(cap);
        uint64_t total = 0;
        if (!buf) { fprintf(stderr, "mload-inspect: out of memory\n"); mload_file_close(f); return 1; }
        for (k = 0; k < n; ++k) {
            const mload_tensor *t = mload_file_tensor(f, k);
            uint64_t at;
            for (at = 0; at < t->nbytes; at += cap) {
                uint64_t len = t->nbytes - at < cap ? t->nbytes - at : cap;
                if (mload_file_read_bytes(f, t, at, len, buf, &e) != MLOAD_OK) {
                    free(buf);
                    mload_file_close(f);
                    return report(path, &e);
                }
            }
            total += t->nbytes;
        }
        free(buf);
        fprintf(stderr, "verified %llu tensors, %llu bytes\n", (unsigned long long)n, (unsigned long long)total);
    }

    if (json) {
        printf("{\"file\":");
        put_json(path, strlen(path));
        printf(",\"file_size\":%llu,\"header_size\":%llu,\"data_offset\":%llu,\"metadata\":",
               (unsigned long long)mload_file_size(f), (unsigned long long)mload_file_header_size(f),
               (unsigned long long)mload_file_data_offset(f));
        if (!mload_file_has_metadata(f)) {
            printf("null");
        } else {
            putchar('{');
            for (k = 0; k < m; ++k) {
                const mload_kv *kv = mload_file_metadata_at(f, k);
                if (k) putchar(',');
                put_json(kv->key, kv->key_len);
                putchar(':');
                put_json(kv->value, kv->value_len);
            }
            putchar('}');
        }
        printf(",\"tensors\":[");
        for (k = 0; k < n; ++k) {
            const mload_tensor *t = mload_file_tensor(f, k);
            uint64_t begin = t->offset - mload_file_data_offset(f);
            printf("%s\n{\"name\":", k ? "," : "");
            put_json(t->name, t->name_len);
            printf(",\"dtype\":\"%s\",\"shape\":", mload_dtype_name(t->dtype));
            put_shape(t);
            printf(",\"data_offsets\":[%llu,%llu],\"nbytes\":%llu}", (unsigned long long)begin,
                   (unsigned long long)(begin + t->nbytes), (unsigned long long)t->nbytes);
        }
        printf("]}\n");
    } else {
        if (want_meta) {
            for (k = 0; k < m; ++k) {
                const mload_kv *kv = mload_file_metadata_at(f, k);
                fputs("__metadata__\t", stdout);
                put_text(kv->key, kv->key_len);
                putchar('\t');
                put_text(kv->value, kv->value_len);
                putchar('\n');
            }
        }
        for (k = 0; k < n; ++k) {
            const mload_tensor *t = mload_file_tensor(f, k);
            put_text(t->name, t->name_len);
            printf("\t%s\t", mload_dtype_name(t->dtype));
            put_shape(t);
            printf("\t%llu\n", (unsigned long long)t->nbytes);
        }
    }
    mload_file_close(f);
    if (fflush(stdout) != 0) return 1;
    return 0;
}
