/* Helpers shared by the tests. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#include "harness.h"
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

void tbuf_put(tbuf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->n + n) c *= 2;
        b->p = (unsigned char *)realloc(b->p, c);
        if (!b->p) abort();
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

void tbuf_free(tbuf *b) {
    free(b->p);
    memset(b, 0, sizeof(*b));
}

tbuf make_st_n(const char *header, size_t header_len, size_t data_len, const unsigned char *data) {
    tbuf b = {0, 0, 0};
    unsigned char len[8];
    uint64_t n = header_len;
    size_t i;
    for (i = 0; i < 8; ++i) len[i] = (unsigned char)(n >> (8 * i));
    tbuf_put(&b, len, 8);
    tbuf_put(&b, header, header_len);
    for (i = 0; i < data_len; ++i) {
        unsigned char c = data ? data[i] : (unsigned char)(i & 0xFF);
        tbuf_put(&b, &c, 1);
    }
    if (!b.p) tbuf_put(&b, "", 0);
    return b;
}

tbuf make_st(const char *header, size_t data_len, const unsigned char *data) {
    return make_st_n(header, strlen(header), data_len, data);
}

mload_result open_mem(const tbuf *b, mload_file **f, mload_error *e) {
    mload_file_desc d;
    memset(&d, 0, sizeof(d));
    d.data = b->p ? (const void *)b->p : (const void *)"";
    d.data_size = b->n;
    return mload_file_open(&d, f, e);
}

mload_result parse_hdr(const char *header, size_t data_len, mload_error *e) {
    tbuf b = make_st(header, data_len, NULL);
    mload_file *f = NULL;
    mload_result r = open_mem(&b, &f, e);
    mload_file_close(f);
    tbuf_free(&b);
    return r;
}

const char *fixtures_dir(void) {
    static const char *cands[] = {"../shared/fixtures/official", "../../shared/fixtures/official",
                                  "shared/fixtures/official"};
    const char *env = getenv("MLOAD_FIXTURES");
    struct stat st;
    size_t i;
    if (env && stat(env, &st) == 0) return env;
    for (i = 0; i < sizeof(cands) / sizeof(cands[0]); ++i)
        if (stat(cands[i], &st) == 0 && S_ISDIR(st.st_mode)) return cands[i];
    return NULL;
}

const char *write_tmp(int slot, const void *data, size_t n) {
    static char paths[4][64];
    char *p = paths[slot & 3];
    int fd;
    FILE *fp;
    snprintf(p, 64, "/tmp/mload_test_%d_%d.safetensors", (int)getpid(), slot & 3);
    fp = fopen(p, "wb");
    if (!fp) abort();
    if (n && fwrite(data, 1, n, fp) != n) abort();
    fclose(fp);
    (void)fd;
    return p;
}
