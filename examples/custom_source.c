/* custom_source: read a checkpoint kept inside a bigger file (a game's pack
   file) through your own mload_source callbacks, then through a memory source.
   Build:  cc -std=c99 -O2 -I. examples/custom_source.c -o custom_source -pthread
   Usage:  ./custom_source PACK OFFSET LENGTH [TENSOR]
   (the checkpoint is bytes OFFSET to OFFSET+LENGTH of PACK; POSIX, for pread) */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct slice { int fd; uint64_t base, length; } slice; /* where the checkpoint lies in the pack */

static mload_result slice_read(void *user, uint64_t offset, void *dst, size_t size) {
    const slice *s = (const slice *)user;
    if (offset > s->length || size > s->length - offset) return MLOAD_ERR_IO; /* outside the slice */
    while (size > 0) { /* pread is positional: concurrent reads are safe */
        ssize_t got = pread(s->fd, dst, size, (off_t)(s->base + offset));
        if (got <= 0) return MLOAD_ERR_IO;
        dst = (char *)dst + got, offset += (uint64_t)got, size -= (size_t)got;
    }
    return MLOAD_OK;
}
static mload_result slice_size(void *user, uint64_t *out) { *out = ((const slice *)user)->length; return MLOAD_OK; }
static void slice_close(void *user) { close(((slice *)user)->fd); free(user); }

/* opens a file on src (which it owns from then on, even on failure), lists it, checksums one tensor */
static int show(const char *how, const mload_source *src, const char *name) {
    mload_file_desc d;
    mload_file *f;
    const mload_tensor *t;
    unsigned char *buf = NULL;
    uint64_t h = 5381, i; /* djb2 */
    mload_error e;
    int ok = 0;
    memset(&d, 0, sizeof d);
    d.source = src;
    if (mload_file_open(&d, &f, &e) != MLOAD_OK) { fprintf(stderr, "custom_source: %s: %s\n", how, e.message); return 0; }
    for (i = 0; (t = mload_file_tensor(f, i)) != NULL; ++i)
        printf("%s: %s %s %llu\n", how, t->name, mload_dtype_name(t->dtype), (unsigned long long)t->nbytes);
    t = name ? mload_file_find(f, name) : mload_file_tensor(f, 0);
    if (t == NULL) fprintf(stderr, "custom_source: %s: no tensor named %s\n", how, name ? name : "(any)");
    else if ((buf = (unsigned char *)malloc((size_t)t->nbytes + 1)) == NULL) fprintf(stderr, "custom_source: out of memory\n");
    else if (mload_file_read(f, t, buf, t->nbytes, &e) != MLOAD_OK) fprintf(stderr, "custom_source: %s: %s\n", how, e.message);
    else {
        for (i = 0; i < t->nbytes; ++i) h = h * 33u + buf[i];
        printf("%s: read %s, %llu bytes, checksum %llx\n", how, t->name, (unsigned long long)t->nbytes, (unsigned long long)h);
        ok = 1;
    }
    free(buf);
    mload_file_close(f);
    return ok;
}

int main(int argc, char **argv) {
    slice *s = (slice *)malloc(sizeof(slice));
    mload_source pack, mem;
    const char *name = argc > 4 ? argv[4] : NULL;
    unsigned char *copy;
    mload_error e;
    int ok = 0;

    if (argc < 4 || argc > 5) { fprintf(stderr, "usage: custom_source PACK OFFSET LENGTH [TENSOR]\n"); free(s); return 2; }
    if (!s || (s->fd = open(argv[1], O_RDONLY)) < 0) { perror(argv[1]); free(s); return 1; }
    s->base = strtoull(argv[2], NULL, 0);
    s->length = strtoull(argv[3], NULL, 0);
    memset(&pack, 0, sizeof pack); /* the optional callbacks (view, direct reads) stay NULL */
    pack.read_at = slice_read; pack.size = slice_size; pack.close = slice_close; pack.user = s;
    copy = (unsigned char *)malloc((size_t)s->length + 1); /* the memory source's bytes: must outlive its file */
    if (!copy || slice_read(s, 0, copy, (size_t)s->length) != MLOAD_OK) {
        fprintf(stderr, "custom_source: cannot copy %s bytes at %s of %s\n", argv[3], argv[2], argv[1]);
        mload_source_close(&pack); /* not handed to a file yet: ours to close */
    } else if (mload_source_open_memory(copy, s->length, NULL, &mem, &e) != MLOAD_OK) {
        fprintf(stderr, "custom_source: memory source: %s\n", e.message);
        mload_source_close(&pack);
    } else { /* each file owns its source: closing it calls slice_close (which frees s) */
        ok = show("pack", &pack, name);
        ok = show("memory", &mem, name) && ok;
    }
    free(copy);
    return ok ? 0 : 1;
}
