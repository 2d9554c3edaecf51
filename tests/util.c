/* Helpers shared by the tests. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
#include "harness.h"
#include "st_write.h"
#include <stdlib.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
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
    st_buf s = ST_BUF_INIT;
    tbuf b;
    size_t i;
    st_image(&s, header, header_len, ST_NO_PAD, data, data ? data_len : 0);
    if (!data)
        for (i = 0; i < data_len; ++i) st_putc(&s, (unsigned char)(i & 0xFF));
    if (s.failed) abort();
    b.p = s.p;
    b.n = s.n;
    b.cap = s.cap;
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

void check_hdr_cases(const char *label, const hcase *cases, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        mload_error e;
        mload_result r = parse_hdr(cases[i].hdr, cases[i].data, &e);
        if (r != cases[i].want) {
            th_failed_checks++;
            fprintf(stderr, "  FAIL %s case %u <%s>: got %s (%s), expected %s\n", label, (unsigned)i, cases[i].hdr,
                    mload_result_string(r), r ? e.message : "", mload_result_string(cases[i].want));
        }
    }
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

/* ---- fault injection for the writer's renames and syncs (tests/impl.c) ---- */
long th_fail_rename_at = -1, th_fail_fsync_at = -1, th_renames, th_fsyncs;

void (*th_after_rename)(const char *to);

int th_rename(const char *from, const char *to) {
    int r;
    if (th_renames++ == th_fail_rename_at) { errno = EIO; return -1; }
    r = rename(from, to);
    if (r == 0 && th_after_rename) th_after_rename(to);
    return r;
}

int th_fsync(int fd) {
    if (th_fsyncs++ == th_fail_fsync_at) { errno = EIO; return -1; }
    return fsync(fd);
}

/* the accounting allocator (harness.h) */
void *wacct_alloc(size_t size, size_t align, void *user) {
    wacct *a = (wacct *)user;
    void *p;
    if (a->calls++ == a->fail_at) return NULL;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (posix_memalign(&p, align, size) != 0) return NULL;
    if ((size_t)a->live == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->ptr = (void **)realloc(a->ptr, a->cap * sizeof(void *));
        a->size = (size_t *)realloc(a->size, a->cap * sizeof(size_t));
        if (!a->ptr || !a->size) abort();
    }
    a->ptr[a->live] = p;
    a->size[a->live++] = size;
    a->bytes += (long long)size;
    return p;
}
void wacct_free(void *p, size_t size, void *user) {
    wacct *a = (wacct *)user;
    long i;
    for (i = 0; i < a->live && a->ptr[i] != p; ++i) {}
    if (i == a->live || a->size[i] != size) {
        a->mismatches++;
        fprintf(stderr, "  free of %zu bytes: %s\n", size, i == a->live ? "unknown block" : "allocated with another size");
    }
    if (i < a->live) {
        a->ptr[i] = a->ptr[a->live - 1];
        a->size[i] = a->size[--a->live];
    }
    a->bytes -= (long long)size;
    free(p);
}
void wacct_done(wacct *a) {
    free(a->ptr);
    free(a->size);
    a->ptr = NULL;
    a->size = NULL;
    a->cap = 0;
}

/* every tensor of m written by mload_write (harness.h) */
mload_result write_map_copy(const mload_map *m, const char *tag, char *out, size_t cap, mload_error *e) {
    uint64_t i, n = mload_map_count(m);
    mload_write_tensor *w = (mload_write_tensor *)calloc((size_t)n + 1, sizeof *w);
    mload_result r;
    if (!w) return MLOAD_ERR_OUT_OF_MEMORY;
    for (i = 0; i < n; ++i) {
        w[i].name = mload_map_tensor(m, i)->name;
        w[i].name_len = mload_map_tensor(m, i)->name_len;
        w[i].map = m;
        w[i].src = mload_map_tensor(m, i);
    }
    snprintf(out, cap, "/tmp/mload_%s_%d.safetensors", tag, (int)getpid());
    r = mload_write(out, w, n, NULL, e);
    free(w);
    return r;
}

#if !defined(MODELLOAD_NO_OFFLOAD)
/* one unit on the host device against ref's reads (harness.h) */
long host_unit_mismatches(const mload_map *m, const char *const *names, uint64_t n, const mload_map *ref) {
    mload_device dev;
    mload_offload_desc od;
    mload_offload *o = NULL;
    mload_error e;
    uint32_t unit = 0;
    const mload_unit_tensor *t = NULL;
    uint64_t nt = 0, i;
    long bad = -1;
    memset(&dev, 0, sizeof dev);
    memset(&od, 0, sizeof od);
    od.map = m;
    od.device_budget = 1 << 20;
    if (mload_device_create_host(&dev, &e) == MLOAD_OK && (od.device = dev, mload_offload_create(&od, &o, &e)) == MLOAD_OK &&
        mload_offload_add_unit_list(o, "u", names, n, NULL, &unit, &e) == MLOAD_OK &&
        mload_offload_acquire(o, unit, &t, &nt, &e) == MLOAD_OK) {
        for (bad = nt == n ? 0 : 1, i = 0; i < nt; ++i) {
            void *want = NULL;
            uint64_t size = 0;
            const mload_tensor *rt = mload_map_find_n(ref, t[i].tensor->name, t[i].tensor->name_len);
            if (!rt || mload_map_read_alloc(ref, rt, t[i].dtype, &want, &size, &e) != MLOAD_OK || size != t[i].nbytes ||
                memcmp(want, t[i].data, (size_t)size) != 0)
                bad++;
            mload_map_free_buffer(ref, want, size);
        }
        mload_offload_release(o, unit);
    } else {
        fprintf(stderr, "  offload set-up: %s\n", e.message);
    }
    mload_offload_destroy(o);
    mload_device_destroy(&dev);
    return bad;
}
#endif
