/* Minimal test harness for modelload.h tests.
   A test is a function; it passes when none of its CHECKs failed, and is
   counted as skipped when it calls SKIP(). main() prints the summary line
   "N passed, N failed, N skipped". */
#ifndef MLOAD_TEST_HARNESS_H
#define MLOAD_TEST_HARNESS_H
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "modelload.h"

extern int th_failed_checks; /* failed CHECKs in the current test */
extern int th_skipped;       /* the current test called SKIP */

void th_run(const char *name, void (*fn)(void));
#define RUN(fn) th_run(#fn, fn)

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            th_failed_checks++;                                             \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                   \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                  \
    do {                                                                    \
        uint64_t th_a_ = (uint64_t)(a), th_b_ = (uint64_t)(b);              \
        if (th_a_ != th_b_) {                                               \
            th_failed_checks++;                                             \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (%llu != %llu)\n", __FILE__, __LINE__, #a, #b, \
                    (unsigned long long)th_a_, (unsigned long long)th_b_);  \
        }                                                                   \
    } while (0)

#define CHECK_RES(expr, expected)                                           \
    do {                                                                    \
        mload_result th_r_ = (expr), th_e_ = (expected);                    \
        if (th_r_ != th_e_) {                                               \
            th_failed_checks++;                                             \
            fprintf(stderr, "  FAIL %s:%d: %s gave %s, expected %s\n", __FILE__, __LINE__, #expr, \
                    mload_result_string(th_r_), mload_result_string(th_e_)); \
        }                                                                   \
    } while (0)

#define SKIP(why)                                                           \
    do {                                                                    \
        th_skipped = 1;                                                     \
        fprintf(stderr, "  SKIP: %s\n", why);                               \
        return;                                                             \
    } while (0)

/* ---- helpers shared by the test files (tests/util.c) ---- */

/* A test allocator: bytes and blocks outstanding (by the sizes the library
   gives to free), frees whose size differs from the allocation's
   (mismatches); fails allocation number fail_at (-1: never). Zero it, set
   fail_at, use it (user = the wacct), then wacct_done. */
typedef struct wacct { long long bytes; long live, calls, fail_at, mismatches; void **ptr; size_t *size, cap; } wacct;
void *wacct_alloc(size_t size, size_t align, void *user);
void wacct_free(void *p, size_t size, void *user);
void wacct_done(wacct *a);

/* Writes every tensor of m (as the map reads it) with mload_write to
   /tmp/mload_TAG_PID.safetensors, whose path goes to out. */
mload_result write_map_copy(const mload_map *m, const char *tag, char *out, size_t cap, mload_error *e);
#if !defined(MODELLOAD_NO_OFFLOAD)
/* Acquires one unit of the n named tensors of m on the host device: the
   number of its tensors whose bytes differ from ref's read of the same name
   in the unit's dtype (a missing tensor counts), or -1 when a step failed. */
long host_unit_mismatches(const mload_map *m, const char *const *names, uint64_t n, const mload_map *ref);
#endif

/* A growable byte buffer. */
typedef struct tbuf { unsigned char *p; size_t n, cap; } tbuf;
void tbuf_put(tbuf *b, const void *data, size_t n);
void tbuf_free(tbuf *b);

/* Builds a safetensors image: 8-byte little-endian length of `header`
   (strlen), the header, then data_len bytes of data (data may be NULL: the
   bytes are then i & 0xFF). */
tbuf make_st(const char *header, size_t data_len, const unsigned char *data);
/* Same with an explicit header length (header may contain NUL bytes). */
tbuf make_st_n(const char *header, size_t header_len, size_t data_len, const unsigned char *data);

/* Opens a memory image; returns the result; *f is the file or NULL. */
mload_result open_mem(const tbuf *b, mload_file **f, mload_error *e);
/* Parses a header with the given data length and closes it again; returns
   the result (and fills e). */
mload_result parse_hdr(const char *header, size_t data_len, mload_error *e);

/* A header, the data length that follows it and the result parse_hdr must
   give for them. */
typedef struct hcase { const char *hdr; size_t data; mload_result want; } hcase;
/* Parses every case; each mismatch is a failed check, reported with the
   label, the case's index and its header. */
void check_hdr_cases(const char *label, const hcase *cases, size_t n);
#define CHECK_HDR_CASES(label, cases) check_hdr_cases(label, cases, sizeof(cases) / sizeof((cases)[0]))

/* Path of the official fixtures folder, or NULL when absent. */
const char *fixtures_dir(void);
/* Writes a buffer to a new temporary file; returns its path (static storage
   per call slot 0..3). */
const char *write_tmp(int slot, const void *data, size_t n);
/* fault injection for the writer (tests/util.c): the n-th rename or sync
   from now fails with EIO when th_fail_*_at == n (-1: never); the counters
   count calls */
extern long th_fail_rename_at, th_fail_fsync_at, th_renames, th_fsyncs;
extern void (*th_after_rename)(const char *to); /* called after each successful rename of the writer */

#endif
