/* modelload.h - v0.2.0 - safetensors loading and tiered weight placement in one C header.
   MIT licence (see the end of this file). No warranty implied; use at your own risk.

   ==========================================================================
   DO THIS in exactly one C or C++ file, before any other #include:

       #define MODELLOAD_IMPLEMENTATION
       #include "modelload.h"

   Every other file just #includes "modelload.h". On Linux the implementation
   defines _GNU_SOURCE (for pread/fstat) when it is not already defined; if
   that file has included system headers before modelload.h, compile it with
   -D_GNU_SOURCE (or -D_POSIX_C_SOURCE=200809L) instead.

   ==========================================================================
   QUICK START: list the tensors of a file and read one

       mload_file_desc fd = {0};
       mload_file *f; mload_error e;
       fd.path = "model.safetensors";
       if (mload_file_open(&fd, &f, &e) != MLOAD_OK) {
           fprintf(stderr, "%s: %s\n", mload_result_string(e.code), e.message);
           return 1;
       }
       for (uint64_t i = 0; i < mload_file_count(f); ++i) {
           const mload_tensor *t = mload_file_tensor(f, i);
           printf("%s %s %llu bytes\n", t->name, mload_dtype_name(t->dtype),
                  (unsigned long long)t->nbytes);
       }
       const mload_tensor *w = mload_file_find(f, "lm_head.weight");
       void *buf = malloc(w->nbytes);
       mload_file_read(f, w, buf, w->nbytes, &e);
       mload_file_close(f);

   ==========================================================================
   THE MAP: many files, folders, sharded checkpoints, converted on the way

       const char *paths[] = {"ckpt/model.safetensors.index.json"};
       mload_map_desc md = {0};
       mload_map *m;
       md.paths = paths; md.path_count = 1;
       mload_map_open(&md, &m, &e);
       const mload_tensor *t = mload_map_find(m, "model.layers.0.mlp.up_proj.weight");
       mload_map_read(m, t, MLOAD_DTYPE_F32, dst, dst_size, &e);   // BF16 on disk -> F32

   Also: ranges and rows (mload_map_read_range/_rows, mload_split_rows),
   threaded bulk loads with progress and cancel (mload_map_load), binding a
   program's parameters (mload_map_bind), converters that rename, fuse,
   split, transpose and cast lazily (mload_map_desc.converter), the model
   fingerprint, and a writer (mload_write).

   ==========================================================================
   THE OFFLOAD MANAGER: a model bigger than the device

       mload_device dev; mload_device_create_sim(capacity, bytes_per_second, &dev, &e);
       mload_offload_desc od = {0}; od.map = m; od.device = dev;
       od.device_budget = 12u << 20; od.prefetch_depth = 1;
       mload_offload_create(&od, &o, &e);
       mload_offload_add_unit(o, "block3", &prefix, 1, &tiers, &unit, &e);
       mload_offload_acquire(o, unit, &tensors, &n, &e);  // device pointers
       ... compute ...
       mload_offload_release(o, unit);

   Units live in four tiers (offload / onload / preparing / computation,
   each DISK, HOST or DEVICE with a dtype) under a hard byte budget, with
   eviction by next use and prefetch. Guides: docs/guide.md, docs/offload.md.

   ==========================================================================
   CONTENTS: the header is a stack of numbered modules. A module uses only
   the modules above it. Each has a public part (declarations, in this
   order, after this comment) and an implementation part under the same
   number and title; grep ">>tag" to jump between them.

     1. CORE            >>core         results and errors, version, the allocator; inside: allocation,
                                       strings, checked arithmetic, the threads wrapper and the worker
     2. DTYPES AND CASTS >>dtypes      the dtype table; mload_cast: fp8 (F8_E4M3, F8_E5M2, E8M0, FNUZ),
                                       bf16 and f16 kernels (C loops; AVX2/F16C and AVX-512 picked at
                                       run time), the general path; the read-then-cast path
     3. SOURCES         >>sources      the I/O callbacks; memory and file sources; the optional
                                       capabilities: views (mmap) and direct reads (O_DIRECT)
     4. FILE            >>file         UTF-8, the strict JSON reader, the safetensors header parser,
                                       name tables, file reads; PyTorch checkpoints: the zip reader,
                                       the restricted pickle machine, strided views (MODELLOAD_NO_PICKLE)
     5. RECIPES         >>recipes      (internal) what a tensor of a map is: pieces of stored tensors
                                       or a transpose, and how one is read
     6. CONVERTER       >>converter    rules text, the callback, the builder of converted recipes
                                       (rename, concat, chunk, slice, transpose, cast, zeros...)
     7. MAP             >>map          files, folders and index.json of sharded checkpoints; the name
                                       space; LoRA adapters merged on read; reads, ranges, rows; views
     8. BULK LOADS AND BINDING >>bulk  threaded loads (progress, cancel, O_DIRECT bounce buffers);
                                       binding a program's parameters
     9. FINGERPRINT     >>fingerprint  MD5 and the model fingerprint
    10. WRITER          >>writer       safetensors files, shards and index.json, all-or-nothing for readers
    11. DEVICES         >>devices      the device table; the host and the simulated devices
    12. OFFLOAD MANAGER >>offload      units and tiers, the hard budget, eviction (next use, LRU),
                                       prefetch, group moves, stats

   Modules 6, 9, 10 and 11-12 can be left out (see CONFIGURATION). Read the
   public part to use the library; the implementation starts at the line
   "IMPLEMENTATION" below and can be skipped.

   ==========================================================================
   CONFIGURATION (define before including the implementation)

     MODELLOAD_IMPLEMENTATION  compile the implementation into this file
     MODELLOAD_STATIC          make every function static (private copy)
     MODELLOAD_API             override the declaration prefix of functions
                               (default: extern, or static with MODELLOAD_STATIC)
     MODELLOAD_ASSERT(x)       internal invariant check (default: assert(x))
     MODELLOAD_MALLOC(sz)      \
     MODELLOAD_REALLOC(p, sz)   > default allocator; define all three or none
     MODELLOAD_FREE(p)         /  (default: malloc / realloc / free)
     MODELLOAD_NO_STDIO        no file system access: only in-memory buffers
                               and user sources (mload_source) can be opened
     MODELLOAD_NO_THREADS      bulk loads, the prefetch worker and the simulated
                               device run on the calling thread (no pthreads)
     MODELLOAD_NO_CLONES       no AVX2 clones of the C conversion loops
     MODELLOAD_NO_SIMD         no hand-written (AVX2/F16C, AVX-512) conversion kernels
     MODELLOAD_NO_CONVERTER    leave out module 6 and its API (a map desc with a
                               converter is then MLOAD_ERR_UNSUPPORTED)
     MODELLOAD_NO_FINGERPRINT  leave out module 9 (MD5, mload_map_fingerprint)
     MODELLOAD_NO_WRITER       leave out module 10 (mload_write)
     MODELLOAD_NO_OFFLOAD      leave out modules 11-12 (devices, offload manager)
     MODELLOAD_NO_PICKLE       leave out the PyTorch checkpoint reader (a zip
                               archive is then MLOAD_ERR_UNSUPPORTED)
     MODELLOAD_CUDA            build the CUDA back end (mload_device_create_cuda):
                                 cc -DMODELLOAD_CUDA -isystem $CUDA_HOME/include ...
                                    -L$CUDA_HOME/lib64 -lcudart
                               (no nvcc needed; its kernel is PTX inside this file)
   A program that only parses and reads defines the four NO_ switches above
   and MODELLOAD_NO_THREADS. Every configuration declares the same types in
   the modules it keeps; define the switches identically in every file.

   Every *_desc struct also carries an mload_allocator: when both of its
   function pointers are set, the library allocates only through them; when
   both are NULL the macros above are used; one without the other is
   MLOAD_ERR_INVALID_ARGUMENT.

   ==========================================================================
   CONVENTIONS

   - Names: mload_<object>_<verb>. open/close for what reads bytes (sources,
     files, maps, views); create/destroy for what holds other resources
     (rules, devices, the offload manager). A value-returning accessor is a
     noun (mload_file_count, mload_map_tensor); a call that fills a caller's
     struct says get (mload_offload_get_stats); a predicate says is or has.
     "cast" is a change of dtype; "converter" renames and reshapes tensors.
   - Descs and option structs are zero-initialisable: 0 / NULL always means
     "the default". Every exclusive choice is an enum whose 0 is the default.
     Input structs (desc, opts) and output structs (report, stats) are
     separate; the library sets every field of an output struct.
   - Every fallible call returns an mload_result and takes an optional
     mload_error* last (may be NULL) that receives the code, a one-sentence
     message, the byte offset in the file where it applies (MLOAD_NO_OFFSET
     when none), the tensor or key involved, and the file index. There is no
     global or thread-local error state.
   - Sizes, offsets and counts of things are uint64_t. Ids (a unit, a file
     index), ranks and small settings (threads, depth) are uint32_t;
     predicates return int 0 or 1.
   - Calls that only read an object take a const handle: files and maps are
     immutable after open.
   - Strings returned by the library (tensor names, metadata) are owned by the
     object they came from and live until it is closed. Names are
     NUL-terminated; a name may contain an embedded NUL (JSON "\u0000"), so
     name_len is authoritative.

   ==========================================================================
   ERRORS (mload_result; mload_result_string() gives the class name)

   The format classes mirror the reference safetensors implementation:
     HeaderTooSmall            file shorter than 8 bytes
     HeaderTooLarge            header length N > 100,000,000
     InvalidHeaderLength       8 + N exceeds the file size
     InvalidHeader             header is not valid UTF-8
     InvalidHeaderDeserialization  header is not strict JSON of the schema
     InvalidOffset             data offsets not contiguous (names the tensor)
     ValidationOverflow        element or bit count overflows 64 bits
     MisalignedSlice           bit count not a multiple of 8
     TensorInvalidInfo         data_offsets size disagrees with dtype x shape
     MetadataIncompleteBuffer  data buffer longer or shorter than the tensors
   and the library's own:
     DuplicateKey              a tensor name, metadata key or __metadata__
                               given twice (the reference silently keeps the
                               last one; modelload.h refuses)
     InvalidIndex NotFound InvalidArgument IO CannotOpen OutOfMemory Budget
     Cancelled Unsupported Device ShapeMismatch BindMismatch InvalidConverter
   and, for PyTorch checkpoints (docs/pytorch.md):
     InvalidArchive            the zip container is malformed, or a storage's
                               entry is missing or of the wrong size
     InvalidPickle             the pickle is malformed or is not a dict of
                               tensors as torch.save writes it
     PickleRefused             the pickle uses an opcode or names a global
                               torch.save does not write for tensors (code
                               it would run under torch.load); nothing is run

   ==========================================================================
   THREAD SAFETY

   No global state. A parsed mload_file and an open mload_map are immutable
   after open: any number of threads may query them and read from them
   concurrently (mload_file_read, mload_map_read*, mload_map_load,
   mload_map_bind; the built-in POSIX and memory sources are positional;
   tested under ThreadSanitizer). A user source must be safe for concurrent
   read_at() (and read_direct()) calls if the object is shared. Closing while another
   thread uses the object is the caller's bug. Bulk loads start their own
   worker threads (pthreads; link with -pthread on glibc < 2.34).

   ==========================================================================
   STRICTNESS

   The parser accepts exactly what the reference implementation accepts, with
   deliberate differences (docs/format.md): duplicate tensor names and
   metadata keys are errors, and the two alternative forms serde would also
   take (a tensor entry as a JSON array, a dtype as {"F32": null}) are
   refused. JSON is parsed without recursion; nested unknown values deeper than
   127 levels (the root object counts as one, as in serde_json) are rejected.
   Parsing reads the 8-byte length and the header only, never tensor data.
*/
#ifndef MODELLOAD_H
#define MODELLOAD_H

#if defined(MODELLOAD_IMPLEMENTATION) && defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>

#define MODELLOAD_VERSION_MAJOR 0
#define MODELLOAD_VERSION_MINOR 4
#define MODELLOAD_VERSION_PATCH 0
/* single number: major * 10000 + minor * 100 + patch */
#define MODELLOAD_VERSION (MODELLOAD_VERSION_MAJOR * 10000 + MODELLOAD_VERSION_MINOR * 100 + MODELLOAD_VERSION_PATCH)
#define MODELLOAD_VERSION_STRING "0.4.0"

#ifndef MODELLOAD_API
#ifdef MODELLOAD_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define MODELLOAD_API static __attribute__((unused)) /* a program uses some of the API, not all */
#else
#define MODELLOAD_API static
#endif
#else
#define MODELLOAD_API extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ==========================================================================
   1. CORE                                                           >>core
   ========================================================================== */

/* X-macro: the one list of result codes and their class names. */
#define MLOAD__RESULT_LIST(X)                                                  \
    X(MLOAD_OK, "Ok")                                                          \
    X(MLOAD_ERR_HEADER_TOO_SMALL, "HeaderTooSmall")                            \
    X(MLOAD_ERR_HEADER_TOO_LARGE, "HeaderTooLarge")                            \
    X(MLOAD_ERR_INVALID_HEADER_LENGTH, "InvalidHeaderLength")                  \
    X(MLOAD_ERR_INVALID_HEADER, "InvalidHeader")                               \
    X(MLOAD_ERR_INVALID_HEADER_DESERIALIZATION, "InvalidHeaderDeserialization") \
    X(MLOAD_ERR_INVALID_OFFSET, "InvalidOffset")                               \
    X(MLOAD_ERR_VALIDATION_OVERFLOW, "ValidationOverflow")                     \
    X(MLOAD_ERR_MISALIGNED_SLICE, "MisalignedSlice")                           \
    X(MLOAD_ERR_TENSOR_INVALID_INFO, "TensorInvalidInfo")                      \
    X(MLOAD_ERR_METADATA_INCOMPLETE_BUFFER, "MetadataIncompleteBuffer")        \
    X(MLOAD_ERR_DUPLICATE_KEY, "DuplicateKey")                                 \
    X(MLOAD_ERR_INVALID_INDEX, "InvalidIndex")                                 \
    X(MLOAD_ERR_NOT_FOUND, "NotFound")                                         \
    X(MLOAD_ERR_INVALID_ARGUMENT, "InvalidArgument")                           \
    X(MLOAD_ERR_IO, "IO")                                                      \
    X(MLOAD_ERR_CANNOT_OPEN, "CannotOpen")                                     \
    X(MLOAD_ERR_OUT_OF_MEMORY, "OutOfMemory")                                  \
    X(MLOAD_ERR_BUDGET, "Budget")                                              \
    X(MLOAD_ERR_CANCELLED, "Cancelled")                                        \
    X(MLOAD_ERR_UNSUPPORTED, "Unsupported")                                    \
    X(MLOAD_ERR_DEVICE, "Device")                                              \
    X(MLOAD_ERR_SHAPE_MISMATCH, "ShapeMismatch")                               \
    X(MLOAD_ERR_BIND_MISMATCH, "BindMismatch")                                 \
    X(MLOAD_ERR_INVALID_CONVERTER, "InvalidConverter")                         \
    X(MLOAD_ERR_INVALID_ARCHIVE, "InvalidArchive")                             \
    X(MLOAD_ERR_INVALID_PICKLE, "InvalidPickle")                               \
    X(MLOAD_ERR_PICKLE_REFUSED, "PickleRefused")

#define MLOAD__RESULT_ENUM(code, str) code,
typedef enum mload_result {
    MLOAD__RESULT_LIST(MLOAD__RESULT_ENUM)
    MLOAD__RESULT_COUNT
} mload_result;
#undef MLOAD__RESULT_ENUM

/* Class name of a result ("InvalidOffset", ...); "Unknown" for values outside
   the enum. The string is static. */
MODELLOAD_API const char *mload_result_string(mload_result r);

/* Sentinel for mload_error.offset when no byte offset applies. */
#define MLOAD_NO_OFFSET UINT64_MAX

/* Optional error detail, filled by every fallible call that is given one.
   On MLOAD_OK it is left untouched. */
typedef struct mload_error {
    mload_result code;
    uint64_t offset;      /* byte offset in the file, or MLOAD_NO_OFFSET */
    uint32_t file_index;  /* which file of a multi-file object (0 for a file) */
    char tensor[128];     /* tensor name or key involved, truncated; "" if none */
    char message[256];    /* one human sentence, NUL-terminated */
} mload_error;

/* Library version as MODELLOAD_VERSION (major*10000 + minor*100 + patch). */
MODELLOAD_API uint32_t mload_version(void);
/* Library version as the static string MODELLOAD_VERSION_STRING. */
MODELLOAD_API const char *mload_version_string(void);

/* Runtime allocator. alloc returns memory aligned to `align` (a power of two)
   or NULL; free receives the size that was requested. All zero = default. */
typedef struct mload_allocator {
    void *(*alloc)(size_t size, size_t align, void *user);
    void (*free)(void *ptr, size_t size, void *user);
    void *user;
} mload_allocator;

/* ==========================================================================
   2. DTYPES AND CASTS                                             >>dtypes
   ========================================================================== */

typedef enum mload_dtype {
    MLOAD_DTYPE_INVALID = 0,
    MLOAD_DTYPE_BOOL,
    MLOAD_DTYPE_F4,          /* float4_e2m1fn, two elements per byte */
    MLOAD_DTYPE_F6_E2M3,
    MLOAD_DTYPE_F6_E3M2,
    MLOAD_DTYPE_U8,
    MLOAD_DTYPE_I8,
    MLOAD_DTYPE_F8_E5M2,
    MLOAD_DTYPE_F8_E4M3,     /* torch float8_e4m3fn: no Inf, max 448 */
    MLOAD_DTYPE_F8_E8M0,     /* float8_e8m0fnu: power-of-two scale */
    MLOAD_DTYPE_F8_E4M3FNUZ,
    MLOAD_DTYPE_F8_E5M2FNUZ,
    MLOAD_DTYPE_I16,
    MLOAD_DTYPE_U16,
    MLOAD_DTYPE_F16,
    MLOAD_DTYPE_BF16,
    MLOAD_DTYPE_I32,
    MLOAD_DTYPE_U32,
    MLOAD_DTYPE_F32,
    MLOAD_DTYPE_C64,
    MLOAD_DTYPE_F64,
    MLOAD_DTYPE_I64,
    MLOAD_DTYPE_U64,
    MLOAD_DTYPE_COUNT
} mload_dtype;

typedef enum mload_kind {
    MLOAD_KIND_INVALID = 0,
    MLOAD_KIND_BOOL,
    MLOAD_KIND_UINT,
    MLOAD_KIND_SINT,
    MLOAD_KIND_FLOAT,
    MLOAD_KIND_COMPLEX
} mload_kind;

/* Dtype from its exact, case-sensitive safetensors name (len bytes, no NUL
   needed). "F" or "f32" or "F8_E4M3FN" give MLOAD_DTYPE_INVALID. */
MODELLOAD_API mload_dtype mload_dtype_from_name(const char *name, size_t len);
/* Safetensors name of a dtype ("BF16"); NULL for invalid values. Static. */
MODELLOAD_API const char *mload_dtype_name(mload_dtype t);
/* Bits per element (4 for F4, 6 for F6_*); 0 for invalid values. */
MODELLOAD_API uint32_t mload_dtype_bits(mload_dtype t);
/* Kind of a dtype; MLOAD_KIND_INVALID for invalid values. */
MODELLOAD_API mload_kind mload_dtype_kind(mload_dtype t);

/* What an F8 destination does with a value beyond its range (mload_cast and
   every read that casts). */
typedef enum mload_f8_overflow {
    MLOAD_F8_OVERFLOW_SATURATE = 0, /* default: the largest finite value */
    MLOAD_F8_OVERFLOW_NONSAT = 1    /* NaN (F8_E4M3) or +-Inf (F8_E5M2) */
} mload_f8_overflow;

/* Converts count elements of dtype src_t at src into dtype dst_t at dst.
   src and dst may be unaligned and must not overlap. Rules (docs/format.md):
   - same dtype: a byte copy (any dtype; sub-byte dtypes need whole bytes);
   - float sources: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 F8_E8M0 F8_E4M3FNUZ
     F8_E5M2FNUZ; float destinations: the same but F8_E8M0;
   - narrowing rounds to nearest, ties to even, once, from the exact input;
     NaN stays NaN (sign kept), subnormals are kept, -0 stays -0; overflow
     gives +-Inf for F32/F16/BF16; for F8 see MLOAD_F8_OVERFLOW_SATURATE/NONSAT
     (an infinite input counts as overflow); widening is exact;
   - integers (BOOL U8 I8 U16 I16 U32 I32 U64 I64) to float: the exact value
     rounded once; float to integer: truncated toward zero, NaN -> 0, out of
     range (and +-Inf) saturates; integer to integer saturates; anything to
     BOOL is 1 when != 0 (NaN -> 1).
   Returns MLOAD_ERR_UNSUPPORTED for other pairs (C64, F4, F6_* except to
   themselves; F8_E8M0 as a destination), MLOAD_ERR_INVALID_ARGUMENT
   for NULL buffers with count > 0 or invalid dtypes. Thread-safe, no state. */
MODELLOAD_API mload_result mload_cast(void *dst, mload_dtype dst_t, const void *src, mload_dtype src_t,
                                      uint64_t count, mload_f8_overflow overflow, mload_error *err);
/* 1 when mload_cast supports the pair (dst_t <- src_t), else 0. */
MODELLOAD_API int mload_cast_supported(mload_dtype dst_t, mload_dtype src_t);

/* The conversion kernels that mload_cast and every read that casts use.
   Every level gives the same bytes as the portable C loops; the levels
   differ in speed only. */
typedef enum mload_simd {
    MLOAD_SIMD_PORTABLE = 0, /* C loops (the compiler may vectorise them) */
    MLOAD_SIMD_AVX2 = 1,     /* x86-64 with AVX2, F16C and FMA */
    MLOAD_SIMD_AVX512 = 2    /* ... and AVX-512 F, BW and VL */
} mload_simd;
/* The level in use: the best this CPU and build offer (MLOAD_SIMD_PORTABLE
   off x86-64, with MODELLOAD_NO_SIMD, MSVC), or less after mload_cast_set_simd. */
MODELLOAD_API mload_simd mload_cast_simd(void);
/* Caps the level for the whole process (tests and benchmarks compare the
   levels this way) and returns the level now in use: the lower of `limit`
   and the best one. Thread-safe; a cast already running finishes at its level. */
MODELLOAD_API mload_simd mload_cast_set_simd(mload_simd limit);
/* "portable", "avx2", "avx512"; NULL for other values. Static. */
MODELLOAD_API const char *mload_simd_name(mload_simd s);

/* ==========================================================================
   3. SOURCES                                                     >>sources
   ========================================================================== */

/* A zero-copy, read-only view of bytes (mload_view_open). It stays valid
   until mload_view_close(), even after the map and the source are closed. */
typedef struct mload_view {
    const void *data;
    uint64_t size;
    /* set by the source that made the view; NULL: nothing to release */
    void (*release)(struct mload_view *v);
    void *base;   /* for release(): what the source mapped */
    uint64_t len;
} mload_view;

/* Alignment of offsets, sizes and buffers of mload_source.read_direct. */
#define MLOAD_DIRECT_ALIGN 4096u

/* The one I/O path. read_at must fill exactly `size` bytes at `offset` or
   return an error (MLOAD_ERR_IO for a short read). size reports the current
   total size. close (optional) releases `user`. Zero-initialise the struct
   (mload_source s = {0}) and set what you offer: the optional capabilities
   are NULL when absent, and the library then does without them. The
   built-in file source offers both; the memory source offers view. */
typedef struct mload_source {
    mload_result (*read_at)(void *user, uint64_t offset, void *dst, size_t size);
    mload_result (*size)(void *user, uint64_t *out_size);
    void (*close)(void *user);
    void *user;
    /* optional: a read-only view of bytes [offset, offset + size) (mmap, or a
       pointer into memory) that may outlive the source; sets out->release
       when the view must be released. Used by mload_view_open. */
    mload_result (*view)(void *user, uint64_t offset, uint64_t size, mload_view *out);
    /* optional: a read that bypasses the page cache (O_DIRECT). offset, size
       and dst are multiples of MLOAD_DIRECT_ALIGN; *got may be less than
       size only at the end of the data; MLOAD_ERR_UNSUPPORTED when direct
       I/O is refused (the caller falls back to read_at). Used by bulk loads
       with MLOAD_IO_DIRECT. Must be safe to call from several threads. */
    mload_result (*read_direct)(void *user, uint64_t offset, void *dst, size_t size, size_t *got);
} mload_source;

/* A source over caller memory. The bytes are not copied and must outlive
   every object that uses the source. `a` may be NULL (default allocator).
   Release with mload_source_close(). */
MODELLOAD_API mload_result mload_source_open_memory(const void *data, uint64_t size, const mload_allocator *a,
                                                    mload_source *out, mload_error *err);
/* A source over a file opened read-only (POSIX pread; stdio elsewhere).
   Returns MLOAD_ERR_CANNOT_OPEN when the path cannot be opened or is not
   a regular file (a directory, FIFO or device is refused without blocking).
   MLOAD_ERR_UNSUPPORTED under MODELLOAD_NO_STDIO. */
MODELLOAD_API mload_result mload_source_open_path(const char *path,
                                             const mload_allocator *a,
                                             mload_source *out,
                                             mload_error *err);
/* Calls s->close (when set) and zeroes *s. NULL is ignored. */
MODELLOAD_API void mload_source_close(mload_source *s);

/* ==========================================================================
   4. FILE                                                           >>file
   ========================================================================== */

typedef struct mload_tensor {
    const char *name;      /* NUL-terminated, may contain NUL: see name_len */
    size_t name_len;
    mload_dtype dtype;
    uint32_t rank;         /* number of dims; 0 for a scalar */
    const uint64_t *shape; /* rank dims (never NULL, even for rank 0) */
    uint64_t numel;        /* product of the dims (1 for a scalar) */
    uint64_t nbytes;       /* numel * bits / 8 */
    uint64_t offset;       /* absolute byte offset in the source */
    uint32_t file_index;   /* which file of a map; 0 for a single file */
} mload_tensor;

typedef struct mload_kv {
    const char *key;   size_t key_len;   /* NUL-terminated, see key_len */
    const char *value; size_t value_len;
} mload_kv;

typedef struct mload_file_desc {
    /* exactly one of: */
    const char *path;           /* a file path (not with MODELLOAD_NO_STDIO) */
    const void *data;           /* caller memory, not copied: must outlive */
    uint64_t data_size;         /*   the file object */
    const mload_source *source; /* a user source: the file takes ownership
                                   and calls its close, on failure too */
    mload_allocator allocator;
} mload_file_desc;

typedef struct mload_file mload_file;

/* The container formats mload_file_open reads (told apart by their first
   bytes, never by the file name). */
typedef enum mload_format {
    MLOAD_FORMAT_SAFETENSORS = 0,
    MLOAD_FORMAT_PYTORCH = 1 /* torch.save's zip (.bin, .pt, .pth, .ckpt); not under MODELLOAD_NO_PICKLE */
} mload_format;

/* Opens and fully validates a safetensors file: the 8-byte length and the
   header are read, never the data. On success *out owns a parsed table; on
   failure *out is NULL, nothing leaks and err (if given) says why.
   A file that starts as a zip archive is read as a PyTorch checkpoint
   (torch.save, torch >= 1.6; docs/pytorch.md): its central directory and
   its pickle are read (the pickle on a restricted machine that runs no
   code), never the tensor data; tensors are listed in the same table. */
MODELLOAD_API mload_result mload_file_open(const mload_file_desc *desc,
                                           mload_file **out, mload_error *err);
/* Frees the file and closes its source. NULL is ignored. */
MODELLOAD_API void mload_file_close(mload_file *f);

/* Number of tensors. */
MODELLOAD_API uint64_t mload_file_count(const mload_file *f);
/* Tensor i, in file order (ascending data offset; ties keep header order).
   NULL when i >= count. */
MODELLOAD_API const mload_tensor *mload_file_tensor(const mload_file *f, uint64_t i);
/* Tensor by exact name (a C string): O(1). NULL when absent. */
MODELLOAD_API const mload_tensor *mload_file_find(const mload_file *f, const char *name);
/* Tensor by exact name of len bytes (may contain NUL). NULL when absent. */
MODELLOAD_API const mload_tensor *mload_file_find_n(const mload_file *f, const char *name, size_t len);
/* Index of tensor t in this file's table (t must come from this file). */
MODELLOAD_API uint64_t mload_file_tensor_index(const mload_file *f, const mload_tensor *t);

/* Number of __metadata__ entries (0 when absent or null). */
MODELLOAD_API uint64_t mload_file_metadata_count(const mload_file *f);
/* Metadata entry i in header order; NULL when i >= count. */
MODELLOAD_API const mload_kv *mload_file_metadata(const mload_file *f, uint64_t i);
/* Metadata value by exact key (C string); NULL when absent. */
MODELLOAD_API const mload_kv *mload_file_metadata_find(const mload_file *f, const char *key);
/* 1 when the header had a __metadata__ object (even empty), else 0. */
MODELLOAD_API int mload_file_has_metadata(const mload_file *f);

/* Header length N as stored in the first 8 bytes (PyTorch: the size of
   the pickle, data.pkl). */
MODELLOAD_API uint64_t mload_file_header_size(const mload_file *f);
/* Absolute offset of the data buffer: 8 + N (PyTorch: 0; each tensor's
   offset is absolute anyway). */
MODELLOAD_API uint64_t mload_file_data_offset(const mload_file *f);
/* What the file is: safetensors, or a PyTorch checkpoint (torch.save's zip
   format; docs/pytorch.md). */
MODELLOAD_API mload_format mload_file_format(const mload_file *f);
/* A PyTorch tensor that is a non-contiguous view of its storage: its rank
   strides, in elements (its offset is its first element's); NULL for a
   row-major tensor, the only kind safetensors has. Reads of a strided
   tensor gather its elements (views of it are refused). */
MODELLOAD_API const uint64_t *mload_file_strides(const mload_file *f, const mload_tensor *t);
/* Total size of the source when it was opened. */
MODELLOAD_API uint64_t mload_file_size(const mload_file *f);

/* Reads tensor t's raw bytes into dst (dst_size >= t->nbytes, else
   MLOAD_ERR_INVALID_ARGUMENT). t must come from this file. A file that
   shrank since open gives MLOAD_ERR_IO. Safe to call from several threads. */
MODELLOAD_API mload_result mload_file_read(const mload_file *f, const mload_tensor *t,
                                           void *dst, uint64_t dst_size,
                                           mload_error *err);
/* Reads bytes [byte_begin, byte_begin + size) of tensor t's data into dst.
   The range must lie inside the tensor (else MLOAD_ERR_INVALID_ARGUMENT). */
MODELLOAD_API mload_result mload_file_read_bytes(const mload_file *f, const mload_tensor *t,
                                                 uint64_t byte_begin, uint64_t size,
                                                 void *dst, mload_error *err);

/* ==========================================================================
   6. CONVERTER                                                 >>converter
   ========================================================================== */

#if !defined(MODELLOAD_NO_CONVERTER)
/* A converter presents a map's tensors under the names and layouts a
   program expects, lazily: every read computes the converted tensor from
   the source bytes it needs. Rules apply in the order given, each to the
   whole name space (see docs/converters.md); in names, "{n}" matches a
   decimal layer index and substitutes it. */
typedef enum mload_rule_verb {
    MLOAD_RULE_INVALID = 0,
    /* names: a = prefix / pattern / old text, b = new text, n1 = index bound */
    MLOAD_RULE_STRIP_PREFIX,   /* strip-prefix P: remove P where a name starts with it */
    MLOAD_RULE_ADD_PREFIX,     /* add-prefix P: put P before every name */
    MLOAD_RULE_REPLACE_PREFIX, /* replace-prefix OLD NEW: re-root names starting with OLD */
    MLOAD_RULE_KEEP,           /* keep PREFIX: drop every name not starting with PREFIX */
    MLOAD_RULE_DROP,           /* drop PREFIX: drop every name starting with PREFIX */
    MLOAD_RULE_KEEP_NAME,      /* keep-name NAME: drop every other name */
    MLOAD_RULE_DROP_NAME,      /* drop-name NAME: drop exactly NAME */
    MLOAD_RULE_DROP_INDEX,     /* drop-index PATTERN N: drop names matching PATTERN ({n} inside) with n >= N */
    MLOAD_RULE_RENAME,         /* rename FROM TO: exact name, or a {n} pattern */
    MLOAD_RULE_REPLACE,        /* replace OLD NEW: every occurrence of OLD inside names */
    MLOAD_RULE_REPLACE_SUFFIX, /* replace-suffix OLD NEW: names ending with OLD */
    /* values: a = source, b = target (sources[] for concat) */
    MLOAD_RULE_ALIAS,          /* alias SRC TARGET: same bytes under a second name (tied weights) */
    MLOAD_RULE_CONCAT,         /* concat TARGET SRC1 SRC2 ...: along dim 0 (a = TARGET) */
    MLOAD_RULE_CHUNK,          /* chunk SRC N I TARGET: the I-th of N equal parts of dim 0 */
    MLOAD_RULE_SLICE,          /* slice SRC BEGIN END TARGET: rows [BEGIN, END) of dim 0 */
    MLOAD_RULE_SWAP_HALVES,    /* swap-halves SRC TARGET: the two halves of dim 0 exchanged */
    MLOAD_RULE_TRANSPOSE,      /* transpose SRC TARGET: 2-D transpose */
    MLOAD_RULE_RESHAPE,        /* reshape NAME [d0,d1,...]: same elements, new shape (metadata) */
    MLOAD_RULE_FLATTEN,        /* flatten NAME: rank 1 */
    MLOAD_RULE_SQUEEZE,        /* squeeze NAME: drop dims of size 1 */
    MLOAD_RULE_CAST,           /* cast NAME DTYPE: the tensor reads as DTYPE */
    MLOAD_RULE_ZEROS           /* zeros TARGET DTYPE [d0,...]: a tensor of zeros (a = TARGET) */
} mload_rule_verb;

typedef struct mload_rule {
    mload_rule_verb verb;
    const char *a, *b;
    const char *const *sources; /* concat: source names */
    uint64_t source_count;
    uint64_t n1, n2;            /* chunk: N, I; slice: BEGIN, END; drop-index: N */
    mload_dtype dtype;          /* cast, zeros */
    uint32_t rank;              /* reshape, zeros */
    const uint64_t *shape;
    uint32_t line;              /* source line of a parsed rule (0 = built in C) */
} mload_rule;

/* Parsed rules text (one rule per line, '#' starts a comment, tokens
   separated by blanks, shapes written [d0,d1,...] without blanks). The
   object owns the strings its rules point to. A line that does not parse is
   MLOAD_ERR_INVALID_CONVERTER naming the line (err->offset = its byte
   offset in text). */
typedef struct mload_rules mload_rules;
MODELLOAD_API mload_result mload_rules_create(const char *text, size_t len, const mload_allocator *a, mload_rules **out,
                                             mload_error *err);
MODELLOAD_API void mload_rules_destroy(mload_rules *r);
/* The parsed rules (owned by r) and their number. */
MODELLOAD_API const mload_rule *mload_rules_list(const mload_rules *r, uint64_t *count);

/* The callback: called once per source tensor, before the rules; it emits
   zero (drop), one (rename) or several (alias) targets with
   mload_emitter_add. Without a callback every tensor keeps its name. */
typedef struct mload_emitter mload_emitter;
typedef mload_result (*mload_converter_fn)(void *user, const mload_tensor *src, mload_emitter *em);
/* Emits `target` for the current source: recipe NULL = the source's bytes
   under that name; else a value rule (ALIAS, CONCAT, CHUNK, SLICE,
   SWAP_HALVES, TRANSPOSE, CAST, ZEROS) whose source names refer to the
   source name space (its target name is ignored: `target` is used). */
MODELLOAD_API mload_result mload_emitter_add(mload_emitter *em, const char *target, const mload_rule *recipe,
                                             mload_error *err);

typedef struct mload_converter {
    const mload_rule *rules;
    uint64_t rule_count;
    mload_converter_fn callback; /* optional */
    void *user;
} mload_converter;

#endif /* !MODELLOAD_NO_CONVERTER */

/* ==========================================================================
   7. MAP                                                             >>map
   ========================================================================== */

/* The map (DiskMap): one lazy name space over many safetensors files. */
typedef struct mload_map mload_map;

/* What the map does with a tensor name found in two files. */
typedef enum mload_dup_policy {
    MLOAD_DUP_ERROR = 0,    /* default: MLOAD_ERR_DUPLICATE_KEY */
    MLOAD_DUP_LAST_WINS = 1 /* the later file's tensor wins (what the Python loader does) */
} mload_dup_policy;

/* Where a read that casts (as != the stored dtype) takes the stored bytes from. */
typedef enum mload_cast_read {
    MLOAD_CAST_READ_COPY = 0, /* default: read_at in pieces of 768 KiB into scratch, each cast while in cache */
    MLOAD_CAST_READ_VIEW = 1  /* cast straight from a view of the stored bytes where the source offers one
                                 (mmap for files, the buffer itself for memory): no copy, so a read of a
                                 warm file costs about the cast alone (the copy adds 20-100%); a file
                                 truncated meanwhile raises SIGBUS (see mload_view_open). Sources
                                 without views, and refused views, copy. */
} mload_cast_read;

/* A LoRA adapter merged into the map's tensors on read (docs/lora.md).
   Layouts recognised by name: PEFT/diffusers (MODULE.lora_A.weight,
   MODULE.lora_B.weight), kohya/sd-scripts (lora_unet_..., lora_te_...:
   MODULE.lora_down.weight, MODULE.lora_up.weight, MODULE.alpha, with
   underscores standing for the dots of the base names) and older diffusers
   (MODULE.lora.down.weight, MODULE.lora.up.weight). A pair (A: down,
   rank x ..., B: up, out x rank) adds scale * alpha / rank * (B A) to the
   base tensor MODULE.weight, linear (2-D) or convolution (4-D, 1x1 or kxk
   down), accumulated in F32 and then converted to the dtype read. */
#define MLOAD_LORA_LENIENT 1u /* adapter tensors matching no base tensor or layout are counted, not an error */
typedef struct mload_lora {
    const char *path;       /* the adapter: a file (safetensors or PyTorch), a folder or an index.json */
    double scale;           /* the user's scale; 0 adds nothing (set it: 1.0 is the adapter as trained) */
    double alpha;           /* alpha of pairs without a .alpha tensor (PEFT keeps it in adapter_config.json); 0 = their rank */
    const struct mload_converter *converter; /* optional: renames over the target names MODULE.weight
                                                (kohya: the MODULE after lora_unet_ / lora_te_..., underscores kept) */
    uint32_t flags;         /* MLOAD_LORA_LENIENT */
} mload_lora;

typedef struct mload_lora_info {
    uint64_t pairs;               /* pairs merged into base tensors */
    uint64_t unmatched;           /* adapter tensors left out (lenient mode) */
    const char *first_unmatched;  /* the first of them, or NULL; lives until the map is closed */
} mload_lora_info;

typedef struct mload_map_desc {
    /* each path is a .safetensors file, a folder (through its index when it
       holds exactly one *.safetensors.index.json, else every *.safetensors
       in it, sorted by name; an entry so named that is not a readable
       regular file, such as a dangling symlink, is MLOAD_ERR_CANNOT_OPEN
       naming it) or a *.index.json of a sharded checkpoint; files are
       ordered as given (this order decides MLOAD_DUP_LAST_WINS) */
    const char *const *paths;
    uint64_t path_count;
    /* user sources, after the paths; the map takes them over and closes
       them (on failure too) */
    const mload_source *sources;
    uint64_t source_count;
    mload_dup_policy duplicates;
    uint32_t threads;               /* default worker count of bulk loads; 0 = online CPUs (<= 16) */
    mload_f8_overflow f8_overflow;  /* used by every read that casts */
    mload_allocator allocator;
    /* optional: present the converted name space (the rules and strings it
       points to need only live during mload_map_open) */
    const struct mload_converter *converter;
    /* optional: known models; the first entry whose fingerprint matches the
       files' gives the converter (then `converter` is not used); with no
       match, `converter` applies. Needs module 9 (else Unsupported). */
    const struct mload_model_entry *models;
    uint64_t model_count;
    mload_cast_read cast_read;      /* where reads that cast take the stored bytes from */
    /* optional: LoRA adapters merged on read into the (converted) name
       space, in this order; the adapter files stay open with the map */
    const mload_lora *loras;
    uint64_t lora_count;
} mload_map_desc;

/* Opens every file (headers only) and builds the name space. Index checks:
   shard names must be plain file names (no '/', '\\', "..", absolute or
   empty), every mapped tensor must be in its shard, every tensor of a shard
   must be mapped to it, and no tensor may be in two shards
   (MLOAD_ERR_INVALID_INDEX, naming the tensor or file). The index's
   metadata.total_size is compared, not trusted: see
   mload_map_declared_size(). Errors carry err->file_index. */
MODELLOAD_API mload_result mload_map_open(const mload_map_desc *desc, mload_map **out, mload_error *err);
/* Closes every file. Views (mload_view) stay valid; buffers from
   mload_map_read_alloc / load_arena / bind must be freed before. NULL ok. */
MODELLOAD_API void mload_map_close(mload_map *m);

/* 1 when t (of map m) is a file tensor read as it lies on disk: t->offset
   and t->file_index locate its bytes. 0 for a tensor a converter computes
   (concat, slice, transpose, cast, zeros...): t->offset is then 0 and
   views are unsupported. */
MODELLOAD_API int mload_map_is_direct(const mload_map *m, const mload_tensor *t);
/* Number of tensors in the name space. */
MODELLOAD_API uint64_t mload_map_count(const mload_map *m);
/* Tensor i in name order (bytewise, stable); NULL when i >= count. Its
   file_index says which file holds it; the pointer lives until close. */
MODELLOAD_API const mload_tensor *mload_map_tensor(const mload_map *m, uint64_t i);
/* Exact-name lookup, O(1); NULL when absent. */
MODELLOAD_API const mload_tensor *mload_map_find(const mload_map *m, const char *name);
MODELLOAD_API const mload_tensor *mload_map_find_n(const mload_map *m, const char *name, size_t len);
/* Tensors whose name starts with prefix form one range of the name order:
   returns its length and sets *first (to count when none). */
MODELLOAD_API uint64_t mload_map_find_prefix(const mload_map *m, const char *prefix, uint64_t *first);
/* Files of the map, in open order; path is NULL for user sources. */
MODELLOAD_API uint64_t mload_map_file_count(const mload_map *m);
MODELLOAD_API const mload_file *mload_map_file(const mload_map *m, uint64_t i);
MODELLOAD_API const char *mload_map_file_path(const mload_map *m, uint64_t i);
/* Sum of nbytes of the name space. */
MODELLOAD_API uint64_t mload_map_data_size(const mload_map *m);
/* The F8 overflow mode every cast of this map uses (mload_map_desc.f8_overflow). */
MODELLOAD_API mload_f8_overflow mload_map_f8_overflow(const mload_map *m);
/* metadata.total_size of the index.json files (summed, saturating), or
   UINT64_MAX when no index gave one: mload_map_has_declared_size() tells
   the two apart. Differing from mload_map_data_size() is not an error
   (writers disagree on it); a caller may warn. */
MODELLOAD_API uint64_t mload_map_declared_size(const mload_map *m);
/* 1 when an index.json gave metadata.total_size, else 0. */
MODELLOAD_API int mload_map_has_declared_size(const mload_map *m);
/* What adapter i of mload_map_desc.loras did: pairs merged, tensors left
   out (lenient mode). MLOAD_ERR_INVALID_ARGUMENT when i >= lora_count. */
MODELLOAD_API mload_result mload_map_lora_info(const mload_map *m, uint64_t i, mload_lora_info *out);

/* Reads tensor t (from this map) into dst, converted to dtype `as`
   (MLOAD_DTYPE_INVALID = as stored) with the map's f8_overflow.
   dst_size must hold numel elements of `as`. Unsupported pairs give
   MLOAD_ERR_UNSUPPORTED before anything is read. Uses at most 256 KiB of
   scratch when converting. Thread-safe: many threads may read one map. */
MODELLOAD_API mload_result mload_map_read(const mload_map *m, const mload_tensor *t, mload_dtype as, void *dst,
                                          uint64_t dst_size, mload_error *err);
/* Elements [first, first + count) of the flattened tensor. For sub-byte
   dtypes (F4, F6_*) the range must start and end on whole bytes. */
MODELLOAD_API mload_result mload_map_read_range(const mload_map *m, const mload_tensor *t, uint64_t first, uint64_t count,
                                                mload_dtype as, void *dst, uint64_t dst_size, mload_error *err);
/* Rows [row_begin, row_begin + row_count) of dim 0 (rank >= 1). */
MODELLOAD_API mload_result mload_map_read_rows(const mload_map *m, const mload_tensor *t, uint64_t row_begin,
                                               uint64_t row_count, mload_dtype as, void *dst, uint64_t dst_size,
                                               mload_error *err);
/* Even split of `rows` over `world` ranks: rank r gets rows
   [*begin, *begin + *count); the first rows % world ranks get one row more
   (torch.tensor_split's rule). world 0 is treated as 1; rank >= world
   gets count 0. */
MODELLOAD_API void mload_split_rows(uint64_t rows, uint64_t rank, uint64_t world, uint64_t *begin, uint64_t *count);
/* ZeRO-3's flat partition of numel elements over `world` ranks: each rank
   holds *padded = ceil(numel / world) elements, of which elements
   [*first, *first + *count) of the flattened tensor are real and the rest
   padding (the last ranks are short). [10,3] over 4 ranks: [0,8) [8,16)
   [16,24) [24,30) + 2. world 0 is treated as 1. */
MODELLOAD_API void mload_split_flat(uint64_t numel, uint64_t rank, uint64_t world, uint64_t *first, uint64_t *count,
                                    uint64_t *padded);
/* Reads into memory the library allocates with the map's allocator
   (64-byte aligned). Free it with mload_map_free_buffer(m, *out, *out_size). */
MODELLOAD_API mload_result mload_map_read_alloc(const mload_map *m, const mload_tensor *t, mload_dtype as, void **out,
                                                uint64_t *out_size, mload_error *err);
/* Frees memory from mload_map_read_alloc, mload_map_load_arena or a
   binding the library allocated. NULL is ignored. */
MODELLOAD_API void mload_map_free_buffer(const mload_map *m, void *p, uint64_t size);

/* A zero-copy, read-only view of a stored tensor's bytes, through its
   source's view capability: files opened by path (mmap of the tensor's
   pages only), memory buffers (a pointer), user sources that offer it;
   MLOAD_ERR_UNSUPPORTED otherwise and for tensors a converter computes.
   A file truncated while viewed raises SIGBUS on access, so the default
   read path is pread. */
MODELLOAD_API mload_result mload_view_open(const mload_map *m, const mload_tensor *t, mload_view *out, mload_error *err);
MODELLOAD_API void mload_view_close(mload_view *v);

/* ==========================================================================
   8. BULK LOADS AND BINDING                                         >>bulk
   ========================================================================== */

/* One read of a bulk load: elements [first, first + count) of tensor
   (count 0 = the whole tensor) converted to `as` into dst. */
typedef struct mload_load_item {
    const mload_tensor *tensor;
    mload_dtype as;    /* MLOAD_DTYPE_INVALID = as stored */
    void *dst;         /* with mload_map_load_arena: set by the call */
    uint64_t dst_size;
    uint64_t first, count;
} mload_load_item;

/* Progress: called after each chunk with the bytes done and the total, from
   the worker that finished it (calls are serialised). Return nonzero to
   cancel: the load stops and returns MLOAD_ERR_CANCELLED. */
typedef int (*mload_progress_fn)(void *user, uint64_t done_bytes, uint64_t total_bytes);

/* How bulk loads read files. */
typedef enum mload_io {
    MLOAD_IO_DEFAULT = 0, /* positional reads through the page cache */
    MLOAD_IO_DIRECT = 1   /* O_DIRECT reads through aligned bounce buffers (cold files), where the
                             source offers direct reads; falls back to MLOAD_IO_DEFAULT elsewhere */
} mload_io;

typedef struct mload_load_opts {
    uint32_t threads;     /* 0 = the map's default; 1 = the calling thread only */
    mload_io io;
    uint64_t chunk_bytes; /* source bytes per request; 0 = 8 MiB (at most 1 GiB) */
    mload_progress_fn progress;
    void *progress_user;
} mload_load_opts;

/* Reads n items with worker threads (opts may be NULL). Every item is
   checked before anything is read. On failure the first error is reported;
   destinations may be partly written. */
MODELLOAD_API mload_result mload_map_load(const mload_map *m, mload_load_item *items, uint64_t n,
                                          const mload_load_opts *opts, mload_error *err);
/* Same, into one allocation: each item's dst/dst_size are set inside it
   (64-byte aligned). Free it with mload_map_free_buffer(m, *arena, *arena_size). */
MODELLOAD_API mload_result mload_map_load_arena(const mload_map *m, mload_load_item *items, uint64_t n,
                                                const mload_load_opts *opts, void **arena, uint64_t *arena_size,
                                                mload_error *err);

/* How a binding with shard_world > 1 takes its rank's share. */
typedef enum mload_shard_mode {
    MLOAD_SHARD_ROWS = 0, /* default: rows of dim 0 (mload_split_rows); shape checks the slice */
    MLOAD_SHARD_FLAT = 1  /* ZeRO-3: the rank's padded flat buffer (mload_split_flat), padding
                             zeroed; dst holds `padded` elements; shape, if given, is [padded] */
} mload_shard_mode;

/* A tensor a program expects (the C analogue of load_state_dict): inputs
   only, so a model's table of bindings can be const. */
typedef struct mload_binding {
    const char *name;
    mload_dtype dtype;           /* wanted dtype; MLOAD_DTYPE_INVALID = as stored */
    uint32_t rank;               /* expected shape (of the slice, with shard_world > 1) ... */
    const uint64_t *shape;       /* ... NULL = not checked */
    void *dst;                   /* NULL = the library allocates (see mload_bind_result) */
    uint64_t dst_size;
    uint32_t shard_rank, shard_world; /* world > 1: only this rank's share (see shard_mode) */
    mload_shard_mode shard_mode;
} mload_binding;

/* What happened to one binding (outputs: the library sets every field). */
typedef struct mload_bind_result {
    mload_result status;         /* OK, NOT_FOUND, SHAPE_MISMATCH, UNSUPPORTED (dtype), INVALID_ARGUMENT (dst too small) */
    const mload_tensor *tensor;  /* the matched tensor, or NULL */
    void *dst;                   /* the binding's dst, or the buffer allocated for it */
    uint64_t dst_size;
    int allocated;               /* 1: dst was allocated: free it with mload_map_free_buffer(m, dst, dst_size) */
} mload_bind_result;

typedef enum mload_bind_mode {
    MLOAD_BIND_STRICT = 0, /* default: any missing, mismatched or unexpected tensor fails before writing */
    MLOAD_BIND_LENIENT = 1 /* load what matches, report the rest */
} mload_bind_mode;

/* Inputs of a bind (zero = strict, the map's default load options). */
typedef struct mload_bind_opts {
    mload_bind_mode mode;
    mload_load_opts load;
    const mload_tensor **unexpected; /* optional caller array, filled with up to */
    uint64_t unexpected_cap;         /* unexpected_cap unexpected tensors (name order) */
} mload_bind_opts;

/* Outputs of a bind: the library sets every field. */
typedef struct mload_bind_report {
    uint64_t loaded, missing, mismatched, unexpected;
} mload_bind_report;

/* Fills every binding through the bulk path; results (n entries) says what
   happened to each. Strict mode returns MLOAD_ERR_BIND_MISMATCH (nothing
   written, nothing allocated) when the report is not clean; lenient mode
   loads the matching ones and returns OK. opts, results and report may be
   NULL, except that results is required when a binding asks the library to
   allocate (dst NULL). On a failed load nothing stays allocated. */
MODELLOAD_API mload_result mload_map_bind(const mload_map *m, const mload_binding *b, uint64_t n, const mload_bind_opts *opts,
                                          mload_bind_result *results, mload_bind_report *report, mload_error *err);


/* ==========================================================================
   9. FINGERPRINT                                             >>fingerprint
   ========================================================================== */

#if !defined(MODELLOAD_NO_FINGERPRINT)
/* The model fingerprint of the Python loader: MD5 (hex, lower case,
   NUL-terminated) of the sorted, comma-joined list holding, per tensor,
   "name:d0_d1_..." and "name", over the map's names (the converted ones
   when it has a converter). Reads no tensor data. */
MODELLOAD_API mload_result mload_map_fingerprint(const mload_map *m, char out[33], mload_error *err);

enum {
    MLOAD_FP_NO_SHAPES = 1,    /* hash the names only (the original's variant without shapes) */
    MLOAD_FP_STORED_NAMES = 2  /* hash the files' names, before the converter (the original hashes
                                  the state dict as loaded); without it, the map's names */
};
/* mload_map_fingerprint with MLOAD_FP_* flags (0: the same result).
   MLOAD_ERR_INVALID_ARGUMENT for unknown flags. */
MODELLOAD_API mload_result mload_map_fingerprint_ex(const mload_map *m, uint32_t flags, char out[33], mload_error *err);

/* One entry of a caller's table of known models (mload_map_desc.models):
   when the files' fingerprint (their stored names, with or without shapes
   as flags says; MLOAD_FP_STORED_NAMES is implied) equals `fingerprint`,
   the map opens with `converter` (the original maps the fingerprint to a
   model class and its converter). */
typedef struct mload_model_entry {
    const char *fingerprint;                 /* 32 lower-case hex digits */
    uint32_t flags;                          /* MLOAD_FP_NO_SHAPES or 0 */
    const struct mload_converter *converter; /* NULL: the stored names */
    const char *name;                        /* the caller's label, unused by the library */
} mload_model_entry;

/* The index of the models entry mload_map_open matched, or UINT64_MAX
   (no table, no match). */
MODELLOAD_API uint64_t mload_map_model(const mload_map *m);
#endif /* !MODELLOAD_NO_FINGERPRINT */

/* ==========================================================================
   10. WRITER                                                      >>writer
   ========================================================================== */

#if !defined(MODELLOAD_NO_WRITER)
/* One tensor to write: from caller memory (data, in `dtype`) or from a map
   (src, converted from its stored dtype to `dtype`). */
typedef struct mload_write_tensor {
    const char *name;
    size_t name_len;        /* 0 = strlen(name); set it for names holding a NUL byte */
    mload_dtype dtype;      /* MLOAD_DTYPE_INVALID = the source's dtype */
    uint32_t rank;          /* for data: the shape (ignored for src) */
    const uint64_t *shape;
    const void *data;
    const mload_map *map;
    const mload_tensor *src;
} mload_write_tensor;

typedef struct mload_write_opts {
    uint64_t shard_bytes;       /* 0 = one file; else shards of at most this many data bytes
                                   (a larger tensor gets a shard of its own) + an index.json */
    const mload_kv *metadata;   /* __metadata__ entries (copied into every shard), counted by
                                   key_len/value_len: no NUL terminator needed */
    uint64_t metadata_count;
    mload_allocator allocator;  /* tensors read from a map convert with the map's f8_overflow */
} mload_write_opts;

/* Writes a safetensors file the official library reads: header padded with
   spaces to a multiple of 8, tensors sorted by element size (largest first)
   then name, so each is aligned to its element size. With shard_bytes,
   path "DIR/NAME.safetensors" gives DIR/NAME-00001-of-0000N.safetensors ...
   (or NAME-00001-of-0000N-b.safetensors ... when the current index uses
   the first names) and DIR/NAME.safetensors.index.json. Readers of the
   index or the folder see the complete old or the complete new checkpoint
   after a failure or a crash at any step: the new index is renamed in last
   and the old files removed after (docs/threat-model.md). A symlink or a
   read-only file at a destination is not replaced (MLOAD_ERR_CANNOT_OPEN);
   a rewrite keeps the replaced file's mode.
   MLOAD_ERR_UNSUPPORTED under MODELLOAD_NO_STDIO. */
MODELLOAD_API mload_result mload_write(const char *path, const mload_write_tensor *tensors, uint64_t n,
                                       const mload_write_opts *opts, mload_error *err);
#endif /* !MODELLOAD_NO_WRITER */

/* ==========================================================================
   11. DEVICES                                                    >>devices
   ========================================================================== */

#if !defined(MODELLOAD_NO_OFFLOAD)
/* A compute device behind one small table. Copies may be asynchronous: they
   return a fence, and the source/destination must stay valid until
   wait(fence) returns. Fences of one device complete in order; convert is
   complete when it returns. The offload manager calls a device from the
   caller's thread and from its prefetch worker, so a back end must be
   thread-safe (the built-in ones are). A user can plug in their own
   (Vulkan, Metal, ...); mload_device_create_cuda fills this same table. */
typedef struct mload_device {
    const char *name;
    mload_result (*alloc)(void *user, uint64_t size, uint64_t align, void **ptr);
    void (*free)(void *user, void *ptr, uint64_t size);
    mload_result (*upload)(void *user, void *dst_device, const void *src_host, uint64_t size, uint64_t *fence);
    mload_result (*download)(void *user, void *dst_host, const void *src_device, uint64_t size, uint64_t *fence);
    mload_result (*wait)(void *user, uint64_t fence);
    /* optional: dtype conversion between two device buffers (ordered after
       earlier copies); NULL = the manager converts on the host before upload */
    mload_result (*convert)(void *user, void *dst, mload_dtype dst_t, const void *src, mload_dtype src_t, uint64_t count);
    /* optional: free and total bytes; used when a budget is derived from it */
    mload_result (*mem_info)(void *user, uint64_t *free_bytes, uint64_t *total_bytes);
    /* optional: releases the back end (mload_device_destroy calls it) */
    void (*destroy)(void *user);
    void *user;
    /* ---- added in 0.3, after user (a table zero-initialised, or
       initialised by member name, keeps working); each optional, zero =
       absent ---- */
    /* host memory the device copies from fastest (CUDA: page-locked), for
       the manager's staging buffers and host-tier copies and the staging of
       mload_map_load_device; absent: the caller's allocator */
    mload_result (*host_alloc)(void *user, uint64_t size, void **ptr);
    void (*host_free)(void *user, void *ptr, uint64_t size);
    /* dtype conversion between two device buffers, queued after the copies
       before it, with mload_cast's F8 overflow mode (flags: a
       mload_f8_overflow); *fence as for upload. Used instead of convert
       when present, so a map's MLOAD_F8_OVERFLOW_NONSAT is honoured on the
       device too. */
    mload_result (*convert_async)(void *user, void *dst, mload_dtype dst_t, const void *src, mload_dtype src_t, uint64_t count,
                                  uint32_t flags, uint64_t *fence);
    /* the most recent failure's detail ("cudaErrorMemoryAllocation: out of
       memory"), or NULL: appended to the manager's error messages */
    const char *(*error_detail)(void *user);
    /* stream order against the caller's compute stream (an opaque handle,
       e.g. a cudaStream_t; NULL = the device's default): record gives an
       event after the work queued on stream so far; event_wait blocks the
       host until it has passed; stream_wait makes the stream's later work
       wait for a fence (a copy or a conversion) without blocking the host.
       The manager uses record and event_wait (all three present) when its
       desc names a stream: memory a released unit used is freed or reused
       only after the event its release recorded. */
    mload_result (*record)(void *user, void *stream, uint64_t *event);
    mload_result (*event_wait)(void *user, uint64_t event);
    mload_result (*stream_wait)(void *user, void *stream, uint64_t fence);
} mload_device;

/* Plain host memory, synchronous copies, on-host conversion (convert and
   convert_async); no host_alloc (host copies use the caller's allocator);
   record/event_wait/stream_wait that never wait (host work is synchronous). */
MODELLOAD_API mload_result mload_device_create_host(mload_device *out, mload_error *err);
/* A simulated device for tests and demos: `capacity` bytes of host memory
   (allocations beyond it fail with MLOAD_ERR_DEVICE), copies executed in
   order by a worker thread (throttled to bytes_per_second when > 0, so
   transfer time is real and can overlap compute), on-device conversion
   (convert_async queued in order with the copies), host_alloc (its own
   host memory, as a GPU's page-locked memory is), mem_info, error_detail
   (a refused allocation's sizes), and streams
   (mload_device_sim_stream) with record, event_wait and stream_wait.
   Without threads (MODELLOAD_NO_THREADS) copies are synchronous. */
MODELLOAD_API mload_result mload_device_create_sim(uint64_t capacity, uint64_t bytes_per_second, mload_device *out,
                                                   mload_error *err);
/* A stream of a simulated device (for tests of stream order): it runs what
   is launched on it in order, on a thread of its own, so it lags the host
   as a GPU stream does; record, event_wait and stream_wait take it. At most
   8 per device, destroyed with it. NULL for another device or when out of
   memory. Without threads, work runs at once. */
MODELLOAD_API void *mload_device_sim_stream(const mload_device *sim);
/* Queues fn(arg) on a simulated stream (a stand-in for a kernel). */
MODELLOAD_API mload_result mload_device_sim_launch(const mload_device *sim, void *stream, void (*fn)(void *arg), void *arg);
/* The CUDA runtime back end, compiled only with MODELLOAD_CUDA (link with
   -lcudart; the implementation includes cuda_runtime_api.h, so give the
   toolkit's include folder, with -isystem for C99 -Wpedantic builds): the
   GPU `ordinal`, a copy stream, device memory from the stream-ordered pool,
   page-locked staging (512 MiB, then pageable), conversions by an embedded
   PTX kernel (CUDA >= 12; the host converts when it cannot be loaded), and
   every member of the table. Thread-safe. Without the define:
   MLOAD_ERR_UNSUPPORTED. MLOAD_ERR_DEVICE naming the CUDA error (e.g.
   cudaErrorInsufficientDriver, cudaErrorNoDevice) when the runtime cannot
   start; MLOAD_ERR_INVALID_ARGUMENT for a GPU that does not exist. */
MODELLOAD_API mload_result mload_device_create_cuda(uint32_t ordinal, mload_device *out, mload_error *err);
/* Calls d->destroy (when set) and zeroes *d. */
MODELLOAD_API void mload_device_destroy(mload_device *d);
/* A bulk load into device memory: as mload_map_load (items, options,
   checks, progress, cancel, MLOAD_IO_DIRECT), but each item's dst is a
   device pointer of dev (from dev->alloc, dst_size bytes there). Every
   worker reads and casts its chunks into two host staging buffers of its
   own, in turn, and hands each to dev->upload, waiting for a buffer's last
   copy only before refilling it, so reading overlaps the copies. Every copy
   is complete when the call returns, on failure too. Staging: 2 x threads
   buffers of the largest chunk as cast (chunk_bytes of source), from
   dev->host_alloc when the device has it, else the map's allocator. MLOAD_ERR_INVALID_ARGUMENT without dev, upload or wait;
   a failed upload or wait is MLOAD_ERR_DEVICE (naming the tensor for an
   upload); other errors as mload_map_load. */
MODELLOAD_API mload_result mload_map_load_device(const mload_map *m, mload_load_item *items, uint64_t n, const mload_device *dev,
                                                 const mload_load_opts *opts, mload_error *err);
#endif /* !MODELLOAD_NO_OFFLOAD */

/* ==========================================================================
   12. OFFLOAD MANAGER                                            >>offload
   ========================================================================== */

#if !defined(MODELLOAD_NO_OFFLOAD)
/* Units (named groups of a map's tensors) live in cheaper tiers and are
   brought to the computation device when acquired, under a hard byte
   budget, with eviction and prefetch. See docs/offload.md. */
typedef struct mload_offload mload_offload;

typedef enum mload_place {
    MLOAD_PLACE_DEFAULT = 0, /* see the defaulting rules */
    MLOAD_PLACE_DISK,        /* no storage: read from the map */
    MLOAD_PLACE_HOST,        /* host memory the manager allocates */
    MLOAD_PLACE_DEVICE       /* the computation device */
} mload_place;

typedef struct mload_tier { mload_place place; mload_dtype dtype; } mload_tier;

/* The four tiers of a unit, as in the original loader:
   offload     where it rests when parked (mload_offload_group_offload);
   onload      where it rests when its model is active (mload_offload_group_onload);
   preparing   the copy kept ready on the device between uses, if the
               budget allows (place DEVICE), or none (HOST/DISK: every
               acquire makes a temporary copy);
   computation the device and dtype acquire() returns.
   Defaults, the original loader's: a missing place is the computation
   device (DEVICE), a missing dtype the computation dtype (whose default is
   each tensor's own); a DISK place has no dtype. An onload tier on the
   DEVICE needs the preparing tier there (any dtype). Values follow the
   original's moves: the stored value rounded through the offload tier's
   dtype, then (once onloaded) the onload tier's, then the preparing and
   computation dtypes (a DISK tier rounds nothing), whichever copies exist.
   A DEVICE resting tier is filled at the first acquire or group onload,
   within the budget, and evictable like any prepared copy. Storage in
   F8_E4M3/F8_E5M2/BF16/F16 with computation in F32/BF16 works: the
   computation copy is converted. Tier dtypes apply to float tensors
   (integer tensors keep theirs); an integer or BOOL tier dtype for a unit
   holding float tensors is MLOAD_ERR_INVALID_ARGUMENT. */
typedef struct mload_tiers { mload_tier offload, onload, preparing, computation; } mload_tiers;

typedef enum mload_preset {
    MLOAD_PRESET_ON_DEVICE = 0,  /* every tier on the device (the defaults) */
    MLOAD_PRESET_DISK_OFFLOAD,   /* the original's disk offload: offload and onload on DISK, preparing in
                                    F8_E4M3 on the device, computation in the model's dtype */
    MLOAD_PRESET_HOST_OFFLOAD,   /* offload and onload in HOST memory, preparing and computation on the device */
    MLOAD_PRESET_FP8_DEVICE      /* offload, onload and preparing on the device in F8_E4M3, computation in its dtype */
} mload_preset;

/* The tiers of a usual set-up. storage: the dtype weights are kept in (the
   preparing dtype for DISK_OFFLOAD, the host dtype for HOST_OFFLOAD, the
   resting dtype for FP8_DEVICE and ON_DEVICE); 0 = F8_E4M3 for
   DISK_OFFLOAD and FP8_DEVICE, the computation dtype otherwise.
   computation: its dtype (0 = each tensor's own). An unknown preset gives
   all defaults. */
MODELLOAD_API mload_tiers mload_tiers_preset(mload_preset preset, mload_dtype storage, mload_dtype computation);

typedef enum mload_evict_policy {
    MLOAD_EVICT_NEXT_USE = 0, /* default: the unit whose next use (learned from the acquire order) is furthest */
    MLOAD_EVICT_LRU = 1       /* the least recently released unit */
} mload_evict_policy;

typedef struct mload_offload_desc {
    const mload_map *map;      /* where the weights come from (required; must outlive the manager) */
    mload_device device;       /* the computation device (required; not destroyed by the manager) */
    uint64_t device_budget;    /* hard cap on the device bytes the manager holds, temporaries and
                                  prefetches included; 0 = the device's free memory (mem_info)
                                  minus device_reserve, re-measured at each device allocation (so
                                  memory other users take or give back moves it), or no cap when
                                  the device cannot tell */
    uint64_t device_reserve;
    uint64_t device_limit;     /* the original's vram_limit, in bytes: a prepared copy is kept (a unit
                                  promoted) only while the device's whole use (total - free by mem_info,
                                  every user's allocations), re-measured at each promotion, stays within
                                  it with the copy; else the unit runs on a temporary copy. 0 = none.
                                  Needs mem_info. Kept beside the hard cap device_budget. */
    uint64_t host_budget;      /* hard cap on host bytes (host-tier copies and staging); 0 = none */
    mload_evict_policy policy;
    uint32_t prefetch_depth;   /* units brought ahead of use, along the learned order; 0 = none */
    mload_allocator allocator; /* host allocations */
    void *stream;              /* the caller's compute stream (the device's record, event_wait and
                                  stream_wait needed): acquire makes it wait for the unit's copies
                                  instead of the host; release records an event on it, and the
                                  device memory a released unit used is freed or reused only after
                                  that event. NULL = acquire returns the data ready, and the caller
                                  is done with the memory when it releases */
} mload_offload_desc;

/* A tensor of an acquired unit: on the computation device, in the
   computation dtype, valid until mload_offload_release(). */
typedef struct mload_unit_tensor {
    const mload_tensor *tensor; /* the map's tensor (name, shape) */
    mload_dtype dtype;
    void *data;
    uint64_t nbytes;
} mload_unit_tensor;

typedef struct mload_offload_stats {
    uint64_t disk_to_host, disk_to_device, host_to_device, device_to_host, device_convert; /* bytes moved */
    uint64_t acquires, hits, misses, evictions, prefetch_issued, prefetch_hits;
    uint64_t wait_ns;                       /* time acquire() waited for data */
    uint64_t device_bytes, peak_device_bytes, host_bytes, peak_host_bytes;
    uint64_t device_budget, host_budget;    /* in force (UINT64_MAX = none) */
} mload_offload_stats;

/* Creates a manager over desc->map and desc->device (both must outlive it;
   the desc itself is copied). Nothing is loaded until units are added and
   acquired. With prefetch_depth > 0 a worker thread is started (without
   threads, prefetches load synchronously). MLOAD_ERR_INVALID_ARGUMENT
   without a map or a device with alloc/free/upload/wait, or with an unknown
   policy; MLOAD_ERR_OUT_OF_MEMORY. *out is NULL on failure. */
MODELLOAD_API mload_result mload_offload_create(const mload_offload_desc *desc, mload_offload **out, mload_error *err);
/* Waits for in-flight work, frees every copy, stops the worker. NULL ok. */
MODELLOAD_API void mload_offload_destroy(mload_offload *o);
/* A unit of every map tensor whose name starts with one of the prefixes.
   A tensor may belong to one unit only (MLOAD_ERR_INVALID_ARGUMENT names
   it); a unit with no tensor is MLOAD_ERR_NOT_FOUND. tiers may be NULL (all
   defaults). The unit starts parked in its offload tier. */
MODELLOAD_API mload_result mload_offload_add_unit(mload_offload *o, const char *name, const char *const *prefixes,
                                                  uint64_t prefix_count, const mload_tiers *tiers, uint32_t *unit,
                                                  mload_error *err);
/* The same with an explicit list of tensor names. */
MODELLOAD_API mload_result mload_offload_add_unit_list(mload_offload *o, const char *name, const char *const *tensors,
                                                       uint64_t count, const mload_tiers *tiers, uint32_t *unit,
                                                       mload_error *err);
/* The tiers in force after defaulting. */
MODELLOAD_API mload_result mload_offload_get_tiers(const mload_offload *o, uint32_t unit, mload_tiers *out, mload_error *err);
/* Pinned units are never evicted. */
MODELLOAD_API mload_result mload_offload_pin(mload_offload *o, uint32_t unit, mload_error *err);
MODELLOAD_API mload_result mload_offload_unpin(mload_offload *o, uint32_t unit, mload_error *err);
/* Declares the order units will be acquired in, repeating (after the last
   comes the first; each unit once), so that prefetch and next-use eviction
   follow it from the first pass; without one the manager learns the order
   from the acquires, which it still does (an acquire out of this order
   teaches it the new successor). */
MODELLOAD_API mload_result mload_offload_set_schedule(mload_offload *o, const uint32_t *units, uint64_t n, mload_error *err);
/* Brings unit's tensors to the computation device in the computation dtype
   (evicting units not acquired when space is needed) and returns them in
   *tensors (owned by the manager, *count entries, in name order). When its
   prepared copy cannot be kept within the budget (alone, or beside the
   computation copy), the unit runs on a temporary computation copy alone
   (read through the preparing dtype: the same values), as the original
   loader does; MLOAD_ERR_BUDGET (the needed and available bytes in err,
   nothing held) only when that copy cannot fit even after eviction. Then
   starts prefetching the next units of the learned order. One thread at a
   time. */
MODELLOAD_API mload_result mload_offload_acquire(mload_offload *o, uint32_t unit, const mload_unit_tensor **tensors,
                                                 uint64_t *count, mload_error *err);
/* Ends the use of an acquired unit: temporary copies are freed and its
   prepared copy becomes evictable. */
MODELLOAD_API void mload_offload_release(mload_offload *o, uint32_t unit);
/* Group moves (the original's model swap): onload brings each unit to its
   onload tier (a HOST copy, or a DEVICE copy within the budget); offload
   returns each to its offload tier, freeing every other copy (and the two
   staging buffers the manager keeps for reuse between loads). */
MODELLOAD_API mload_result mload_offload_group_onload(mload_offload *o, const uint32_t *units, uint64_t n, mload_error *err);
MODELLOAD_API mload_result mload_offload_group_offload(mload_offload *o, const uint32_t *units, uint64_t n, mload_error *err);
/* 1 when the unit's prepared copy is on the device and complete, else 0. */
MODELLOAD_API int mload_offload_is_resident(const mload_offload *o, uint32_t unit);
/* A copy of the counters. */
MODELLOAD_API void mload_offload_get_stats(const mload_offload *o, mload_offload_stats *out);
/* Zeroes the counters (not the byte levels); peaks restart from the current levels. */
MODELLOAD_API void mload_offload_reset_stats(mload_offload *o);
#endif /* !MODELLOAD_NO_OFFLOAD */

#ifdef __cplusplus
}
#endif
#endif /* MODELLOAD_H */

/* ======================================================================== */
/*                             IMPLEMENTATION                               */
/*   Stop here if you only use the library: the public API is above.        */
/* ======================================================================== */
#if defined(MODELLOAD_IMPLEMENTATION) && !defined(MODELLOAD__IMPLEMENTED)
#define MODELLOAD__IMPLEMENTED

#include <string.h>
#include <stdarg.h>
#include <stdlib.h> /* qsort */

#if defined(MODELLOAD_MALLOC) && defined(MODELLOAD_REALLOC) && defined(MODELLOAD_FREE)
/* all three given */
#elif !defined(MODELLOAD_MALLOC) && !defined(MODELLOAD_REALLOC) && !defined(MODELLOAD_FREE)
#include <stdlib.h>
#define MODELLOAD_MALLOC(sz) malloc(sz)
#define MODELLOAD_REALLOC(p, sz) realloc(p, sz)
#define MODELLOAD_FREE(p) free(p)
#else
#error "modelload.h: define all of MODELLOAD_MALLOC, MODELLOAD_REALLOC and MODELLOAD_FREE, or none"
#endif

#if defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "modelload.h supports little-endian hosts only (safetensors data is little-endian and is read in place)"
#endif

#ifndef MODELLOAD_ASSERT
#include <assert.h>
#define MODELLOAD_ASSERT(x) assert(x)
#endif

#if !defined(MODELLOAD_NO_STDIO)
#if defined(__unix__) || defined(__APPLE__) || defined(__linux__)
#define MLOAD__POSIX 1
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/mman.h>
#include <signal.h> /* kill(pid, 0): is a writer still running */
#include <stdio.h> /* rename */
#include <time.h>
#if !defined(MODELLOAD_NO_THREADS)
#define MLOAD__THREADS 1
#include <pthread.h>
#endif
#if defined(__GLIBC__) && !defined(__USE_UNIX98) && !defined(__USE_XOPEN2K8)
/* system headers were included before this file without feature macros, so
   unistd.h hid pread: declare glibc's 64-bit-offset entry point ourselves */
extern ssize_t pread64(int fd, void *buf, size_t n, __off64_t offset);
#define MLOAD__PREAD(fd, buf, n, off) pread64(fd, buf, n, MLOAD__CAST(__off64_t, off))
/* ... and the other POSIX calls the writer uses */
extern int lstat(const char *path, struct stat *st);
extern int fchmod(int fd, mode_t mode);
#if !defined(__USE_POSIX)
extern int kill(pid_t pid, int sig);
#endif
#else
#define MLOAD__PREAD(fd, buf, n, off) pread(fd, buf, n, MLOAD__CAST(off_t, off))
#endif
#else
#define MLOAD__STDIO 1
#include <stdio.h>
#endif
#endif

#ifdef __cplusplus
#define MLOAD__CAST(T, x) static_cast<T>(x)
#define MLOAD__PCAST(T, x) reinterpret_cast<T>(x)
#define MLOAD__CCAST(T, x) const_cast<T>(x)
#else
#define MLOAD__CCAST(T, x) ((T)(x))
#define MLOAD__CAST(T, x) ((T)(x))
#define MLOAD__PCAST(T, x) ((T)(x))
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MLOAD__INLINE __inline__ __attribute__((always_inline))
#elif defined(_MSC_VER)
#define MLOAD__INLINE __forceinline
#elif defined(__cplusplus) || (defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L)
#define MLOAD__INLINE inline
#else
#define MLOAD__INLINE
#endif

/* static, for core helpers of modules that some configurations leave out
   (MODELLOAD_NO_*): unused there without a warning */
#if defined(__GNUC__) || defined(__clang__)
#define MLOAD__SHARED static __attribute__((unused))
#else
#define MLOAD__SHARED static
#endif

/* GCC's -O2 cost model does not vectorise loops of unknown length; the
   conversion kernels ask for it (clang vectorises them at -O2 anyway) */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__INTEL_COMPILER)
#define MLOAD__VECTORIZE1 __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define MLOAD__VECTORIZE1
#endif
/* ... and on x86-64 Linux (ifunc) they also get an AVX2 clone picked at
   run time, so a plain -O2 build uses 256-bit vectors where the CPU has
   them. MODELLOAD_NO_CLONES turns this off. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MLOAD__SANITIZED 1 /* ifunc resolvers run before the sanitizer runtime */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define MLOAD__SANITIZED 1
#endif
#endif
#if !defined(MODELLOAD_NO_CLONES) && defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    (!defined(__clang__) || __clang_major__ >= 14) && !defined(MLOAD__SANITIZED)
#define MLOAD__VECTORIZE MLOAD__VECTORIZE1 __attribute__((target_clones("avx2", "default")))
#else
#define MLOAD__VECTORIZE MLOAD__VECTORIZE1
#endif

#if defined(MODELLOAD_CUDA) && !defined(MODELLOAD_NO_OFFLOAD)
#include <cuda_runtime_api.h>
#endif

/* the hand-written conversion kernels (x86-64, GCC or clang; not under
   MODELLOAD_NO_SIMD) */
#if !defined(MODELLOAD_NO_SIMD) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MLOAD__X86_SIMD 1
#include <immintrin.h>
#include <cpuid.h>
#else
#define MLOAD__X86_SIMD 0
#endif

#define MLOAD__MAX_HEADER 100000000u
#define MLOAD__JSON_MAX_DEPTH 127u
#define MLOAD__PAD 32u /* zero bytes after the header buffer's NUL */

#ifdef __cplusplus
extern "C" {
#endif

/* ==========================================================================
   1. CORE                                                           >>core
   results and errors, allocation, strings, checked arithmetic, clock, the threads wrapper and the worker
   ========================================================================== */

#define MLOAD__RESULT_STR(code, str) str,
static const char *const mload__result_strings[] = {MLOAD__RESULT_LIST(MLOAD__RESULT_STR)};
#undef MLOAD__RESULT_STR

MODELLOAD_API const char *mload_result_string(mload_result r) {
    unsigned i = MLOAD__CAST(unsigned, r);
    if (i >= MLOAD__CAST(unsigned, MLOAD__RESULT_COUNT)) return "Unknown";
    return mload__result_strings[i];
}

MODELLOAD_API uint32_t mload_version(void) { return MODELLOAD_VERSION; }
MODELLOAD_API const char *mload_version_string(void) { return MODELLOAD_VERSION_STRING; }

/* Tiny formatter (no stdio needed): %s = const char*, %S = const char*
   then size_t (a counted string, stops at a NUL byte too), %U = uint64_t,
   %% = '%'. Always NUL-terminates within cap. */
static void mload__vfmt(char *out, size_t cap, const char *fmt, va_list ap) {
    size_t n = 0;
    if (cap == 0) return;
    for (; *fmt && n + 1 < cap; ++fmt) {
        if (*fmt != '%' || fmt[1] == '\0') { out[n++] = *fmt; continue; }
        ++fmt;
        if (*fmt == 's') {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            while (*s && n + 1 < cap) out[n++] = *s++;
        } else if (*fmt == 'S') {
            const char *s = va_arg(ap, const char *);
            size_t len = va_arg(ap, size_t), k = 0;
            if (!s) { s = "(null)"; len = 6; }
            while (k < len && s[k] && n + 1 < cap) out[n++] = s[k++];
        } else if (*fmt == 'U') {
            uint64_t v = va_arg(ap, uint64_t);
            char tmp[24];
            size_t k = 0;
            do { tmp[k++] = MLOAD__CAST(char, '0' + MLOAD__CAST(int, v % 10u)); v /= 10u; } while (v);
            while (k && n + 1 < cap) out[n++] = tmp[--k];
        } else {
            out[n++] = *fmt;
        }
    }
    out[n] = '\0';
}

/* Fills err (when given) and returns code. name/name_len may be NULL/0. */
static mload_result mload__fail(mload_error *err, mload_result code, uint64_t offset,
                                const char *name, size_t name_len, const char *fmt, ...) {
    if (err) {
        va_list ap;
        size_t k = name_len < sizeof(err->tensor) - 1 ? name_len : sizeof(err->tensor) - 1;
        err->code = code;
        err->offset = offset;
        err->file_index = 0;
        if (name && k) memcpy(err->tensor, name, k);
        err->tensor[k] = '\0';
        va_start(ap, fmt);
        mload__vfmt(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}

static mload_result mload__oom(mload_error *err) {
    return mload__fail(err, MLOAD_ERR_OUT_OF_MEMORY, MLOAD_NO_OFFSET, NULL, 0, "out of memory");
}

/* mload__vfmt into out (cap bytes) */
static void mload__sfmt(char *out, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mload__vfmt(out, cap, fmt, ap);
    va_end(ap);
}

/* r, after appending a device's detail of the failure (its error_detail,
   when it has one and says something) to err's message */
static mload_result mload__with_detail(mload_error *err, const char *(*detail)(void *user), void *user, mload_result r) {
    const char *d = detail ? detail(user) : NULL;
    if (err && d && *d) {
        size_t n = strlen(err->message);
        mload__sfmt(err->message + n, sizeof(err->message) - n, ": %s", d);
    }
    return r;
}

/* The system's reason for a failed call (errno e), for messages: a fixed
   table, since strerror is not thread-safe everywhere. */
MLOAD__SHARED const char *mload__sys_reason(int e) {
#if defined(MLOAD__POSIX)
    switch (e) {
    case ENOENT: return "no such file or directory";
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case ENOSPC: return "no space left on device";
#ifdef EDQUOT
    case EDQUOT: return "disk quota exceeded";
#endif
    case EMFILE: return "too many open files";
    case ENFILE: return "too many open files in the system";
    case EROFS: return "read-only file system";
    case EISDIR: return "is a directory";
    case ENOTDIR: return "a path component is not a directory";
    case ENAMETOOLONG: return "file name too long";
    case ELOOP: return "too many symbolic links";
    case EIO: return "input/output error";
    case EEXIST: return "file exists";
    case EFBIG: return "file too large";
    case ENOMEM: return "out of memory";
    case EXDEV: return "cross-device link";
    case EBUSY: return "device or resource busy";
    default: return "system error";
    }
#else
    (void)e;
    return "system error";
#endif
}

/* ------------------------------------------------------------- allocation */

/* The header stashed below a block of the default allocator when it is
   over-aligned (and below every block under MLOAD__CHECK_SIZES, a test
   switch that checks each free's size and alignment against the
   allocation's). */
typedef struct mload__alloc_hdr { void *base; size_t size, align; } mload__alloc_hdr;
#if defined(MLOAD__CHECK_SIZES)
#define MLOAD__HDR_ALWAYS 1
#else
#define MLOAD__HDR_ALWAYS 0
#endif

static int mload__allocator_ok(const mload_allocator *a) {
    return !a || ((a->alloc == NULL) == (a->free == NULL));
}

static void *mload__malloc(const mload_allocator *a, size_t size, size_t align) {
    if (size == 0) size = 1;
    if (a && a->alloc) return a->alloc(size, align < 8 ? 8 : align, a->user); /* uint64_t arrays need 8 on 32-bit ARM too */
    if (align <= sizeof(void *) && !MLOAD__HDR_ALWAYS) return MODELLOAD_MALLOC(size);
    {   /* over-allocate and stash the base pointer just below the block */
        size_t al = align < 16 ? 16 : align, extra = al + sizeof(mload__alloc_hdr);
        unsigned char *base, *p;
        uintptr_t u;
        if (size > SIZE_MAX - extra) return NULL;
        base = MLOAD__CAST(unsigned char *, MODELLOAD_MALLOC(size + extra));
        if (!base) return NULL;
        u = MLOAD__PCAST(uintptr_t, base + sizeof(mload__alloc_hdr));
        u = (u + (al - 1)) & ~MLOAD__CAST(uintptr_t, al - 1);
        p = base + (u - MLOAD__PCAST(uintptr_t, base));
        {
            mload__alloc_hdr h;
            h.base = base;
            h.size = size;
            h.align = align;
            memcpy(p - sizeof(h), &h, sizeof(h));
        }
        return p;
    }
}

static void mload__free(const mload_allocator *a, void *p, size_t size, size_t align) {
    if (!p) return;
    if (size == 0) size = 1;
    if (a && a->free) { a->free(p, size, a->user); return; }
    if (align <= sizeof(void *) && !MLOAD__HDR_ALWAYS) { MODELLOAD_FREE(p); return; }
    {
        mload__alloc_hdr h;
        memcpy(&h, MLOAD__CAST(unsigned char *, p) - sizeof(h), sizeof(h));
        /* a free of another size, or of another alignment class (plain vs over-aligned) */
        MODELLOAD_ASSERT(!MLOAD__HDR_ALWAYS || (h.size == size && (h.align <= sizeof(void *)) == (align <= sizeof(void *)) &&
                                                (align <= sizeof(void *) || h.align == align)));
        MODELLOAD_FREE(h.base);
    }
}

/* Grows an array of elem-sized items (alignment <= sizeof(void*)) from
   *cap to at least `need` elements. Returns the (possibly moved) array, or
   NULL on overflow / out of memory, in which case arr is left untouched. */
static void *mload__grow(const mload_allocator *a, void *arr, size_t *cap, size_t need, size_t elem) {
    size_t ncap = *cap ? *cap : 16;
    void *np;
    if (need <= *cap) return arr;
    while (ncap < need) {
        if (ncap > (SIZE_MAX / elem) / 2) return NULL;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem) return NULL;
    if ((a && a->alloc) || MLOAD__HDR_ALWAYS) {
        np = mload__malloc(a, ncap * elem, 8);
        if (!np) return NULL;
        if (arr) {
            memcpy(np, arr, *cap * elem);
            mload__free(a, arr, *cap * elem, 8);
        }
    } else {
        np = MODELLOAD_REALLOC(arr, ncap * elem);
        if (!np) return NULL;
    }
    *cap = ncap;
    return np;
}

/* grows *arr in place (its old block freed); 0 when out of memory, *arr unchanged */
static int mload__reserve(const mload_allocator *a, void **arr, size_t *cap, size_t need, size_t elem) {
    void *np = mload__grow(a, *arr, cap, need, elem);
    if (!np) return 0;
    *arr = np;
    return 1;
}

/* monotonic nanoseconds (0 where no POSIX clock is visible) */
MLOAD__SHARED uint64_t mload__now_ns(void) {
#if defined(MLOAD__POSIX) && defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return MLOAD__CAST(uint64_t, ts.tv_sec) * 1000000000u + MLOAD__CAST(uint64_t, ts.tv_nsec);
#else
    return 0;
#endif
}

/* ---- threads: the one wrapper over pthreads ----
   Under MODELLOAD_NO_THREADS the lock calls do nothing and no thread starts:
   every caller then does its work inline. */
#if defined(MLOAD__THREADS)
#define MLOAD__HAVE_THREADS 1
typedef pthread_mutex_t mload__mutex;
typedef pthread_cond_t mload__cond;
typedef pthread_t mload__thread;
MLOAD__SHARED void mload__mutex_init(mload__mutex *m) { pthread_mutex_init(m, NULL); }
MLOAD__SHARED void mload__mutex_destroy(mload__mutex *m) { pthread_mutex_destroy(m); }
MLOAD__SHARED void mload__lock(mload__mutex *m) { pthread_mutex_lock(m); }
MLOAD__SHARED void mload__unlock(mload__mutex *m) { pthread_mutex_unlock(m); }
MLOAD__SHARED void mload__cond_init(mload__cond *c) { pthread_cond_init(c, NULL); }
MLOAD__SHARED void mload__cond_destroy(mload__cond *c) { pthread_cond_destroy(c); }
MLOAD__SHARED void mload__cond_wait(mload__cond *c, mload__mutex *m) { pthread_cond_wait(c, m); }
MLOAD__SHARED void mload__cond_signal(mload__cond *c) { pthread_cond_signal(c); }
MLOAD__SHARED void mload__cond_broadcast(mload__cond *c) { pthread_cond_broadcast(c); }
/* 1 when the thread started */
MLOAD__SHARED int mload__thread_start(mload__thread *t, void *(*fn)(void *), void *arg) { return pthread_create(t, NULL, fn, arg) == 0; }
MLOAD__SHARED void mload__thread_join(mload__thread t) { pthread_join(t, NULL); }
#else
#define MLOAD__HAVE_THREADS 0
typedef int mload__mutex;
typedef int mload__cond;
typedef int mload__thread;
MLOAD__SHARED void mload__mutex_init(mload__mutex *m) { *m = 0; }
MLOAD__SHARED void mload__mutex_destroy(mload__mutex *m) { (void)m; }
MLOAD__SHARED void mload__lock(mload__mutex *m) { (void)m; }
MLOAD__SHARED void mload__unlock(mload__mutex *m) { (void)m; }
MLOAD__SHARED void mload__cond_init(mload__cond *c) { *c = 0; }
MLOAD__SHARED void mload__cond_destroy(mload__cond *c) { (void)c; }
MLOAD__SHARED void mload__cond_wait(mload__cond *c, mload__mutex *m) { (void)c; (void)m; MODELLOAD_ASSERT(0); }
MLOAD__SHARED void mload__cond_signal(mload__cond *c) { (void)c; }
MLOAD__SHARED void mload__cond_broadcast(mload__cond *c) { (void)c; }
MLOAD__SHARED int mload__thread_start(mload__thread *t, void *(*fn)(void *), void *arg) { (void)t; (void)fn; (void)arg; return 0; }
MLOAD__SHARED void mload__thread_join(mload__thread t) { (void)t; }
#endif

/* worker threads when the caller says 0: online CPUs, at most 16 (1 without threads) */
static uint32_t mload__default_threads(void) {
#if defined(MLOAD__THREADS) && defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 16) n = 16;
    return MLOAD__CAST(uint32_t, n);
#else
    return 1;
#endif
}

/* ---- the worker: threads running queued jobs ----
   Bulk loads (module 8) start a pool of them per load; the simulated
   device's copy engine (module 11) and the offload manager's loads ahead of
   use (module 12) run on one thread each, which takes jobs in order. Its
   mutex also guards the owner's shared state: run() is called with the
   mutex held and may release it around the work itself; after each job
   `done` is broadcast. Without threads started == 0 and the owner runs
   jobs inline. */
#define MLOAD__JOB_MAX 48u
#define MLOAD__MAX_THREADS 64u
typedef struct mload__worker {
    mload__mutex mu;
    mload__cond work, done;
    mload__thread th[MLOAD__MAX_THREADS];
    uint32_t started; /* threads running */
    int stop;
    void (*run)(void *owner, void *job);
    void *owner;
    mload_allocator alloc;
    unsigned char *q; /* a ring of cap jobs of esize bytes */
    size_t esize, head, n, cap;
} mload__worker;

/* Removes the oldest queued job into *job (mutex held); 0 when empty. */
static int mload__worker_take(mload__worker *w, void *job) {
    if (w->n == 0) return 0;
    memcpy(job, w->q + w->head * w->esize, w->esize);
    w->head = (w->head + 1) % w->cap;
    w->n--;
    return 1;
}

static void *mload__worker_main(void *arg) {
    mload__worker *w = MLOAD__CAST(mload__worker *, arg);
    unsigned char job[MLOAD__JOB_MAX];
    mload__lock(&w->mu);
    for (;;) {
        while (!w->stop && w->n == 0) mload__cond_wait(&w->work, &w->mu);
        if (!mload__worker_take(w, job)) break; /* stopped, queue drained */
        w->run(w->owner, job);
        mload__cond_broadcast(&w->done);
    }
    mload__unlock(&w->mu);
    return NULL;
}

/* nthreads 0: the mutex only (the owner works inline) */
static void mload__worker_init(mload__worker *w, const mload_allocator *a, size_t esize, void (*run)(void *, void *),
                               void *owner, uint32_t nthreads) {
    memset(w, 0, sizeof(*w));
    MODELLOAD_ASSERT(esize <= MLOAD__JOB_MAX);
    if (a) w->alloc = *a;
    w->esize = esize;
    w->run = run;
    w->owner = owner;
    mload__mutex_init(&w->mu);
    mload__cond_init(&w->work);
    mload__cond_init(&w->done);
    while (w->started < nthreads && w->started < MLOAD__MAX_THREADS &&
           mload__thread_start(&w->th[w->started], mload__worker_main, w))
        w->started++;
}

/* Queues a job (mutex held). 0 when out of memory. */
static int mload__worker_push(mload__worker *w, const void *job) {
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 16, i;
        unsigned char *nq = MLOAD__CAST(unsigned char *, mload__malloc(&w->alloc, ncap * w->esize, sizeof(void *)));
        if (!nq) return 0;
        for (i = 0; i < w->n; ++i) memcpy(nq + i * w->esize, w->q + ((w->head + i) % w->cap) * w->esize, w->esize);
        mload__free(&w->alloc, w->q, w->cap * w->esize, sizeof(void *));
        w->q = nq;
        w->cap = ncap;
        w->head = 0;
    }
    memcpy(w->q + ((w->head + w->n) % w->cap) * w->esize, job, w->esize);
    w->n++;
    mload__cond_signal(&w->work);
    return 1;
}

/* Runs what is queued, stops the threads, frees the queue (mutex not held). */
static void mload__worker_destroy(mload__worker *w) {
    uint32_t i;
    mload__lock(&w->mu);
    w->stop = 1;
    mload__cond_broadcast(&w->work);
    mload__unlock(&w->mu);
    for (i = 0; i < w->started; ++i) mload__thread_join(w->th[i]);
    mload__mutex_destroy(&w->mu);
    mload__cond_destroy(&w->work);
    mload__cond_destroy(&w->done);
    mload__free(&w->alloc, w->q, w->cap * w->esize, sizeof(void *));
}

/* checked arithmetic, one place */
MLOAD__SHARED int mload__add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a > UINT64_MAX - b) return 0;
    *out = a + b;
    return 1;
}
static int mload__mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ---- strings ---- */

static char *mload__strndup(const mload_allocator *a, const char *s, size_t n) {
    char *p = MLOAD__CAST(char *, mload__malloc(a, n + 1, 1));
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void mload__strfree(const mload_allocator *a, char *p) {
    if (p) mload__free(a, p, strlen(p) + 1, 1);
}

/* bytewise order of counted names (the order of every name table) */
static int mload__name_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : (al > bl ? 1 : 0);
}

/* ==========================================================================
   2. DTYPES AND CASTS                                             >>dtypes
   the dtype table; casts between dtypes: fp8 (F8_E4M3/F8_E5M2), bf16, f16 kernels (C loops, then AVX2 and AVX-512 ones picked at run time), the general path; the one read-then-cast path
   ========================================================================== */

typedef struct mload__dtype_info {
    const char *name;
    uint8_t name_len;
    uint8_t bits;
    uint8_t kind;
} mload__dtype_info;

static const mload__dtype_info mload__dtypes[MLOAD_DTYPE_COUNT] = {
    {"", 0, 0, MLOAD_KIND_INVALID},
    {"BOOL", 4, 8, MLOAD_KIND_BOOL},
    {"F4", 2, 4, MLOAD_KIND_FLOAT},
    {"F6_E2M3", 7, 6, MLOAD_KIND_FLOAT},
    {"F6_E3M2", 7, 6, MLOAD_KIND_FLOAT},
    {"U8", 2, 8, MLOAD_KIND_UINT},
    {"I8", 2, 8, MLOAD_KIND_SINT},
    {"F8_E5M2", 7, 8, MLOAD_KIND_FLOAT},
    {"F8_E4M3", 7, 8, MLOAD_KIND_FLOAT},
    {"F8_E8M0", 7, 8, MLOAD_KIND_FLOAT},
    {"F8_E4M3FNUZ", 11, 8, MLOAD_KIND_FLOAT},
    {"F8_E5M2FNUZ", 11, 8, MLOAD_KIND_FLOAT},
    {"I16", 3, 16, MLOAD_KIND_SINT},
    {"U16", 3, 16, MLOAD_KIND_UINT},
    {"F16", 3, 16, MLOAD_KIND_FLOAT},
    {"BF16", 4, 16, MLOAD_KIND_FLOAT},
    {"I32", 3, 32, MLOAD_KIND_SINT},
    {"U32", 3, 32, MLOAD_KIND_UINT},
    {"F32", 3, 32, MLOAD_KIND_FLOAT},
    {"C64", 3, 64, MLOAD_KIND_COMPLEX},
    {"F64", 3, 64, MLOAD_KIND_FLOAT},
    {"I64", 3, 64, MLOAD_KIND_SINT},
    {"U64", 3, 64, MLOAD_KIND_UINT},
};

MODELLOAD_API mload_dtype mload_dtype_from_name(const char *name, size_t len) {
    int i;
    /* the header parser calls this for every tensor: dispatch on length
       and characters for the common names, the table for the rest */
    if (!name) return MLOAD_DTYPE_INVALID;
    if (len == 3 && (name[0] == 'F' || name[0] == 'I' || name[0] == 'U' || name[0] == 'C')) {
        char a = name[0], b = name[1], c = name[2];
        if (b == '3' && c == '2') return a == 'F' ? MLOAD_DTYPE_F32 : a == 'I' ? MLOAD_DTYPE_I32 : a == 'U' ? MLOAD_DTYPE_U32 : MLOAD_DTYPE_INVALID;
        if (b == '1' && c == '6') return a == 'F' ? MLOAD_DTYPE_F16 : a == 'I' ? MLOAD_DTYPE_I16 : a == 'U' ? MLOAD_DTYPE_U16 : MLOAD_DTYPE_INVALID;
        if (b == '6' && c == '4') return a == 'F' ? MLOAD_DTYPE_F64 : a == 'I' ? MLOAD_DTYPE_I64 : a == 'U' ? MLOAD_DTYPE_U64 : MLOAD_DTYPE_C64;
        return MLOAD_DTYPE_INVALID;
    }
    if (len == 4 && name[0] == 'B' && name[1] == 'F' && name[2] == '1' && name[3] == '6') return MLOAD_DTYPE_BF16;
    for (i = 1; i < MLOAD_DTYPE_COUNT; ++i) {
        const mload__dtype_info *d = &mload__dtypes[i];
        if (d->name_len == len && memcmp(d->name, name, len) == 0) return MLOAD__CAST(mload_dtype, i);
    }
    return MLOAD_DTYPE_INVALID;
}

static int mload__dtype_valid(mload_dtype t) {
    return MLOAD__CAST(int, t) > 0 && MLOAD__CAST(int, t) < MLOAD_DTYPE_COUNT;
}

MODELLOAD_API const char *mload_dtype_name(mload_dtype t) {
    return mload__dtype_valid(t) ? mload__dtypes[t].name : NULL;
}
MODELLOAD_API uint32_t mload_dtype_bits(mload_dtype t) {
    return mload__dtype_valid(t) ? mload__dtypes[t].bits : 0u;
}
MODELLOAD_API mload_kind mload_dtype_kind(mload_dtype t) {
    return mload__dtype_valid(t) ? MLOAD__CAST(mload_kind, mload__dtypes[t].kind) : MLOAD_KIND_INVALID;
}

/* ------------------------------------------------------------- conversion */

/* Bit views (memcpy: no aliasing questions, compiles to moves). */
static MLOAD__INLINE uint32_t mload__f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static MLOAD__INLINE float mload__u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static MLOAD__INLINE uint64_t mload__d2u(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static MLOAD__INLINE double mload__u2d(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

/* A small binary float format. */
typedef struct mload__ffmt {
    uint8_t ebits, mbits;
    int16_t bias;
    int16_t emax;       /* largest unbiased exponent of a finite value */
    uint16_t maxq;      /* largest significand (with hidden bit) at emax */
    uint8_t nan_kind;   /* 0 IEEE, 1 E4M3FN (S.1111.111), 2 FNUZ (0x80), 3 E8M0 (0xFF) */
    uint8_t sat_default;/* overflow saturates unless MLOAD_F8_OVERFLOW_NONSAT (F8) */
    uint32_t nan_code, ovf_code, max_code; /* without sign; ovf = Inf, or NaN for E4M3 */
} mload__ffmt;

/* indexed by dtype; ebits == 0 marks "not a small float" */
static const mload__ffmt mload__ffmts[MLOAD_DTYPE_COUNT] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, /* INVALID BOOL F4 F6_E2M3 F6_E3M2 U8 I8 */
    {5, 2, 15, 15, 7, 0, 1, 0x7E, 0x7C, 0x7B},            /* F8_E5M2 */
    {4, 3, 7, 8, 14, 1, 1, 0x7F, 0x7F, 0x7E},             /* F8_E4M3 */
    {8, 0, 127, 127, 1, 3, 0, 0xFF, 0xFF, 0xFE},          /* F8_E8M0 (decode only) */
    {4, 3, 8, 7, 15, 2, 1, 0x80, 0x80, 0x7F},             /* F8_E4M3FNUZ */
    {5, 2, 16, 15, 7, 2, 1, 0x80, 0x80, 0x7F},            /* F8_E5M2FNUZ */
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, /* I16 U16 */
    {5, 10, 15, 15, 2047, 0, 0, 0x7E00, 0x7C00, 0x7BFF},  /* F16 */
    {8, 7, 127, 127, 255, 0, 0, 0x7FC0, 0x7F80, 0x7F7F},  /* BF16 */
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, /* I32 U32 */
    {8, 23, 127, 127, 0xFFFF, 0, 0, 0x7FC00000u, 0x7F800000u, 0x7F7FFFFFu}, /* F32 (maxq unused) */
};

/* 2^k as a double for -1022 <= k <= 1023 (no libm) */
static MLOAD__INLINE double mload__pow2(int k) {
    return mload__u2d(MLOAD__CAST(uint64_t, k + 1023) << 52);
}

/* Exact value of a small-float code. */
static double mload__decode(uint32_t c, const mload__ffmt *f) {
    uint32_t nb = 1u + f->ebits + f->mbits;
    uint32_t sign = (c >> (nb - 1)) & 1u, ex, man;
    double v;
    if (f->nan_kind == 3) { /* E8M0: unsigned, no zero */
        if (c == 0xFFu) return mload__u2d(0x7FF8000000000000ull);
        return mload__pow2(MLOAD__CAST(int, c) - 127);
    }
    if (f->nan_kind == 2 && c == 0x80u) return mload__u2d(0x7FF8000000000000ull);
    if (f->nan_kind == 1 && (c & 0x7Fu) == 0x7Fu) return mload__u2d(0x7FF8000000000000ull | (MLOAD__CAST(uint64_t, sign) << 63));
    ex = (c >> f->mbits) & ((1u << f->ebits) - 1u);
    man = c & ((1u << f->mbits) - 1u);
    if (f->nan_kind == 0 && ex == (1u << f->ebits) - 1u) {
        v = man ? mload__u2d(0x7FF8000000000000ull) : mload__u2d(0x7FF0000000000000ull);
    } else if (ex == 0) {
        v = MLOAD__CAST(double, man) * mload__pow2(1 - f->bias - f->mbits);
    } else {
        v = MLOAD__CAST(double, man | (1u << f->mbits)) * mload__pow2(MLOAD__CAST(int, ex) - f->bias - f->mbits);
    }
    return sign ? -v : v;
}

/* Nearest code (ties to even) of the exact value x: one rounding. */
static uint32_t mload__encode(double x, const mload__ffmt *f, uint32_t flags) {
    uint64_t b = mload__d2u(x), ab = b & 0x7FFFFFFFFFFFFFFFull, m, q;
    uint32_t sbit = MLOAD__CAST(uint32_t, b >> 63) << (f->ebits + f->mbits);
    int e, ux, E, sh, emin = 1 - f->bias;
    int ovf_to_max = f->sat_default && !(flags & MLOAD_F8_OVERFLOW_NONSAT);
    if (ab > 0x7FF0000000000000ull) return f->nan_code | sbit;
    if (ab == 0x7FF0000000000000ull) return (ovf_to_max ? f->max_code : f->ovf_code) | sbit;
    if (ab == 0) return f->nan_kind == 2 ? 0u : sbit; /* FNUZ has no -0: its code is NaN */
    e = MLOAD__CAST(int, ab >> 52);
    m = ab & 0xFFFFFFFFFFFFFull;
    if (e == 0) { /* subnormal double: value = m * 2^-1074 */
        int top = 51;
        while (!((m >> top) & 1u)) --top;
        ux = top - 1074;
        e = 1;
    } else {
        m |= 1ull << 52;
        ux = e - 1023;
    }
    /* value = m * 2^(e - 1075); target step at exponent E is 2^(E - mbits) */
    E = ux < emin ? emin : ux;
    sh = (E - f->mbits) - (e - 1075);
    if (sh <= 0) {
        q = m << (-sh); /* exact (cannot happen for the formats here) */
    } else if (sh >= 64) {
        q = 0;
    } else {
        uint64_t rem = m & ((1ull << sh) - 1u), half = 1ull << (sh - 1);
        q = m >> sh;
        if (rem > half || (rem == half && (q & 1u))) ++q;
    }
    if (q >> (f->mbits + 1)) { q >>= 1; ++E; }
    if (E > f->emax || (E == f->emax && q > f->maxq))
        return (ovf_to_max ? f->max_code : f->ovf_code) | sbit;
    if (q == 0 && f->nan_kind == 2) return 0; /* FNUZ: a negative value rounding to zero is +0 */
    if (q < (1ull << f->mbits)) return MLOAD__CAST(uint32_t, q) | sbit; /* subnormal or zero */
    return ((MLOAD__CAST(uint32_t, E + f->bias) << f->mbits) | (MLOAD__CAST(uint32_t, q) - (1u << f->mbits))) | sbit;
}

/* ---- the hot kernels (fp8, bf16, f16 <-> f32): branch-free loops the compiler vectorises ---- */

/* branch-free select (keeps the loops below free of control flow, so
   they vectorise even with trapping FP math) */
static MLOAD__INLINE uint32_t mload__sel(uint32_t c, uint32_t a, uint32_t b) {
    uint32_t m = 0u - c;
    return (a & m) | (b & ~m);
}

static MLOAD__INLINE uint32_t mload__h2f(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16, em = h & 0x7FFFu;
    uint32_t normal = (em << 13) + 0x38000000u;               /* rebias 15 -> 127 */
    uint32_t special = (em << 13) | 0x7F800000u;              /* Inf / NaN */
    uint32_t sub = mload__f2u(MLOAD__CAST(float, MLOAD__CAST(int32_t, em)) * 5.9604644775390625e-08f); /* em * 2^-24 */
    uint32_t r = mload__sel(em >= 0x7C00u, special, mload__sel(em >= 0x400u, normal, sub));
    return r | sign;
}

static MLOAD__INLINE uint32_t mload__f2h(uint32_t f) {
    uint32_t sign = (f >> 16) & 0x8000u, a = f & 0x7FFFFFFFu;
    uint32_t c = a < 0x477FF000u ? a : 0x477FF000u;                     /* overflow: clamps to what rounds to Inf */
    uint32_t norm = (c + 0xC8000FFFu + ((c >> 13) & 1u)) >> 13;        /* RNE, rebias 127 -> 15 */
    uint32_t sub = mload__f2u(mload__u2f(a) + 0.5f) - 0x3F000000u;     /* RNE at step 2^-24 */
    uint32_t r = mload__sel(a >= 0x38800000u, norm, sub);
    r = mload__sel(a > 0x7F800000u, 0x7E00u, r);
    return r | sign;
}

static MLOAD__INLINE uint32_t mload__f2bf(uint32_t f) {
    uint32_t r = (f + 0x7FFFu + ((f >> 16) & 1u)) >> 16;
    return mload__sel((f & 0x7FFFFFFFu) > 0x7F800000u, ((f >> 16) & 0x8000u) | 0x7FC0u, r);
}

static MLOAD__INLINE uint32_t mload__f2e4m3(uint32_t f, uint32_t ovf) {
    uint32_t sign = (f >> 24) & 0x80u, a = f & 0x7FFFFFFFu;
    uint32_t norm = ((a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20) - 0x3C0u;    /* rebias 127 -> 7 */
    uint32_t sub = mload__f2u(mload__u2f(a) + 16384.0f) - 0x46800000u;    /* RNE at step 2^-9 */
    uint32_t r = mload__sel(a > 0x43E80000u, ovf, mload__sel(a >= 0x3C800000u, norm, sub)); /* > 464 overflows */
    r = mload__sel(a > 0x7F800000u, 0x7Fu, r);
    return r | sign;
}

/* the saturating forms (the default): overflow clamps to what rounds to the
   largest finite value, one select fewer */
static MLOAD__INLINE uint32_t mload__f2e4m3_sat(uint32_t f) {
    uint32_t sign = (f >> 24) & 0x80u, a = f & 0x7FFFFFFFu;
    uint32_t c = a < 0x43E80000u ? a : 0x43E80000u; /* 464 rounds (tie, even) to 448 */
    uint32_t norm = ((c + 0x7FFFFu + ((c >> 20) & 1u)) >> 20) - 0x3C0u;
    uint32_t sub = mload__f2u(mload__u2f(a) + 16384.0f) - 0x46800000u;
    uint32_t r = mload__sel(a >= 0x3C800000u, norm, sub);
    return mload__sel(a > 0x7F800000u, 0x7Fu, r) | sign;
}
static MLOAD__INLINE uint32_t mload__f2e5m2_sat(uint32_t f) {
    uint32_t sign = (f >> 24) & 0x80u, a = f & 0x7FFFFFFFu;
    uint32_t c = a < 0x476FFFFFu ? a : 0x476FFFFFu; /* just below 61440: rounds to 57344 */
    uint32_t norm = ((c + 0xFFFFFu + ((c >> 21) & 1u)) >> 21) - 0x1C0u;
    uint32_t sub = mload__f2u(mload__u2f(a) + 128.0f) - 0x43000000u;
    uint32_t r = mload__sel(a >= 0x38800000u, norm, sub);
    return mload__sel(a > 0x7F800000u, 0x7Eu, r) | sign;
}

static MLOAD__INLINE uint32_t mload__f2e5m2(uint32_t f, uint32_t ovf) {
    uint32_t sign = (f >> 24) & 0x80u, a = f & 0x7FFFFFFFu;
    uint32_t norm = ((a + 0xFFFFFu + ((a >> 21) & 1u)) >> 21) - 0x1C0u;    /* rebias 127 -> 15 */
    uint32_t sub = mload__f2u(mload__u2f(a) + 128.0f) - 0x43000000u;      /* RNE at step 2^-16 */
    uint32_t r = mload__sel(a >= 0x47700000u, ovf, mload__sel(a >= 0x38800000u, norm, sub)); /* >= 61440 overflows */
    r = mload__sel(a > 0x7F800000u, 0x7Eu, r);
    return r | sign;
}

/* F32 bits -> F64 bits, exact, in integers: the hardware's widening treats
   subnormal inputs as zero when the caller runs with DAZ set */
static MLOAD__INLINE uint64_t mload__f2d_bits(uint32_t f) {
    uint64_t sign = MLOAD__CAST(uint64_t, f >> 31) << 63, man = f & 0x7FFFFFu;
    uint32_t ex = (f >> 23) & 0xFFu;
    int e;
    if (ex == 0xFFu) return sign | 0x7FF0000000000000ull | (man << 29); /* Inf, NaN (payload kept) */
    if (ex == 0) {
        if (man == 0) return sign;
        for (e = -126; !(man & 0x800000u); --e) man <<= 1; /* a subnormal: normalised */
        return sign | (MLOAD__CAST(uint64_t, e + 1023) << 52) | ((man & 0x7FFFFFu) << 29);
    }
    return sign | (MLOAD__CAST(uint64_t, ex - 127 + 1023) << 52) | (man << 29);
}

/* F64 bits -> F32 bits rounded to nearest even, in integers: the
   hardware's narrowing flushes subnormal results to zero under FTZ */
static uint32_t mload__d2f_bits(uint64_t b) {
    uint32_t sign = MLOAD__CAST(uint32_t, b >> 63) << 31;
    int ex = MLOAD__CAST(int, (b >> 52) & 0x7FFu), shift;
    uint64_t man = b & 0xFFFFFFFFFFFFFull, q, rem, half;
    if (ex == 0x7FF) return sign | 0x7F800000u | (man ? 0x400000u | MLOAD__CAST(uint32_t, man >> 29) : 0u);
    if (ex == 0) return sign; /* F64 subnormals are far below F32's: zero */
    man |= 1ull << 52;
    ex = ex - 1023 + 127;    /* the F32 exponent of the value */
    if (ex >= 0xFF) return sign | 0x7F800000u;
    shift = ex > 0 ? 29 : 29 + 1 - ex; /* subnormal results lose more bits */
    if (shift > 54) return sign;
    q = man >> shift;
    rem = man & ((1ull << shift) - 1u);
    half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q; /* may carry into the exponent: still right */
    if (ex > 0) return sign | ((MLOAD__CAST(uint32_t, ex - 1) << 23) + MLOAD__CAST(uint32_t, q)); /* q holds the hidden bit */
    return sign | MLOAD__CAST(uint32_t, q);
}

/* F8_E4M3 -> F32 bits, exact */
static MLOAD__INLINE uint32_t mload__e4m3f(uint32_t b) {
    uint32_t sign = (b & 0x80u) << 24, em = b & 0x7Fu;
    uint32_t normal = (em << 20) + 0x3C000000u;                                      /* rebias 7 -> 127 */
    uint32_t sub = mload__f2u(MLOAD__CAST(float, MLOAD__CAST(int32_t, em)) * 0.001953125f); /* em * 2^-9 */
    return mload__sel(em == 0x7Fu, 0x7FC00000u, mload__sel(em >= 8u, normal, sub)) | sign;
}

/* little-endian element access through memcpy (unaligned is fine) */
#define MLOAD__LD16(p, i) mload__ld16(MLOAD__CAST(const unsigned char *, p) + 2 * (i))
#define MLOAD__LD32(p, i) mload__ld32(MLOAD__CAST(const unsigned char *, p) + 4 * (i))
static MLOAD__INLINE uint32_t mload__ld16(const unsigned char *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static MLOAD__INLINE uint32_t mload__ld32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static MLOAD__INLINE void mload__st16(unsigned char *p, uint32_t v) { uint16_t w = MLOAD__CAST(uint16_t, v); memcpy(p, &w, 2); }
static MLOAD__INLINE void mload__st32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

/* fp8 encoding of n F32 elements: two loops, so that the saturate-or-not
   choice stays out of the loop the compiler vectorises */
#define MLOAD__F8_LOOP(enc, enc_sat, ovf_code)                                                     \
    do {                                                                                           \
        if (flags & MLOAD_F8_OVERFLOW_NONSAT)                                                      \
            for (i = 0; i < n; ++i) d[i] = MLOAD__CAST(unsigned char, enc(MLOAD__LD32(s, i), ovf_code)); \
        else                                                                                       \
            for (i = 0; i < n; ++i) d[i] = MLOAD__CAST(unsigned char, enc_sat(MLOAD__LD32(s, i)));  \
    } while (0)

/* F32 source (n elements, any alignment) -> dst of a float dtype. */
MLOAD__VECTORIZE static void mload__from_f32_c(unsigned char *d, mload_dtype dt, const unsigned char *s, size_t n,
                                             uint32_t flags) {
    size_t i;
    switch (dt) {
    case MLOAD_DTYPE_F32: memcpy(d, s, n * 4); break;
    case MLOAD_DTYPE_F16: for (i = 0; i < n; ++i) mload__st16(d + 2 * i, mload__f2h(MLOAD__LD32(s, i))); break;
    case MLOAD_DTYPE_BF16: for (i = 0; i < n; ++i) mload__st16(d + 2 * i, mload__f2bf(MLOAD__LD32(s, i))); break;
    case MLOAD_DTYPE_F8_E4M3: MLOAD__F8_LOOP(mload__f2e4m3, mload__f2e4m3_sat, 0x7Fu); break;
    case MLOAD_DTYPE_F8_E5M2: MLOAD__F8_LOOP(mload__f2e5m2, mload__f2e5m2_sat, 0x7Cu); break;
    case MLOAD_DTYPE_F64:
        for (i = 0; i < n; ++i) {
            uint64_t v = mload__f2d_bits(MLOAD__LD32(s, i));
            memcpy(d + 8 * i, &v, 8);
        }
        break;
    default: break;
    }
}

/* F16 / BF16 source -> F32 (n elements, any alignment) */
MLOAD__VECTORIZE static void mload__to_f32_c(unsigned char *d, const unsigned char *s, mload_dtype st, size_t n) {
    size_t i;
    if (st == MLOAD_DTYPE_BF16) for (i = 0; i < n; ++i) mload__st32(d + 4 * i, MLOAD__LD16(s, i) << 16);
    else for (i = 0; i < n; ++i) mload__st32(d + 4 * i, mload__h2f(MLOAD__LD16(s, i)));
}

/* F8_E4M3 / F8_E5M2 -> F32, BF16, F16: arithmetic, so it vectorises */
MLOAD__VECTORIZE static void mload__from_f8_c(unsigned char *d, mload_dtype dt, const unsigned char *s, mload_dtype st, size_t n) {
    size_t i;
    if (st == MLOAD_DTYPE_F8_E5M2) { /* the top byte of an F16 */
        if (dt == MLOAD_DTYPE_F16) for (i = 0; i < n; ++i) mload__st16(d + 2 * i, MLOAD__CAST(uint32_t, s[i]) << 8);
        else if (dt == MLOAD_DTYPE_F32) for (i = 0; i < n; ++i) mload__st32(d + 4 * i, mload__h2f(MLOAD__CAST(uint32_t, s[i]) << 8));
        else for (i = 0; i < n; ++i) mload__st16(d + 2 * i, mload__h2f(MLOAD__CAST(uint32_t, s[i]) << 8) >> 16);
        return;
    }
    if (dt == MLOAD_DTYPE_F32) for (i = 0; i < n; ++i) mload__st32(d + 4 * i, mload__e4m3f(s[i]));
    else if (dt == MLOAD_DTYPE_BF16) for (i = 0; i < n; ++i) mload__st16(d + 2 * i, mload__e4m3f(s[i]) >> 16); /* exact in BF16 */
    else for (i = 0; i < n; ++i) mload__st16(d + 2 * i, mload__f2h(mload__e4m3f(s[i])));             /* exact in F16 */
}

/* ---- hand-written kernels, picked at run time (x86-64: AVX2 with F16C, AVX-512) ----
   The same results as the C loops above, bit for bit, whatever the FP
   environment: F16C converts half floats with the rounding given in the
   instruction and handles subnormals itself (DAZ/FTZ do not apply); fp8
   widens through F16 (exact) and narrows in integers like the C loops. Each
   kernel does whole blocks and returns how many elements it did; the C loop
   finishes the tail. mload_cast_set_simd caps the level (the tests run every
   level the CPU offers). */

#if MLOAD__X86_SIMD
static int mload__simd_level = -1; /* -1 until detected; then the level in use */
static int mload__simd_cpu_level = -1;

static int mload__simd_cpu(void) {
    unsigned a, b, c, d, lo, hi;
    int level = MLOAD_SIMD_PORTABLE;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return level;
    /* OSXSAVE, AVX, F16C, FMA */
    if ((c & (1u << 27)) && (c & (1u << 28)) && (c & (1u << 29)) && (c & (1u << 12))) {
        __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0u)); /* the registers the OS saves */
        (void)hi;
        if ((lo & 6u) == 6u && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 5))) {
            level = MLOAD_SIMD_AVX2;
            /* AVX512F (16), AVX512BW (30), AVX512VL (31), and the OS saving opmask and ZMM state */
            if ((b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 31)) && (lo & 0xE6u) == 0xE6u) level = MLOAD_SIMD_AVX512;
        }
    }
    return level;
}

/* what the CPU offers, detected once */
static int mload__simd_best(void) {
    int c = __atomic_load_n(&mload__simd_cpu_level, __ATOMIC_RELAXED);
    if (c < 0) {
        c = mload__simd_cpu();
        __atomic_store_n(&mload__simd_cpu_level, c, __ATOMIC_RELAXED);
    }
    return c;
}

/* the level in use: the best one until mload_cast_set_simd caps it (a cap
   set while the first cast detects the CPU is kept) */
static int mload__simd(void) {
    int l = __atomic_load_n(&mload__simd_level, __ATOMIC_RELAXED), unset = -1;
    if (l < 0) {
        l = mload__simd_best();
        if (!__atomic_compare_exchange_n(&mload__simd_level, &unset, l, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) l = unset;
    }
    return l;
}

static int mload__simd_cap(int limit) {
    int best = mload__simd_best(), l = limit < best ? limit : best;
    __atomic_store_n(&mload__simd_level, l, __ATOMIC_RELAXED);
    return l;
}

#define MLOAD__AVX2 __attribute__((target("avx2,f16c,fma")))
#define MLOAD__LDU256(p) _mm256_loadu_si256(MLOAD__PCAST(const __m256i *, p))
#define MLOAD__STU256(p, v) _mm256_storeu_si256(MLOAD__PCAST(__m256i *, p), v)
#define MLOAD__LDU128(p) _mm_loadu_si128(MLOAD__PCAST(const __m128i *, p))
#define MLOAD__STU128(p, v) _mm_storeu_si128(MLOAD__PCAST(__m128i *, p), v)

MLOAD__AVX2 static MLOAD__INLINE __m256i mload__k32(uint32_t v) { return _mm256_set1_epi32(MLOAD__CAST(int, v)); }
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__gt32(__m256i a, uint32_t v) { return _mm256_cmpgt_epi32(a, mload__k32(v)); }
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__sel256(__m256i c, __m256i a, __m256i b) { return _mm256_blendv_epi8(b, a, c); }

/* 8 F16 codes -> F32 bits: the instruction quiets signalling NaNs, the C
   loop keeps a NaN's bits: put the quiet bit back as the input had it */
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__avx2_h2f(__m128i h) {
    __m256i x = _mm256_cvtepu16_epi32(h), f = _mm256_castps_si256(_mm256_cvtph_ps(h));
    __m256i nan = mload__gt32(_mm256_and_si256(x, mload__k32(0x7FFFu)), 0x7C00u);
    __m256i q = _mm256_andnot_si256(_mm256_slli_epi32(x, 13), mload__k32(0x400000u));
    return _mm256_xor_si256(f, _mm256_and_si256(nan, q));
}

/* 8 F32 -> F16 codes, ties to even, as the instruction gives them */
MLOAD__AVX2 static MLOAD__INLINE __m128i mload__avx2_f2h_raw(__m256i f) { return _mm256_cvtps_ph(_mm256_castsi256_ps(f), 0); }

/* ... with the C loop's NaN: 0x7E00 with the sign */
MLOAD__AVX2 static MLOAD__INLINE __m128i mload__avx2_f2h(__m256i f) {
    __m128i h = mload__avx2_f2h_raw(f);
    __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7FFF)), _mm_set1_epi16(0x7C00));
    __m128i q = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(MLOAD__CAST(short, 0x8000))), _mm_set1_epi16(0x7E00));
    return _mm_blendv_epi8(h, q, nan);
}

/* 8 F8_E4M3 codes (low 8 bytes) -> F32 bits: the code's fields in an F16
   (exponent bias 15 for 7, subnormals included) is the value / 256, exactly */
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__avx2_e4m3f(__m128i b) {
    __m128i w = _mm_cvtepu8_epi16(b);
    __m128i h = _mm_or_si128(_mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16(0x3F80)),
                             _mm_and_si128(_mm_slli_epi16(w, 8), _mm_set1_epi16(MLOAD__CAST(short, 0x8000))));
    __m256i f = _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f)));
    __m256i nan = _mm256_cmpeq_epi32(_mm256_and_si256(f, mload__k32(0x7FFFFFFFu)), mload__k32(0x43F00000u)); /* S.1111.111 read as 480 */
    __m256i q = _mm256_or_si256(_mm256_and_si256(f, mload__k32(0x80000000u)), mload__k32(0x7FC00000u));
    return mload__sel256(nan, q, f);
}

/* F32 bits -> BF16 codes in 32-bit lanes (mload__f2bf) */
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__avx2_f2bf(__m256i f) {
    __m256i hi = _mm256_srli_epi32(f, 16);
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(f, mload__k32(0x7FFFu)), _mm256_and_si256(hi, mload__k32(1u))), 16);
    __m256i q = _mm256_or_si256(_mm256_and_si256(hi, mload__k32(0x8000u)), mload__k32(0x7FC0u));
    return mload__sel256(mload__gt32(_mm256_and_si256(f, mload__k32(0x7FFFFFFFu)), 0x7F800000u), q, r);
}

/* F32 bits -> fp8 magnitude codes in 32-bit lanes (the sign is added by
   mload__avx2_f32_to_f8): mload__f2e4m3(_sat) and mload__f2e5m2(_sat) with
   their constants as arguments */
typedef struct mload__f8k {
    int shift;                 /* 23 - mantissa bits */
    uint32_t round;            /* half a step - 1, less (127 - bias) << 23 - shift: rounds and rebiases */
    uint32_t normal_min;       /* smallest normal value (F32 bits) */
    uint32_t sat_clamp;        /* saturating: inputs clamp to this */
    uint32_t ovf_at;           /* not saturating: overflow from this on */
    uint32_t ovf_code, nan_code;
    float sub_add;             /* adding it rounds to the subnormal step */
    uint32_t sub_bits;         /* ... and these are its bits */
} mload__f8k;
static const mload__f8k mload__f8k_e4m3 = {20, 0x7FFFFu - (0x3C0u << 20), 0x3C800000u, 0x43E80000u, 0x43E80001u, 0x7Fu, 0x7Fu, 16384.0f, 0x46800000u};
static const mload__f8k mload__f8k_e5m2 = {21, 0xFFFFFu - (0x1C0u << 21), 0x38800000u, 0x476FFFFFu, 0x47700000u, 0x7Cu, 0x7Eu, 128.0f, 0x43000000u};

MLOAD__AVX2 static MLOAD__INLINE __m256i mload__avx2_f2f8(__m256i f, const mload__f8k *k, int sat) {
    __m256i a = _mm256_and_si256(f, mload__k32(0x7FFFFFFFu));
    __m256i c = sat ? _mm256_min_epi32(a, mload__k32(k->sat_clamp)) : a;
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(c, k->shift), mload__k32(1u));
    __m256i norm = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(c, mload__k32(k->round)), odd), k->shift);
    __m256i sub = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(k->sub_add))),
                                   mload__k32(k->sub_bits));
    __m256i r = mload__sel256(mload__gt32(a, k->normal_min - 1u), norm, sub);
    if (!sat) r = mload__sel256(mload__gt32(a, k->ovf_at - 1u), mload__k32(k->ovf_code), r);
    return mload__sel256(mload__gt32(a, 0x7F800000u), mload__k32(k->nan_code), r);
}

/* 32-bit lanes holding 16-bit codes, in order */
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__avx2_pack16(__m256i a, __m256i b) {
    return _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
}

/* outputs this large go around the cache (as memcpy's do): no read for
   ownership of lines the caller is not about to read */
#define MLOAD__STREAM_BYTES (16u << 20)

/* nt: d is 64-byte aligned (mload__simd_f32_to_f8), stream the output */
MLOAD__AVX2 static size_t mload__avx2_f32_to_f8(unsigned char *d, const unsigned char *s, size_t n, const mload__f8k *k, int sat,
                                               int nt) {
    size_t i;
    for (i = 0; i + 32 <= n; i += 32) {
        const unsigned char *p = s + 4 * i;
        __m256i f0 = MLOAD__LDU256(p), f1 = MLOAD__LDU256(p + 32), f2 = MLOAD__LDU256(p + 64), f3 = MLOAD__LDU256(p + 96);
        __m256i r = _mm256_packus_epi16(_mm256_packus_epi32(mload__avx2_f2f8(f0, k, sat), mload__avx2_f2f8(f1, k, sat)),
                                        _mm256_packus_epi32(mload__avx2_f2f8(f2, k, sat), mload__avx2_f2f8(f3, k, sat)));
        /* signed saturation keeps each input's sign in the top bit of its byte */
        __m256i sign = _mm256_packs_epi16(_mm256_packs_epi32(f0, f1), _mm256_packs_epi32(f2, f3));
        r = _mm256_or_si256(r, _mm256_and_si256(sign, _mm256_set1_epi8(MLOAD__CAST(char, 0x80))));
        r = _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        if (nt) _mm256_stream_si256(MLOAD__PCAST(__m256i *, d + i), r);
        else MLOAD__STU256(d + i, r);
    }
    if (nt) _mm_sfence();
    return i;
}

MLOAD__AVX2 static size_t mload__avx2_from_f32(unsigned char *d, mload_dtype dt, const unsigned char *s, size_t n) {
    size_t i = 0;
    switch (dt) {
    case MLOAD_DTYPE_F16:
        for (; i + 16 <= n; i += 16) {
            MLOAD__STU128(d + 2 * i, mload__avx2_f2h(MLOAD__LDU256(s + 4 * i)));
            MLOAD__STU128(d + 2 * i + 16, mload__avx2_f2h(MLOAD__LDU256(s + 4 * i + 32)));
        }
        return i;
    case MLOAD_DTYPE_BF16:
        for (; i + 16 <= n; i += 16)
            MLOAD__STU256(d + 2 * i, mload__avx2_pack16(mload__avx2_f2bf(MLOAD__LDU256(s + 4 * i)),
                                                         mload__avx2_f2bf(MLOAD__LDU256(s + 4 * i + 32))));
        return i;
    default: return 0; /* fp8: mload__simd_f32_to_f8 */
    }
}

MLOAD__AVX2 static size_t mload__avx2_to_f32(unsigned char *d, const unsigned char *s, mload_dtype st, size_t n) {
    size_t i;
    for (i = 0; i + 16 <= n; i += 16) {
        __m128i lo = MLOAD__LDU128(s + 2 * i), hi = MLOAD__LDU128(s + 2 * i + 16);
        if (st == MLOAD_DTYPE_BF16) {
            MLOAD__STU256(d + 4 * i, _mm256_slli_epi32(_mm256_cvtepu16_epi32(lo), 16));
            MLOAD__STU256(d + 4 * i + 32, _mm256_slli_epi32(_mm256_cvtepu16_epi32(hi), 16));
        } else {
            MLOAD__STU256(d + 4 * i, mload__avx2_h2f(lo));
            MLOAD__STU256(d + 4 * i + 32, mload__avx2_h2f(hi));
        }
    }
    return i;
}

/* 16 F8_E4M3 codes -> 16-bit float codes in one step, exactly: a normal
   code rebiased (exponent field at bit `shift`), a subnormal one (em < 8)
   from a table of the 8 codes of m * 2^-9, indexed by pshufb in 16-bit
   pairs; NaN (S.1111.111) -> the target's quiet NaN */
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__avx2_e4m3_16(__m128i b, int shift, short rebias, __m256i table, short nan) {
    __m256i w = _mm256_cvtepu8_epi16(b), em = _mm256_and_si256(w, _mm256_set1_epi16(0x7F));
    __m256i sign = _mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x80)), 8);
    __m256i norm = _mm256_add_epi16(_mm256_slli_epi16(em, shift), _mm256_set1_epi16(rebias));
    __m256i idx = _mm256_add_epi16(_mm256_mullo_epi16(em, _mm256_set1_epi16(0x0202)), _mm256_set1_epi16(0x0100));
    __m256i r = _mm256_blendv_epi8(norm, _mm256_shuffle_epi8(table, idx), _mm256_cmpgt_epi16(_mm256_set1_epi16(8), em));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi16(nan), _mm256_cmpeq_epi16(em, _mm256_set1_epi16(0x7F)));
    return _mm256_or_si256(r, sign);
}

/* 8 fp8 codes (low 8 bytes) -> F32 bits */
MLOAD__AVX2 static MLOAD__INLINE __m256i mload__avx2_f8f(__m128i b, int e5m2) {
    return e5m2 ? mload__avx2_h2f(_mm_slli_epi16(_mm_cvtepu8_epi16(b), 8)) : mload__avx2_e4m3f(b);
}

MLOAD__AVX2 static size_t mload__avx2_from_f8(unsigned char *d, mload_dtype dt, const unsigned char *s, mload_dtype st, size_t n) {
    size_t i;
    int e5 = st == MLOAD_DTYPE_F8_E5M2;
    if (e5 && dt == MLOAD_DTYPE_F16) return 0; /* a shift: the C loop is as fast */
    if (!e5 && dt != MLOAD_DTYPE_F32) {
        int bf = dt == MLOAD_DTYPE_BF16;
        __m256i table = bf ? _mm256_setr_epi16(0, 0x3B00, 0x3B80, 0x3BC0, 0x3C00, 0x3C20, 0x3C40, 0x3C60,
                                               0, 0x3B00, 0x3B80, 0x3BC0, 0x3C00, 0x3C20, 0x3C40, 0x3C60)
                           : _mm256_setr_epi16(0, 0x1800, 0x1C00, 0x1E00, 0x2000, 0x2100, 0x2200, 0x2300,
                                               0, 0x1800, 0x1C00, 0x1E00, 0x2000, 0x2100, 0x2200, 0x2300);
        for (i = 0; i + 16 <= n; i += 16)
            MLOAD__STU256(d + 2 * i, bf ? mload__avx2_e4m3_16(MLOAD__LDU128(s + i), 4, 0x3C00, table, 0x7FC0)
                                        : mload__avx2_e4m3_16(MLOAD__LDU128(s + i), 7, 0x2000, table, 0x7E00));
        return i;
    }
    for (i = 0; i + 16 <= n; i += 16) {
        __m128i b = MLOAD__LDU128(s + i);
        __m256i lo = mload__avx2_f8f(b, e5), hi = mload__avx2_f8f(_mm_srli_si128(b, 8), e5);
        if (dt == MLOAD_DTYPE_F32) {
            MLOAD__STU256(d + 4 * i, lo);
            MLOAD__STU256(d + 4 * i + 32, hi);
        } else if (dt == MLOAD_DTYPE_BF16) { /* exact */
            MLOAD__STU256(d + 2 * i, mload__avx2_pack16(_mm256_srli_epi32(lo, 16), _mm256_srli_epi32(hi, 16)));
        } else { /* F16, exact */
            MLOAD__STU128(d + 2 * i, mload__avx2_f2h(lo));
            MLOAD__STU128(d + 2 * i + 16, mload__avx2_f2h(hi));
        }
    }
    return i;
}

/* ---- the same kernels 16 lanes wide (AVX-512 F, BW, VL): masks instead of
   blends, narrowing moves instead of packs ---- */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push /* GCC 12's AVX-512 intrinsics warn in C++ of their own undefined start values (its bug 105593) */
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define MLOAD__AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c,fma")))

MLOAD__AVX512 static MLOAD__INLINE __m512i mload__q32(uint32_t v) { return _mm512_set1_epi32(MLOAD__CAST(int, v)); }
MLOAD__AVX512 static MLOAD__INLINE __mmask16 mload__qgt(__m512i a, uint32_t v) { return _mm512_cmpgt_epi32_mask(a, mload__q32(v)); }

MLOAD__AVX512 static MLOAD__INLINE __m512i mload__avx512_h2f(__m256i h) {
    __m512i x = _mm512_cvtepu16_epi32(h), f = _mm512_castps_si512(_mm512_cvtph_ps(h));
    __m512i q = _mm512_andnot_si512(_mm512_slli_epi32(x, 13), mload__q32(0x400000u));
    return _mm512_mask_xor_epi32(f, mload__qgt(_mm512_and_si512(x, mload__q32(0x7FFFu)), 0x7C00u), f, q);
}

MLOAD__AVX512 static MLOAD__INLINE __m256i mload__avx512_f2h(__m512i f) {
    /* two 8-lane conversions: GCC's 16-lane form is a macro that trips -Wsign-conversion without -O */
    __m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(mload__avx2_f2h_raw(_mm512_castsi512_si256(f))),
                                        mload__avx2_f2h_raw(_mm512_extracti64x4_epi64(f, 1)), 1);
    __mmask16 nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x7FFF)), _mm256_set1_epi16(0x7C00));
    __m256i q = _mm256_or_si256(_mm256_and_si256(h, _mm256_set1_epi16(MLOAD__CAST(short, 0x8000))), _mm256_set1_epi16(0x7E00));
    return _mm256_mask_mov_epi16(h, nan, q);
}

MLOAD__AVX512 static MLOAD__INLINE __m512i mload__avx512_e4m3f(__m128i b) {
    __m256i w = _mm256_cvtepu8_epi16(b);
    __m256i h = _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(0x3F80)),
                                _mm256_and_si256(_mm256_slli_epi16(w, 8), _mm256_set1_epi16(MLOAD__CAST(short, 0x8000))));
    __m512i f = _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f)));
    __mmask16 nan = _mm512_cmpeq_epi32_mask(_mm512_and_si512(f, mload__q32(0x7FFFFFFFu)), mload__q32(0x43F00000u));
    return _mm512_mask_mov_epi32(f, nan, _mm512_or_si512(_mm512_and_si512(f, mload__q32(0x80000000u)), mload__q32(0x7FC00000u)));
}

/* 32 F8_E4M3 codes -> 16-bit codes (mload__avx2_e4m3_16; the subnormal
   table indexed by vpermw) */
MLOAD__AVX512 static MLOAD__INLINE __m512i mload__avx512_e4m3_16(__m256i b, int shift, short rebias, __m512i table, short nan) {
    __m512i w = _mm512_cvtepu8_epi16(b), em = _mm512_and_si512(w, _mm512_set1_epi16(0x7F));
    __m512i sign = _mm512_slli_epi16(_mm512_and_si512(w, _mm512_set1_epi16(0x80)), 8);
    __m512i r = _mm512_add_epi16(_mm512_sll_epi16(em, _mm_cvtsi32_si128(shift)), _mm512_set1_epi16(rebias));
    r = _mm512_mask_mov_epi16(r, _mm512_cmplt_epu16_mask(em, _mm512_set1_epi16(8)), _mm512_permutexvar_epi16(em, table));
    r = _mm512_mask_mov_epi16(r, _mm512_cmpeq_epi16_mask(em, _mm512_set1_epi16(0x7F)), _mm512_set1_epi16(nan));
    return _mm512_or_si512(r, sign);
}

MLOAD__AVX512 static MLOAD__INLINE __m512i mload__avx512_f2bf(__m512i f) {
    __m512i hi = _mm512_srli_epi32(f, 16);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(f, mload__q32(0x7FFFu)), _mm512_and_si512(hi, mload__q32(1u))), 16);
    __m512i q = _mm512_or_si512(_mm512_and_si512(hi, mload__q32(0x8000u)), mload__q32(0x7FC0u));
    return _mm512_mask_mov_epi32(r, mload__qgt(_mm512_and_si512(f, mload__q32(0x7FFFFFFFu)), 0x7F800000u), q);
}

/* 16 F32 -> 16 fp8 codes (mload__avx2_f2f8, with the sign) */
MLOAD__AVX512 static MLOAD__INLINE __m128i mload__avx512_f2f8(__m512i f, const mload__f8k *k, int sat) {
    __m512i a = _mm512_and_si512(f, mload__q32(0x7FFFFFFFu));
    __m512i c = sat ? _mm512_min_epi32(a, mload__q32(k->sat_clamp)) : a;
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(c, MLOAD__CAST(unsigned, k->shift)), mload__q32(1u));
    __m512i norm = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(c, mload__q32(k->round)), odd), MLOAD__CAST(unsigned, k->shift));
    __m512i sub = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(a), _mm512_set1_ps(k->sub_add))),
                                   mload__q32(k->sub_bits));
    __m512i r = _mm512_mask_mov_epi32(sub, mload__qgt(a, k->normal_min - 1u), norm);
    if (!sat) r = _mm512_mask_mov_epi32(r, mload__qgt(a, k->ovf_at - 1u), mload__q32(k->ovf_code));
    r = _mm512_mask_mov_epi32(r, mload__qgt(a, 0x7F800000u), mload__q32(k->nan_code));
    r = _mm512_ternarylogic_epi32(r, _mm512_srli_epi32(f, 24), mload__q32(0x80u), 0xF8); /* r | (f >> 24 & 0x80) */
    return _mm512_cvtepi32_epi8(r);
}

MLOAD__AVX512 static size_t mload__avx512_f32_to_f8(unsigned char *d, const unsigned char *s, size_t n, const mload__f8k *k,
                                                   int sat, int nt) {
    size_t i;
    for (i = 0; i + 64 <= n; i += 64) {
        const unsigned char *p = s + 4 * i;
        __m512i r = _mm512_zextsi128_si512(mload__avx512_f2f8(_mm512_loadu_si512(p), k, sat));
        r = _mm512_inserti32x4(r, mload__avx512_f2f8(_mm512_loadu_si512(p + 64), k, sat), 1);
        r = _mm512_inserti32x4(r, mload__avx512_f2f8(_mm512_loadu_si512(p + 128), k, sat), 2);
        r = _mm512_inserti32x4(r, mload__avx512_f2f8(_mm512_loadu_si512(p + 192), k, sat), 3);
        if (nt) _mm512_stream_si512(MLOAD__PCAST(__m512i *, d + i), r);
        else _mm512_storeu_si512(d + i, r);
    }
    if (nt) _mm_sfence();
    return i;
}

MLOAD__AVX512 static size_t mload__avx512_from_f32(unsigned char *d, mload_dtype dt, const unsigned char *s, size_t n) {
    size_t i = 0;
    switch (dt) {
    case MLOAD_DTYPE_F16:
        for (; i + 16 <= n; i += 16) MLOAD__STU256(d + 2 * i, mload__avx512_f2h(_mm512_loadu_si512(s + 4 * i)));
        return i;
    case MLOAD_DTYPE_BF16:
        for (; i + 16 <= n; i += 16) MLOAD__STU256(d + 2 * i, _mm512_cvtepi32_epi16(mload__avx512_f2bf(_mm512_loadu_si512(s + 4 * i))));
        return i;
    default: return 0; /* fp8: mload__simd_f32_to_f8 */
    }
}

MLOAD__AVX512 static size_t mload__avx512_to_f32(unsigned char *d, const unsigned char *s, mload_dtype st, size_t n) {
    size_t i;
    for (i = 0; i + 16 <= n; i += 16) {
        __m256i h = MLOAD__LDU256(s + 2 * i);
        _mm512_storeu_si512(d + 4 * i, st == MLOAD_DTYPE_BF16 ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16) : mload__avx512_h2f(h));
    }
    return i;
}

MLOAD__AVX512 static size_t mload__avx512_from_f8(unsigned char *d, mload_dtype dt, const unsigned char *s, mload_dtype st, size_t n) {
    size_t i;
    int e5 = st == MLOAD_DTYPE_F8_E5M2;
    if (e5 && dt == MLOAD_DTYPE_F16) return 0; /* a shift: the C loop is as fast */
    if (!e5 && dt != MLOAD_DTYPE_F32) {
        int bf = dt == MLOAD_DTYPE_BF16;
        __m512i table = _mm512_zextsi128_si512(bf ? _mm_setr_epi16(0, 0x3B00, 0x3B80, 0x3BC0, 0x3C00, 0x3C20, 0x3C40, 0x3C60)
                                                  : _mm_setr_epi16(0, 0x1800, 0x1C00, 0x1E00, 0x2000, 0x2100, 0x2200, 0x2300));
        for (i = 0; i + 32 <= n; i += 32)
            _mm512_storeu_si512(d + 2 * i, bf ? mload__avx512_e4m3_16(MLOAD__LDU256(s + i), 4, 0x3C00, table, 0x7FC0)
                                              : mload__avx512_e4m3_16(MLOAD__LDU256(s + i), 7, 0x2000, table, 0x7E00));
        return i;
    }
    for (i = 0; i + 16 <= n; i += 16) {
        __m128i b = MLOAD__LDU128(s + i);
        __m512i f = e5 ? mload__avx512_h2f(_mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8)) : mload__avx512_e4m3f(b);
        if (dt == MLOAD_DTYPE_F32) _mm512_storeu_si512(d + 4 * i, f);
        else if (dt == MLOAD_DTYPE_BF16) MLOAD__STU256(d + 2 * i, _mm512_cvtepi32_epi16(_mm512_srli_epi32(f, 16))); /* exact */
        else MLOAD__STU256(d + 2 * i, mload__avx512_f2h(f)); /* F16, exact */
    }
    return i;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#else
static int mload__simd(void) { return MLOAD_SIMD_PORTABLE; }
static int mload__simd_cap(int limit) { (void)limit; return MLOAD_SIMD_PORTABLE; }
#endif /* MLOAD__X86_SIMD */

MODELLOAD_API mload_simd mload_cast_simd(void) { return MLOAD__CAST(mload_simd, mload__simd()); }
MODELLOAD_API mload_simd mload_cast_set_simd(mload_simd limit) {
    return MLOAD__CAST(mload_simd, mload__simd_cap(MLOAD__CAST(int, limit) < 0 ? 0 : MLOAD__CAST(int, limit)));
}
MODELLOAD_API const char *mload_simd_name(mload_simd s) {
    switch (s) {
    case MLOAD_SIMD_PORTABLE: return "portable";
    case MLOAD_SIMD_AVX2: return "avx2";
    case MLOAD_SIMD_AVX512: return "avx512";
    default: return NULL;
    }
}

/* the kernels: the hand-written block loop where there is one, the C loop for the rest */
#if MLOAD__X86_SIMD
/* F32 -> fp8 at a level: large outputs streamed from a 64-byte boundary
   (the C loop writes the head) */
static size_t mload__simd_f32_to_f8(unsigned char *d, mload_dtype dt, const unsigned char *s, size_t n, uint32_t flags, int level) {
    const mload__f8k *k = dt == MLOAD_DTYPE_F8_E4M3 ? &mload__f8k_e4m3 : &mload__f8k_e5m2;
    int nt = n >= MLOAD__STREAM_BYTES, sat = !(flags & MLOAD_F8_OVERFLOW_NONSAT);
    size_t head = nt ? (64u - (MLOAD__PCAST(uintptr_t, d) & 63u)) & 63u : 0;
    mload__from_f32_c(d, dt, s, head, flags);
    d += head;
    s += 4 * head;
    n -= head;
    if (level >= MLOAD_SIMD_AVX512)
        return head + (sat ? mload__avx512_f32_to_f8(d, s, n, k, 1, nt) : mload__avx512_f32_to_f8(d, s, n, k, 0, nt));
    return head + (sat ? mload__avx2_f32_to_f8(d, s, n, k, 1, nt) : mload__avx2_f32_to_f8(d, s, n, k, 0, nt));
}
#endif

static void mload__from_f32(unsigned char *d, mload_dtype dt, const unsigned char *s, size_t n, uint32_t flags) {
    size_t done = 0;
#if MLOAD__X86_SIMD
    int level = mload__simd();
    if (level >= MLOAD_SIMD_AVX2 && (dt == MLOAD_DTYPE_F8_E4M3 || dt == MLOAD_DTYPE_F8_E5M2)) done = mload__simd_f32_to_f8(d, dt, s, n, flags, level);
    else if (level >= MLOAD_SIMD_AVX512) done = mload__avx512_from_f32(d, dt, s, n);
    else if (level >= MLOAD_SIMD_AVX2) done = mload__avx2_from_f32(d, dt, s, n);
#endif
    mload__from_f32_c(d + done * (mload_dtype_bits(dt) / 8u), dt, s + 4 * done, n - done, flags);
}
static void mload__to_f32(unsigned char *d, const unsigned char *s, mload_dtype st, size_t n) {
    size_t done = 0;
#if MLOAD__X86_SIMD
    int level = mload__simd();
    if (level >= MLOAD_SIMD_AVX512) done = mload__avx512_to_f32(d, s, st, n);
    else if (level >= MLOAD_SIMD_AVX2) done = mload__avx2_to_f32(d, s, st, n);
#endif
    mload__to_f32_c(d + 4 * done, s + 2 * done, st, n - done);
}
static void mload__from_f8(unsigned char *d, mload_dtype dt, const unsigned char *s, mload_dtype st, size_t n) {
    size_t done = 0;
#if MLOAD__X86_SIMD
    int level = mload__simd();
    if (level >= MLOAD_SIMD_AVX512) done = mload__avx512_from_f8(d, dt, s, st, n);
    else if (level >= MLOAD_SIMD_AVX2) done = mload__avx2_from_f8(d, dt, s, st, n);
#endif
    mload__from_f8_c(d + done * (mload_dtype_bits(dt) / 8u), dt, s + done, st, n - done);
}

/* 8-bit source through a table of 1, 2 or 4-byte destination codes */
MLOAD__VECTORIZE static void mload__table8(unsigned char *d, const unsigned char *s, size_t n, const unsigned char *table,
                                           size_t db) {
    size_t i;
    if (db == 4) {
        uint32_t t32[256];
        memcpy(t32, table, sizeof t32);
        for (i = 0; i < n; ++i) mload__st32(d + 4 * i, t32[s[i]]);
    } else if (db == 2) {
        uint16_t t16[256];
        memcpy(t16, table, sizeof t16);
        for (i = 0; i < n; ++i) mload__st16(d + 2 * i, t16[s[i]]);
    } else if (db == 1) {
        for (i = 0; i < n; ++i) d[i] = table[s[i]];
    } else {
        for (i = 0; i < n; ++i) memcpy(d + db * i, table + db * s[i], db);
    }
}

/* ---- the general path: blocks through double / 64-bit integers ---- */

#define MLOAD__BLOCK 512

static int mload__is_int(mload_dtype t) {
    mload_kind k = mload_dtype_kind(t);
    return k == MLOAD_KIND_BOOL || k == MLOAD_KIND_UINT || k == MLOAD_KIND_SINT;
}
static int mload__float_src(mload_dtype t) {
    return t == MLOAD_DTYPE_F64 || (mload__dtype_valid(t) && mload__ffmts[t].ebits != 0);
}
/* the float destinations the fast kernels write */
static int mload__kernel_dst(mload_dtype t) {
    return t == MLOAD_DTYPE_F64 || t == MLOAD_DTYPE_F32 || t == MLOAD_DTYPE_F16 || t == MLOAD_DTYPE_BF16 || t == MLOAD_DTYPE_F8_E4M3 || t == MLOAD_DTYPE_F8_E5M2;
}
/* every float destination: the kernels' and the FNUZ fp8 formats (general path) */
static int mload__float_dst(mload_dtype t) {
    return mload__kernel_dst(t) || t == MLOAD_DTYPE_F8_E4M3FNUZ || t == MLOAD_DTYPE_F8_E5M2FNUZ;
}

/* one element of an integer dtype as (negative?, magnitude) */
static void mload__ld_int(const unsigned char *p, mload_dtype t, int *neg, uint64_t *mag) {
    uint64_t u = 0;
    int64_t sv;
    unsigned bytes = mload_dtype_bits(t) / 8u, k;
    for (k = 0; k < bytes; ++k) u |= MLOAD__CAST(uint64_t, p[k]) << (8u * k);
    *neg = 0;
    if (t == MLOAD_DTYPE_BOOL) { *mag = u != 0; return; }
    if (mload_dtype_kind(t) == MLOAD_KIND_SINT && bytes < 8 && (u >> (8u * bytes - 1u)) & 1u)
        u |= ~0ull << (8u * bytes); /* sign-extend */
    if (mload_dtype_kind(t) == MLOAD_KIND_SINT) {
        memcpy(&sv, &u, 8);
        if (sv < 0) { *neg = 1; *mag = 0u - u; return; }
    }
    *mag = u;
}

/* exact integer -> double rounded to odd above 2^53, so that one later
   rounding to a format of <= 51 significant bits is correct */
static double mload__int_to_double(int neg, uint64_t mag) {
    double v;
    if (mag >> 53) {
        int sh = 0;
        uint64_t keep;
        while ((mag >> sh) >> 53) ++sh;
        keep = (mag >> sh) | ((mag & ((1ull << sh) - 1u)) != 0);
        v = MLOAD__CAST(double, keep) * mload__pow2(sh);
    } else {
        v = MLOAD__CAST(double, mag);
    }
    return neg ? -v : v;
}

static void mload__st_int(unsigned char *p, mload_dtype t, int neg, uint64_t mag) {
    unsigned bytes = mload_dtype_bits(t) / 8u, k;
    uint64_t u;
    if (t == MLOAD_DTYPE_BOOL) {
        u = mag != 0;
    } else if (mload_dtype_kind(t) == MLOAD_KIND_UINT) {
        uint64_t max = bytes == 8 ? UINT64_MAX : ((1ull << (8u * bytes)) - 1u);
        u = neg ? 0u : (mag > max ? max : mag);
    } else {
        uint64_t maxpos = (1ull << (8u * bytes - 1u)) - 1u; /* |min| = maxpos + 1 */
        if (neg) u = 0u - (mag > maxpos + 1u ? maxpos + 1u : mag);
        else u = mag > maxpos ? maxpos : mag;
    }
    for (k = 0; k < bytes; ++k) p[k] = MLOAD__CAST(unsigned char, u >> (8u * k));
}

/* double -> integer: truncate, NaN -> 0, saturate */
static void mload__double_to_int(double x, int *neg, uint64_t *mag) {
    *neg = 0;
    *mag = 0;
    if (x != x) return;
    if (x < 0) { *neg = 1; x = -x; }
    if (x >= 18446744073709551616.0) *mag = UINT64_MAX;
    else *mag = MLOAD__CAST(uint64_t, x); /* truncates */
    if (*mag == 0) *neg = 0;
}

static double mload__ld_float(const unsigned char *p, mload_dtype t) {
    if (t == MLOAD_DTYPE_F64) { double d; memcpy(&d, p, 8); return d; }
    if (t == MLOAD_DTYPE_F32) return mload__u2d(mload__f2d_bits(mload__ld32(p)));
    if (t == MLOAD_DTYPE_F16) return mload__u2d(mload__f2d_bits(mload__h2f(mload__ld16(p))));
    if (t == MLOAD_DTYPE_BF16) return mload__u2d(mload__f2d_bits(mload__ld16(p) << 16));
    return mload__decode(p[0], &mload__ffmts[t]);
}

static void mload__st_float(unsigned char *p, mload_dtype t, double x, uint32_t flags) {
    if (t == MLOAD_DTYPE_F64) { memcpy(p, &x, 8); return; }
    if (t == MLOAD_DTYPE_F32) {
        uint32_t f = mload__d2f_bits(mload__d2u(x)); /* round to nearest even, overflow to Inf */
        memcpy(p, &f, 4);
        return;
    }
    if (t == MLOAD_DTYPE_F16 || t == MLOAD_DTYPE_BF16) { mload__st16(p, mload__encode(x, &mload__ffmts[t], flags)); return; }
    p[0] = MLOAD__CAST(unsigned char, mload__encode(x, &mload__ffmts[t], flags));
}

/* element-wise general conversion of n elements */
static void mload__convert_slow(unsigned char *d, mload_dtype dt, const unsigned char *s, mload_dtype st, size_t n,
                                uint32_t flags) {
    size_t i, sb = mload_dtype_bits(st) / 8u, db = mload_dtype_bits(dt) / 8u;
    for (i = 0; i < n; ++i, s += sb, d += db) {
        if (mload__is_int(st)) {
            int neg;
            uint64_t mag;
            mload__ld_int(s, st, &neg, &mag);
            if (mload__is_int(dt)) {
                mload__st_int(d, dt, neg, mag);
            } else if (dt == MLOAD_DTYPE_F64) { /* one rounding, by the hardware */
                double v = MLOAD__CAST(double, mag);
                if (neg) v = -v;
                memcpy(d, &v, 8);
            } else {
                mload__st_float(d, dt, mload__int_to_double(neg, mag), flags);
            }
        } else {
            double x = mload__ld_float(s, st);
            if (dt == MLOAD_DTYPE_BOOL) {
                d[0] = (mload__d2u(x) << 1) != 0; /* on the bits: DAZ would call a subnormal zero */
            } else if (mload__is_int(dt)) {
                int neg;
                uint64_t mag;
                mload__double_to_int(x, &neg, &mag);
                mload__st_int(d, dt, neg, mag);
            } else {
                mload__st_float(d, dt, x, flags);
            }
        }
    }
}

MODELLOAD_API int mload_cast_supported(mload_dtype dst_t, mload_dtype src_t) {
    if (!mload__dtype_valid(dst_t) || !mload__dtype_valid(src_t)) return 0;
    if (dst_t == src_t) return 1;
    return (mload__is_int(src_t) || mload__float_src(src_t)) && (mload__is_int(dst_t) || mload__float_dst(dst_t));
}

/* The cast of checked arguments (supported pair, buffers, sizes). */
static void mload__cast(unsigned char *d, mload_dtype dst_t, const unsigned char *s, mload_dtype src_t, uint64_t count,
                        uint32_t flags) {
    uint64_t sbits = mload_dtype_bits(src_t), dbits = mload_dtype_bits(dst_t);
    if (count == 0) return;
    if (dst_t == src_t) {
        memcpy(d, s, MLOAD__CAST(size_t, count * sbits / 8u));
        return;
    }
    /* F32 / F16 / BF16 -> float: the fast kernels, widening to F32 first */
    if ((src_t == MLOAD_DTYPE_F32 || src_t == MLOAD_DTYPE_F16 || src_t == MLOAD_DTYPE_BF16) && mload__kernel_dst(dst_t)) {
        if (src_t == MLOAD_DTYPE_F32) {
            mload__from_f32(d, dst_t, s, MLOAD__CAST(size_t, count), flags);
        } else if (dst_t == MLOAD_DTYPE_F32) {
            mload__to_f32(d, s, src_t, MLOAD__CAST(size_t, count));
        } else {
            uint32_t tmp[MLOAD__BLOCK];
            while (count) {
                size_t n = count < MLOAD__BLOCK ? MLOAD__CAST(size_t, count) : MLOAD__BLOCK;
                mload__to_f32(MLOAD__PCAST(unsigned char *, tmp), s, src_t, n);
                mload__from_f32(d, dst_t, MLOAD__PCAST(const unsigned char *, tmp), n, flags);
                s += n * sbits / 8u;
                d += n * dbits / 8u;
                count -= n;
            }
        }
        return;
    }
    /* F64 -> F32: rounded in integers (the FP environment cannot change it) */
    if (src_t == MLOAD_DTYPE_F64 && dst_t == MLOAD_DTYPE_F32) {
        uint64_t i;
        for (i = 0; i < count; ++i) {
            uint64_t x;
            uint32_t f;
            memcpy(&x, s + 8 * i, 8);
            f = mload__d2f_bits(x);
            memcpy(d + 4 * i, &f, 4);
        }
        return;
    }
    if ((src_t == MLOAD_DTYPE_F8_E4M3 || src_t == MLOAD_DTYPE_F8_E5M2) && (dst_t == MLOAD_DTYPE_F32 || dst_t == MLOAD_DTYPE_BF16 || dst_t == MLOAD_DTYPE_F16)) {
        mload__from_f8(d, dst_t, s, src_t, MLOAD__CAST(size_t, count));
        return;
    }
    /* other 8-bit sources: a 256-entry table of destination codes */
    if (sbits == 8 && count >= 1024) {
        unsigned char table[256 * 8];
        unsigned c;
        size_t db = MLOAD__CAST(size_t, dbits / 8u);
        for (c = 0; c < 256; ++c) {
            unsigned char b = MLOAD__CAST(unsigned char, c);
            mload__convert_slow(table + c * db, dst_t, &b, src_t, 1, flags);
        }
        mload__table8(d, s, MLOAD__CAST(size_t, count), table, db);
        return;
    }
    mload__convert_slow(d, dst_t, s, src_t, MLOAD__CAST(size_t, count), flags);
}

MODELLOAD_API mload_result mload_cast(void *dst, mload_dtype dst_t, const void *src, mload_dtype src_t, uint64_t count,
                                      mload_f8_overflow overflow, mload_error *err) {
    uint64_t sbits, dbits;
    if (!mload__dtype_valid(dst_t) || !mload__dtype_valid(src_t) || MLOAD__CAST(uint32_t, overflow) > 1u)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "cast: invalid dtype or overflow mode");
    if (!mload_cast_supported(dst_t, src_t))
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, NULL, 0, "cast: no conversion from %s to %s",
                           mload__dtypes[src_t].name, mload__dtypes[dst_t].name);
    if (count == 0) return MLOAD_OK;
    sbits = mload_dtype_bits(src_t);
    dbits = mload_dtype_bits(dst_t);
    if (!dst || !src || count > (UINT64_MAX / 64u) || count * sbits / 8u > SIZE_MAX || count * dbits / 8u > SIZE_MAX ||
        (dst_t == src_t && (count * sbits) % 8u))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                           "cast: NULL buffer, a count too large, or a sub-byte count not filling whole bytes");
    mload__cast(MLOAD__CAST(unsigned char *, dst), dst_t, MLOAD__CAST(const unsigned char *, src), src_t, count,
                MLOAD__CAST(uint32_t, overflow));
    return MLOAD_OK;
}

/* ---- the one read-then-cast path ----
   Reads count elements of dtype st, starting at byte `off` of what `raw`
   reads, into dst as dt: straight into dst when no cast is needed, else
   through scratch in pieces. Map reads, converted reads and direct bulk
   reads all go through it. */
typedef mload_result (*mload__raw_fn)(const void *ctx, uint64_t off, void *dst, uint64_t size);

#define MLOAD__CAST_STEP (768u << 10) /* source bytes per read: stays in a core's cache until cast (measured best: 0.75-2 MiB) */

static mload_result mload__read_cast(mload__raw_fn raw, const void *ctx, uint64_t off, mload_dtype st, uint64_t count,
                                     mload_dtype dt, unsigned char *dst, unsigned char *scratch, size_t scratch_size,
                                     uint32_t f8) {
    uint64_t sb = mload_dtype_bits(st), db = mload_dtype_bits(dt), per;
    if (st == dt) return raw(ctx, off, dst, count * sb / 8u);
    if (scratch_size > MLOAD__CAST_STEP) scratch_size = MLOAD__CAST_STEP;
    per = scratch_size / (sb / 8u); /* dtypes that cast are whole bytes */
    while (count) {
        uint64_t n = count < per ? count : per;
        mload_result r = raw(ctx, off, scratch, n * (sb / 8u));
        if (r != MLOAD_OK) return r;
        mload__cast(dst, dt, scratch, st, n, f8);
        dst += n * (db / 8u);
        off += n * (sb / 8u);
        count -= n;
    }
    return MLOAD_OK;
}

/* ==========================================================================
   3. SOURCES                                                     >>sources
   memory and file sources; their capabilities: mmap views, O_DIRECT reads
   ========================================================================== */

typedef struct mload__mem_src {
    const unsigned char *data;
    uint64_t size;
    mload_allocator alloc;
} mload__mem_src;

static mload_result mload__mem_read(void *user, uint64_t offset, void *dst, size_t size) {
    const mload__mem_src *m = MLOAD__CAST(const mload__mem_src *, user);
    if (offset > m->size || size > m->size - offset) return MLOAD_ERR_IO;
    if (size) memcpy(dst, m->data + offset, size);
    return MLOAD_OK;
}
static mload_result mload__mem_size(void *user, uint64_t *out) {
    *out = MLOAD__CAST(const mload__mem_src *, user)->size;
    return MLOAD_OK;
}
static mload_result mload__mem_view(void *user, uint64_t offset, uint64_t size, mload_view *out) {
    const mload__mem_src *m = MLOAD__CAST(const mload__mem_src *, user);
    if (offset > m->size || size > m->size - offset) return MLOAD_ERR_IO;
    memset(out, 0, sizeof(*out));
    out->data = m->data + offset;
    out->size = size;
    return MLOAD_OK;
}
static void mload__mem_close(void *user) {
    mload__mem_src *m = MLOAD__CAST(mload__mem_src *, user);
    mload_allocator a = m->alloc;
    mload__free(&a, m, sizeof(*m), sizeof(void *));
}

static const mload_source mload__mem_table = {mload__mem_read, mload__mem_size, mload__mem_close, NULL, mload__mem_view, NULL};

MODELLOAD_API mload_result mload_source_open_memory(const void *data, uint64_t size, const mload_allocator *a,
                                                    mload_source *out, mload_error *err) {
    mload__mem_src *m;
    if (!out || (!data && size) || !mload__allocator_ok(a))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "memory source: NULL out or data, or a bad allocator");
    memset(out, 0, sizeof(*out));
    m = MLOAD__CAST(mload__mem_src *, mload__malloc(a, sizeof(*m), sizeof(void *)));
    if (!m) return mload__oom(err);
    memset(m, 0, sizeof(*m));
    m->data = MLOAD__CAST(const unsigned char *, data);
    m->size = size;
    if (a) m->alloc = *a;
    *out = mload__mem_table;
    out->user = m;
    return MLOAD_OK;
}

#if defined(MLOAD__POSIX)
typedef struct mload__fd_src {
    int fd;
    mload_allocator alloc;
    char *path;        /* for the O_DIRECT descriptor */
    int dfd;           /* O_DIRECT descriptor: -2 not tried, -1 unusable */
    int refused;       /* the file system refused an O_DIRECT read */
    mload__mutex mu;   /* guards dfd and refused */
} mload__fd_src;

static mload_result mload__fd_read(void *user, uint64_t offset, void *dst, size_t size) {
    const mload__fd_src *s = MLOAD__CAST(const mload__fd_src *, user);
    unsigned char *p = MLOAD__CAST(unsigned char *, dst);
    while (size > 0) {
        size_t chunk = size > (size_t)0x40000000u ? (size_t)0x40000000u : size;
        ssize_t r;
        if (offset > (uint64_t)INT64_MAX) return MLOAD_ERR_IO;
        r = MLOAD__PREAD(s->fd, p, chunk, offset);
        if (r < 0) {
            if (errno == EINTR) continue;
            return MLOAD_ERR_IO;
        }
        if (r == 0) return MLOAD_ERR_IO; /* end of file: the file shrank */
        p += r;
        size -= MLOAD__CAST(size_t, r);
        offset += MLOAD__CAST(uint64_t, r);
    }
    return MLOAD_OK;
}
static mload_result mload__fd_size(void *user, uint64_t *out) {
    struct stat st;
    if (fstat(MLOAD__CAST(const mload__fd_src *, user)->fd, &st) != 0 || st.st_size < 0) return MLOAD_ERR_IO;
    *out = MLOAD__CAST(uint64_t, st.st_size);
    return MLOAD_OK;
}
static void mload__fd_close(void *user) {
    mload__fd_src *s = MLOAD__CAST(mload__fd_src *, user);
    mload_allocator a = s->alloc;
    close(s->fd);
    if (s->dfd >= 0) close(s->dfd);
    mload__mutex_destroy(&s->mu);
    if (s->path) mload__free(&a, s->path, strlen(s->path) + 1, 1);
    mload__free(&a, s, sizeof(*s), sizeof(void *));
}

static void mload__munmap_view(mload_view *v) { munmap(v->base, MLOAD__CAST(size_t, v->len)); }

/* mmap of the pages holding bytes [offset, offset + size) */
static mload_result mload__fd_view(void *user, uint64_t offset, uint64_t size, mload_view *out) {
    const mload__fd_src *s = MLOAD__CAST(const mload__fd_src *, user);
    long pg = sysconf(_SC_PAGESIZE);
    uint64_t start, len;
    void *base;
    if (pg <= 0) pg = 4096;
    start = offset - offset % MLOAD__CAST(uint64_t, pg);
    len = offset + size - start;
    if (len == 0) len = 1;
    if (len > SIZE_MAX || start > (uint64_t)INT64_MAX) return MLOAD_ERR_INVALID_ARGUMENT;
    base = mmap(NULL, MLOAD__CAST(size_t, len), PROT_READ, MAP_SHARED, s->fd, MLOAD__CAST(off_t, start));
    if (base == MAP_FAILED) return MLOAD_ERR_IO;
    memset(out, 0, sizeof(*out));
    out->data = MLOAD__CAST(const unsigned char *, base) + (offset - start);
    out->size = size;
    out->release = mload__munmap_view;
    out->base = base;
    out->len = len;
    return MLOAD_OK;
}

#if defined(O_DIRECT)
/* The O_DIRECT descriptor (opened on first use: the same file, not one put
   in its place since), or -1 when refused. */
static int mload__fd_direct(mload__fd_src *s) {
    int fd;
    mload__lock(&s->mu);
    if (s->dfd == -2) {
        struct stat a, b;
        int flags = O_RDONLY | O_DIRECT;
#ifdef O_CLOEXEC
        flags |= O_CLOEXEC;
#endif
#ifdef O_NONBLOCK
        flags |= O_NONBLOCK; /* the path may name a FIFO by now: never block on it (the inode check refuses it) */
#endif
        do { fd = open(s->path, flags); } while (fd < 0 && errno == EINTR);
        if (fd >= 0 && (fstat(fd, &a) != 0 || fstat(s->fd, &b) != 0 || !S_ISREG(a.st_mode) || a.st_dev != b.st_dev ||
                        a.st_ino != b.st_ino)) {
            close(fd);
            fd = -1;
        }
#ifdef O_NONBLOCK
        if (fd >= 0) { /* back to blocking reads, as the main descriptor */
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        }
#endif
        s->dfd = fd < 0 ? -1 : fd;
    }
    fd = s->refused ? -1 : s->dfd;
    mload__unlock(&s->mu);
    return fd;
}

static mload_result mload__fd_read_direct(void *user, uint64_t offset, void *dst, size_t size, size_t *got) {
    mload__fd_src *s = MLOAD__CAST(mload__fd_src *, user);
    unsigned char *p = MLOAD__CAST(unsigned char *, dst);
    int fd = mload__fd_direct(s);
    *got = 0;
    if (fd < 0) return MLOAD_ERR_UNSUPPORTED;
    while (*got < size) {
        ssize_t r = MLOAD__PREAD(fd, p + *got, size - *got, offset + *got);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EINVAL) return MLOAD_ERR_IO;
            mload__lock(&s->mu); /* refused: plain reads from now on (the descriptor, which another */
            s->refused = 1;      /* thread may still use, closes with the source) */
            mload__unlock(&s->mu);
            return MLOAD_ERR_UNSUPPORTED;
        }
        if (r == 0) break; /* end of file */
        *got += MLOAD__CAST(size_t, r);
        if (*got % MLOAD_DIRECT_ALIGN) break; /* end of file */
    }
    return MLOAD_OK;
}
#endif
#elif defined(MLOAD__STDIO)
/* Fallback for platforms without pread: stdio, not safe for concurrent reads
   of one file. */
typedef struct mload__fd_src {
    FILE *fp;
    mload_allocator alloc;
} mload__fd_src;

static mload_result mload__fd_read(void *user, uint64_t offset, void *dst, size_t size) {
    const mload__fd_src *s = MLOAD__CAST(const mload__fd_src *, user);
#if defined(_WIN32)
    if (_fseeki64(s->fp, MLOAD__CAST(long long, offset), SEEK_SET) != 0) return MLOAD_ERR_IO;
#else
    if (offset > 0x7fffffffu || fseek(s->fp, MLOAD__CAST(long, offset), SEEK_SET) != 0) return MLOAD_ERR_IO;
#endif
    if (fread(dst, 1, size, s->fp) != size) return MLOAD_ERR_IO;
    return MLOAD_OK;
}
static mload_result mload__fd_size(void *user, uint64_t *out) {
    const mload__fd_src *s = MLOAD__CAST(const mload__fd_src *, user);
#if defined(_WIN32)
    long long n;
    if (_fseeki64(s->fp, 0, SEEK_END) != 0) return MLOAD_ERR_IO;
    n = _ftelli64(s->fp);
#else
    long n;
    if (fseek(s->fp, 0, SEEK_END) != 0) return MLOAD_ERR_IO;
    n = ftell(s->fp);
#endif
    if (n < 0) return MLOAD_ERR_IO;
    *out = MLOAD__CAST(uint64_t, n);
    return MLOAD_OK;
}
static void mload__fd_close(void *user) {
    mload__fd_src *s = MLOAD__CAST(mload__fd_src *, user);
    mload_allocator a = s->alloc;
    fclose(s->fp);
    mload__free(&a, s, sizeof(*s), sizeof(void *));
}
#endif

MODELLOAD_API mload_result mload_source_open_path(const char *path, const mload_allocator *a,
                                             mload_source *out, mload_error *err) {
#if defined(MLOAD__POSIX) || defined(MLOAD__STDIO)
    mload__fd_src *s;
    if (!out || !path || !mload__allocator_ok(a))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "path source: NULL argument or half-set allocator");
    memset(out, 0, sizeof(*out));
    s = MLOAD__CAST(mload__fd_src *, mload__malloc(a, sizeof(*s), sizeof(void *)));
    if (!s) return mload__fail(err, MLOAD_ERR_OUT_OF_MEMORY, MLOAD_NO_OFFSET, NULL, 0, "out of memory");
    memset(s, 0, sizeof(*s));
    if (a) s->alloc = *a;
#if defined(MLOAD__POSIX)
    {
        struct stat st;
        int flags = O_RDONLY;
#ifdef O_CLOEXEC
        flags |= O_CLOEXEC;
#endif
#ifdef O_NONBLOCK
        flags |= O_NONBLOCK; /* a FIFO must not block the open; only regular files are accepted */
#endif
        do { s->fd = open(path, flags); } while (s->fd < 0 && errno == EINTR);
        if (s->fd < 0) {
            int e = errno;
            mload__free(a, s, sizeof(*s), sizeof(void *));
            return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "cannot open '%s': %s", path, mload__sys_reason(e));
        }
        if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(s->fd);
            mload__free(a, s, sizeof(*s), sizeof(void *));
            return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "'%s' is not a regular file", path);
        }
#ifdef O_NONBLOCK
        {   /* back to blocking reads (ignored for regular files on Linux, not everywhere) */
            int fl = fcntl(s->fd, F_GETFL);
            if (fl >= 0) (void)fcntl(s->fd, F_SETFL, fl & ~O_NONBLOCK);
        }
#endif
        s->dfd = -2;
        mload__mutex_init(&s->mu);
        s->path = MLOAD__CAST(char *, mload__malloc(a, strlen(path) + 1, 1));
        if (!s->path) {
            mload__fd_close(s);
            return mload__oom(err);
        }
        memcpy(s->path, path, strlen(path) + 1);
    }
    out->view = mload__fd_view;
#if defined(O_DIRECT)
    out->read_direct = mload__fd_read_direct;
#endif
#else
    s->fp = fopen(path, "rb");
    if (!s->fp) {
        mload__free(a, s, sizeof(*s), sizeof(void *));
        return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "cannot open '%s'", path);
    }
#endif
    out->read_at = mload__fd_read;
    out->size = mload__fd_size;
    out->close = mload__fd_close;
    out->user = s;
    return MLOAD_OK;
#else
    (void)path; (void)a;
    if (out) memset(out, 0, sizeof(*out));
    return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, NULL, 0, "built with MODELLOAD_NO_STDIO: no file access");
#endif
}

MODELLOAD_API void mload_source_close(mload_source *s) {
    if (!s) return;
    if (s->close) s->close(s->user);
    memset(s, 0, sizeof(*s));
}

/* ==========================================================================
   4. FILE                                                           >>file
   UTF-8 and the strict JSON reader; the safetensors header parser and name tables; file reads
   ========================================================================== */

/* Length (2-4) of the valid multi-byte UTF-8 sequence at s, or 0 when it is
   invalid (overlong, surrogate, > U+10FFFF, bad or missing continuation).
   May read up to 3 bytes past s: callers keep a NUL-terminated, padded
   buffer, and a NUL is never a continuation byte. */
static size_t mload__utf8_seq(const unsigned char *s) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return (s[1] & 0xC0) == 0x80 ? 2u : 0u;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        return (s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80) ? 3u : 0u;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
        return (s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) ? 4u : 0u;
    }
    return 0;
}

/* Index of the first invalid byte of s[0..len), or len when it is all valid
   UTF-8. s[len] must be NUL with 3 readable bytes after it. */
static size_t mload__utf8_check(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        size_t k;
        while (i + 8 <= len) { /* ASCII fast path */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= len) break;
        if (s[i] < 0x80) { ++i; continue; }
        k = mload__utf8_seq(s + i);
        if (k == 0 || i + k > len) return i;
        i += k;
    }
    return len;
}

/* ------------------------------------------------------------------- JSON */

/* A strict, non-recursive reader specialised to the safetensors header.
   The header buffer is owned and NUL-terminated one past its end; strings
   are decoded in place (a decoded string is never longer than its escaped
   form) and NUL-terminated where their closing quote was. */
typedef struct mload__json {
    char *p;
    char *end;
    char *base;
    mload_error *err;
    uint64_t off0;   /* file offset of base: 8 in a safetensors file, 0 in an index.json */
    const char *doc; /* "header" or "index", for messages */
} mload__json;

static void mload__json_init(mload__json *j, char *text, uint64_t size, uint64_t off0, const char *doc, mload_error *err) {
    j->base = j->p = text;
    j->end = text + size;
    j->err = err;
    j->off0 = off0;
    j->doc = doc;
}

static mload_result mload__json_fail(mload__json *j, const char *what) {
    return mload__fail(j->err, MLOAD_ERR_INVALID_HEADER_DESERIALIZATION, j->off0 + MLOAD__CAST(uint64_t, j->p - j->base), NULL, 0,
                       "invalid %s JSON: %s", j->doc, what);
}

/* Invalid UTF-8 inside a string: every byte before it has been checked, so
   this is the first invalid byte of the header, as the reference reports. */
static mload_result mload__json_bad_utf8(mload__json *j, const char *at) {
    return mload__fail(j->err, MLOAD_ERR_INVALID_HEADER, j->off0 + MLOAD__CAST(uint64_t, at - j->base), NULL, 0,
                       "%s is not valid UTF-8", j->doc);
}

static MLOAD__INLINE void mload__json_ws(mload__json *j) {
    char *p = j->p;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') ++p;
    j->p = p;
}

static int mload__hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    int k;
    for (k = 0; k < 4; ++k) {
        char c = p[k];
        unsigned d;
        if (c >= '0' && c <= '9') d = MLOAD__CAST(unsigned, c - '0');
        else if (c >= 'a' && c <= 'f') d = MLOAD__CAST(unsigned, c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = MLOAD__CAST(unsigned, c - 'A' + 10);
        else return 0;
        v = v * 16u + d;
    }
    *out = v;
    return 1;
}

#if defined(__GNUC__) || defined(__clang__)
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MLOAD__SWAR 1
#define MLOAD__CTZ64(x) __builtin_ctzll(x)
#endif
#endif


/* First byte at or after p that is '"', '\\', a control byte or a non-ASCII
   byte. The buffer holds a NUL at the end of the header and MLOAD__PAD
   readable bytes after it, so 8-byte loads never leave it. */
static MLOAD__INLINE char *mload__str_scan(char *p) {
#ifdef MLOAD__SWAR
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (;;) {
        uint64_t w, q, b, c, hit;
        memcpy(&w, p, 8);
        q = w ^ (ones * 0x22u);
        b = w ^ (ones * 0x5Cu);
        q = (q - ones) & ~q;
        b = (b - ones) & ~b;
        c = (w - ones * 0x20u) & ~w;
        hit = (q | b | c | w) & highs;
        if (hit) return p + (MLOAD__CTZ64(hit) >> 3);
        p += 8;
    }
#else
    for (;;) {
        unsigned char c = MLOAD__CAST(unsigned char, *p);
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return p;
        ++p;
    }
#endif
}

/* Parses a string at j->p (which must be '"'). On success *s and *len give
   the decoded, NUL-terminated bytes inside the buffer. */
static mload_result mload__json_string(mload__json *j, const char **s, size_t *len) {
    char *start = j->p + 1, *r = start, *w;
    if (*j->p != '"') return mload__json_fail(j, "expected a string");
    for (;;) {
        size_t k;
        r = mload__str_scan(r);
        if (MLOAD__CAST(unsigned char, *r) < 0x80) break;
        if ((k = mload__utf8_seq(MLOAD__PCAST(const unsigned char *, r))) == 0) return mload__json_bad_utf8(j, r);
        r += k;
    }
    if (*r == '"') {
        *s = start;
        *len = MLOAD__CAST(size_t, r - start);
        *r = '\0';
        j->p = r + 1;
        return MLOAD_OK;
    }
    /* escapes: decoded in place; on failure the part already moved is
       blanked, so the buffer stays valid UTF-8 for the whole-header check */
#define MLOAD__STR_FAIL(expr) do { memset(w, ' ', MLOAD__CAST(size_t, r - w)); return (expr); } while (0)
    w = r;
    for (;;) {
        unsigned char c = MLOAD__CAST(unsigned char, *r);
        if (c == '"') break;
        if (c < 0x20) {
            j->p = r;
            MLOAD__STR_FAIL(mload__json_fail(j, r >= j->end ? "unterminated string" : "control character in string"));
        }
        if (c >= 0x80) {
            size_t k = mload__utf8_seq(MLOAD__PCAST(const unsigned char *, r));
            if (k == 0) MLOAD__STR_FAIL(mload__json_bad_utf8(j, r));
            while (k--) *w++ = *r++;
            continue;
        }
        if (c != '\\') { *w++ = *r++; continue; }
        ++r;
        switch (*r) {
        case '"': *w++ = '"'; ++r; break;
        case '\\': *w++ = '\\'; ++r; break;
        case '/': *w++ = '/'; ++r; break;
        case 'b': *w++ = '\b'; ++r; break;
        case 'f': *w++ = '\f'; ++r; break;
        case 'n': *w++ = '\n'; ++r; break;
        case 'r': *w++ = '\r'; ++r; break;
        case 't': *w++ = '\t'; ++r; break;
        case 'u': {
            unsigned cp, lo;
            if (!mload__hex4(r + 1, &cp)) { j->p = r; MLOAD__STR_FAIL(mload__json_fail(j, "bad \\u escape")); }
            r += 5;
            if (cp >= 0xDC00 && cp <= 0xDFFF) { j->p = r; MLOAD__STR_FAIL(mload__json_fail(j, "lone low surrogate")); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (r[0] != '\\' || r[1] != 'u' || !mload__hex4(r + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    j->p = r;
                    MLOAD__STR_FAIL(mload__json_fail(j, "lone high surrogate"));
                }
                r += 6;
                cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
            }
            if (cp < 0x80) {
                *w++ = MLOAD__CAST(char, cp);
            } else if (cp < 0x800) {
                *w++ = MLOAD__CAST(char, 0xC0 | (cp >> 6));
                *w++ = MLOAD__CAST(char, 0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *w++ = MLOAD__CAST(char, 0xE0 | (cp >> 12));
                *w++ = MLOAD__CAST(char, 0x80 | ((cp >> 6) & 0x3F));
                *w++ = MLOAD__CAST(char, 0x80 | (cp & 0x3F));
            } else {
                *w++ = MLOAD__CAST(char, 0xF0 | (cp >> 18));
                *w++ = MLOAD__CAST(char, 0x80 | ((cp >> 12) & 0x3F));
                *w++ = MLOAD__CAST(char, 0x80 | ((cp >> 6) & 0x3F));
                *w++ = MLOAD__CAST(char, 0x80 | (cp & 0x3F));
            }
            break;
        }
        default:
            j->p = r;
            MLOAD__STR_FAIL(mload__json_fail(j, "invalid escape"));
        }
    }
    *s = start;
    *len = MLOAD__CAST(size_t, w - start);
    /* NUL-terminate and blank the rest of the escaped form, so the buffer
       stays valid UTF-8 for a later whole-header check */
    memset(w, ' ', MLOAD__CAST(size_t, r - w) + 1);
    *w = '\0';
    j->p = r + 1;
    return MLOAD_OK;
#undef MLOAD__STR_FAIL
}

/* The one JSON object walk. Start with j->p on the '{' and *state = 0; each
   call moves to the next member and returns 1 with its key (kpos: where the
   key starts, may be NULL) and j->p on its value, or 0 after the closing
   '}'. On a syntax error *r is set and 0 returned. */
static MLOAD__INLINE int mload__json_member(mload__json *j, int *state, const char **k, size_t *kl, char **kpos, mload_result *r) {
    if (*state == 0) {
        ++j->p;
        mload__json_ws(j);
        if (*j->p == '}') { ++j->p; return 0; }
        *state = 1;
    } else {
        mload__json_ws(j);
        if (*j->p == '}') { ++j->p; return 0; }
        if (*j->p != ',') { *r = mload__json_fail(j, "expected ',' or '}'"); return 0; }
        ++j->p;
        mload__json_ws(j);
    }
    if (kpos) *kpos = j->p;
    if ((*r = mload__json_string(j, k, kl)) != MLOAD_OK) return 0;
    mload__json_ws(j);
    if (*j->p != ':') { *r = mload__json_fail(j, "expected ':'"); return 0; }
    ++j->p;
    mload__json_ws(j);
    return 1;
}

/* A plain non-negative integer that fits in 64 bits. */
static mload_result mload__json_u64(mload__json *j, uint64_t *out) {
    char *p = j->p;
    uint64_t v = 0;
    if (*p == '-') return mload__json_fail(j, "expected a non-negative integer");
    if (*p < '0' || *p > '9') return mload__json_fail(j, "expected an integer");
    if (*p == '0' && p[1] >= '0' && p[1] <= '9') return mload__json_fail(j, "leading zero in integer");
    {
        /* up to 19 digits cannot overflow; the 20th is checked exactly */
        char *q = p;
        while (*q >= '0' && *q <= '9' && q - p < 19) {
            v = v * 10u + MLOAD__CAST(unsigned, *q - '0');
            ++q;
        }
        if (*q >= '0' && *q <= '9') {
            unsigned d = MLOAD__CAST(unsigned, *q - '0');
            if (v > 1844674407370955161ull || (v == 1844674407370955161ull && d > 5u) || (q[1] >= '0' && q[1] <= '9')) {
                j->p = q;
                return mload__json_fail(j, "integer does not fit in 64 bits");
            }
            v = v * 10u + d;
            ++q;
        }
        p = q;
    }
    if (*p == '.' || *p == 'e' || *p == 'E') { j->p = p; return mload__json_fail(j, "expected an integer, got a float"); }
    j->p = p;
    *out = v;
    return MLOAD_OK;
}

/* 1e0 .. 1e308, correctly rounded by the compiler */
static const double mload__pow10[309] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23,
    1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35,
    1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47,
    1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59,
    1e60, 1e61, 1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69, 1e70, 1e71,
    1e72, 1e73, 1e74, 1e75, 1e76, 1e77, 1e78, 1e79, 1e80, 1e81, 1e82, 1e83,
    1e84, 1e85, 1e86, 1e87, 1e88, 1e89, 1e90, 1e91, 1e92, 1e93, 1e94, 1e95,
    1e96, 1e97, 1e98, 1e99, 1e100, 1e101, 1e102, 1e103, 1e104, 1e105, 1e106, 1e107,
    1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118, 1e119,
    1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129, 1e130, 1e131,
    1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142, 1e143,
    1e144, 1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155,
    1e156, 1e157, 1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167,
    1e168, 1e169, 1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179,
    1e180, 1e181, 1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191,
    1e192, 1e193, 1e194, 1e195, 1e196, 1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203,
    1e204, 1e205, 1e206, 1e207, 1e208, 1e209, 1e210, 1e211, 1e212, 1e213, 1e214, 1e215,
    1e216, 1e217, 1e218, 1e219, 1e220, 1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227,
    1e228, 1e229, 1e230, 1e231, 1e232, 1e233, 1e234, 1e235, 1e236, 1e237, 1e238, 1e239,
    1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248, 1e249, 1e250, 1e251,
    1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259, 1e260, 1e261, 1e262, 1e263,
    1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272, 1e273, 1e274, 1e275,
    1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287,
    1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299,
    1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
};

/* 10 * v + d would not fit 64 bits */
static int mload__u64_overflows(uint64_t v, unsigned d) {
    return v > 1844674407370955161ull || (v == 1844674407370955161ull && d > 5u);
}

/* Skips one JSON number and gives the verdict of serde_json, the JSON
   reader of the reference: an integer that fits 64 bits always passes;
   anything else is evaluated as (the leading digits that fit a u64) x
   10^exponent in double arithmetic, and a result that overflows is an
   error ("number out of range"). Digits beyond 64 bits count only in the
   exponent, as there. */
static mload_result mload__json_skip_number(mload__json *j) {
    char *p = j->p;
    uint64_t sig = 0;
    int64_t ex = 0;
    int is_float = 0;
    if (*p == '-') ++p;
    if (*p == '0') {
        ++p;
        if (*p >= '0' && *p <= '9') { j->p = p; return mload__json_fail(j, "invalid number"); }
    } else if (*p >= '1' && *p <= '9') {
        int full = 0;
        while (*p >= '0' && *p <= '9') {
            unsigned d = MLOAD__CAST(unsigned, *p - '0');
            if (!full && mload__u64_overflows(sig, d)) full = 1;
            if (full) { ++ex; is_float = 1; } /* a long integer is a float */
            else sig = sig * 10u + d;
            ++p;
        }
    } else {
        j->p = p;
        return mload__json_fail(j, "invalid number");
    }
    if (*p == '.') {
        int full = 0;
        is_float = 1;
        ++p;
        if (*p < '0' || *p > '9') { j->p = p; return mload__json_fail(j, "invalid number"); }
        while (*p >= '0' && *p <= '9') {
            unsigned d = MLOAD__CAST(unsigned, *p - '0');
            if (!full && mload__u64_overflows(sig, d)) full = 1; /* the rest is skipped */
            if (!full) { sig = sig * 10u + d; --ex; }
            ++p;
        }
    }
    if (*p == 'e' || *p == 'E') {
        int neg = 0, big = 0;
        int64_t e = 0;
        is_float = 1;
        ++p;
        if (*p == '+' || *p == '-') { neg = *p == '-'; ++p; }
        if (*p < '0' || *p > '9') { j->p = p; return mload__json_fail(j, "invalid number"); }
        while (*p >= '0' && *p <= '9') {
            int64_t d = *p - '0';
            if (!big && (e > (INT32_MAX - d) / 10)) big = 1; /* the exponent overflows an i32 */
            if (!big) e = e * 10 + d;
            ++p;
        }
        if (big) {
            if (sig != 0 && !neg) { j->p = p; return mload__json_fail(j, "number out of range"); }
            j->p = p;
            return MLOAD_OK; /* zero */
        }
        ex = neg ? ex - e : ex + e;
        if (ex > INT32_MAX) ex = INT32_MAX; /* saturating, as an i32 */
        if (ex < INT32_MIN) ex = INT32_MIN;
    }
    if (is_float) {
        volatile double f = MLOAD__CAST(double, sig); /* volatile: no extra precision */
        for (;;) {
            uint64_t a = ex < 0 ? MLOAD__CAST(uint64_t, -ex) : MLOAD__CAST(uint64_t, ex);
            if (a <= 308) {
                if (ex >= 0) {
                    f = f * mload__pow10[a];
                    if (f - f != 0.0) { j->p = p; return mload__json_fail(j, "number out of range"); } /* Inf */
                } else {
                    f = f / mload__pow10[a];
                }
                break;
            }
            if (f == 0.0) break;
            if (ex >= 0) { j->p = p; return mload__json_fail(j, "number out of range"); }
            f = f / 1e308;
            ex += 308;
        }
    }
    j->p = p;
    return MLOAD_OK;
}

static int mload__json_lit(mload__json *j, const char *lit, size_t n) {
    if (MLOAD__CAST(size_t, j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return 0;
    j->p += n;
    return 1;
}

/* Skips one value of any type without recursion. depth is the nesting level
   of the container holding the value (root object = 1). */
static mload_result mload__json_skip(mload__json *j, unsigned depth) {
    unsigned char stack[MLOAD__JSON_MAX_DEPTH + 1]; /* '[' or '{' per level */
    unsigned top = 0;
    mload_result r;
    for (;;) {
        /* parse one value */
        mload__json_ws(j);
        switch (*j->p) {
        case '{':
        case '[':
            if (depth + top + 1 > MLOAD__JSON_MAX_DEPTH) return mload__json_fail(j, "nesting too deep");
            stack[top++] = MLOAD__CAST(unsigned char, *j->p);
            ++j->p;
            mload__json_ws(j);
            if ((stack[top - 1] == '[' && *j->p == ']') || (stack[top - 1] == '{' && *j->p == '}')) {
                ++j->p;
                --top;
                break; /* empty container: a complete value */
            }
            if (stack[top - 1] == '{') {
                const char *k; size_t kl;
                if ((r = mload__json_string(j, &k, &kl)) != MLOAD_OK) return r;
                mload__json_ws(j);
                if (*j->p != ':') return mload__json_fail(j, "expected ':'");
                ++j->p;
            }
            continue; /* parse the first element */
        case '"': {
            const char *s; size_t sl;
            if ((r = mload__json_string(j, &s, &sl)) != MLOAD_OK) return r;
            break;
        }
        case 't': if (!mload__json_lit(j, "true", 4)) return mload__json_fail(j, "invalid literal"); break;
        case 'f': if (!mload__json_lit(j, "false", 5)) return mload__json_fail(j, "invalid literal"); break;
        case 'n': if (!mload__json_lit(j, "null", 4)) return mload__json_fail(j, "invalid literal"); break;
        default:
            if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
                if ((r = mload__json_skip_number(j)) != MLOAD_OK) return r;
                break;
            }
            return mload__json_fail(j, "expected a value");
        }
        /* a value is complete: close containers / move to the next element */
        for (;;) {
            if (top == 0) return MLOAD_OK;
            mload__json_ws(j);
            if (*j->p == ',') {
                ++j->p;
                if (stack[top - 1] == '{') {
                    const char *k; size_t kl;
                    mload__json_ws(j);
                    if ((r = mload__json_string(j, &k, &kl)) != MLOAD_OK) return r;
                    mload__json_ws(j);
                    if (*j->p != ':') return mload__json_fail(j, "expected ':'");
                    ++j->p;
                }
                break; /* parse the next element */
            }
            if ((stack[top - 1] == '[' && *j->p == ']') || (stack[top - 1] == '{' && *j->p == '}')) {
                ++j->p;
                --top;
                continue;
            }
            return mload__json_fail(j, stack[top - 1] == '[' ? "expected ',' or ']'" : "expected ',' or '}'");
        }
    }
}

/* ------------------------------------------------------------------- file */

/* A name index: open addressing over 64-bit slots holding the upper 32 bits
   of the name's hash (a tag checked before the item is touched) and the
   item's position; MLOAD__EMPTY marks a free slot. */
#define MLOAD__EMPTY UINT64_MAX
typedef struct mload__index {
    uint64_t *slots;
    size_t mask;     /* slot count - 1 */
    uint64_t seed;
} mload__index;

struct mload_file {
    mload_allocator alloc;
    mload_source src;
    uint64_t file_size;
    uint64_t header_size;
    char *header;          /* header_size + 1 + MLOAD__PAD bytes, strings decoded in place */
    mload_tensor *tensors; /* file order */
    size_t count, cap;
    uint64_t *dims;        /* all shapes, one array */
    size_t ndims, dims_cap;
    mload__index index;
    mload_kv *meta;
    size_t meta_count, meta_cap;
    mload__index meta_index;
    int has_meta;
    uint64_t zero_dim;     /* shape storage for scalars */
    mload_format format;
    char *names;           /* PyTorch: the tensor names, one arena */
    size_t names_cap;
    size_t *stride_of;     /* PyTorch: per tensor, where its strides are in dims (SIZE_MAX: row-major); NULL if none */
    size_t stride_of_cap;
};

/* 64-bit seeded hash of a byte string, two 8-byte lanes per step. Not
   cryptographic: the seed comes from the address of the object it indexes,
   which makes crafted collisions harder to aim. */
static MLOAD__INLINE uint64_t mload__hash(uint64_t seed, const char *s, size_t n) {
    const uint64_t k1 = 0x9E3779B97F4A7C15ull, k2 = 0xC2B2AE3D27D4EB4Full;
    uint64_t h1 = seed ^ (n * k2), h2 = ~seed, w1, w2;
    while (n >= 16) {
        memcpy(&w1, s, 8);
        memcpy(&w2, s + 8, 8);
        h1 = (h1 ^ w1) * k1;
        h2 = (h2 ^ w2) * k2;
        h1 ^= h1 >> 31;
        h2 ^= h2 >> 29;
        s += 16;
        n -= 16;
    }
    if (n >= 8) {
        memcpy(&w1, s, 8);
        h1 = (h1 ^ w1) * k1;
        h1 ^= h1 >> 31;
        s += 8;
        n -= 8;
    }
    if (n) {
        w2 = 0;
        memcpy(&w2, s, n);
        h2 = (h2 ^ w2) * k2;
    }
    h1 ^= (h2 << 23) | (h2 >> 41);
    h1 ^= h1 >> 33;
    h1 *= 0xff51afd7ed558ccdull;
    h1 ^= h1 >> 33;
    h1 *= 0xc4ceb9fe1a85ec53ull;
    h1 ^= h1 >> 33;
    return h1;
}

static const char *mload__item_name(const void *items, size_t stride, size_t i, size_t *len) {
    const unsigned char *it = MLOAD__CAST(const unsigned char *, items) + i * stride;
    const char *name;
    memcpy(&name, it, sizeof(name));
    memcpy(len, it + sizeof(const char *), sizeof(*len));
    return name;
}

/* Builds an index over count items of `stride` bytes whose first members
   are `const char *name; size_t len`. hashes (may be NULL) points at the
   first item's hash under ix->seed, the next ones hash_stride bytes apart. *dup receives the position of the first item
   whose name repeats an earlier one, or SIZE_MAX. 0 on out of memory. */
static int mload__index_build(const mload_allocator *a, mload__index *ix, const void *items, size_t stride,
                              size_t count, const void *hashes, size_t hash_stride, size_t *dup) {
    size_t cap = 16, i;
    *dup = SIZE_MAX;
    while (cap < count * 2) cap *= 2;
    ix->slots = MLOAD__CAST(uint64_t *, mload__malloc(a, cap * sizeof(uint64_t), sizeof(uint64_t)));
    if (!ix->slots) return 0;
    ix->mask = cap - 1;
    memset(ix->slots, 0xFF, cap * sizeof(uint64_t));
    for (i = 0; i < count; ++i) {
        size_t len, olen, h;
        const char *name = mload__item_name(items, stride, i, &len);
        uint64_t hv, tag;
        if (hashes) memcpy(&hv, MLOAD__CAST(const unsigned char *, hashes) + i * hash_stride, sizeof(hv));
        else hv = mload__hash(ix->seed, name, len);
        tag = hv >> 32;
        for (h = MLOAD__CAST(size_t, hv) & ix->mask;; h = (h + 1) & ix->mask) {
            uint64_t e = ix->slots[h];
            const char *oname;
            if (e == MLOAD__EMPTY) {
                ix->slots[h] = (tag << 32) | MLOAD__CAST(uint64_t, i);
                break;
            }
            if ((e >> 32) != tag) continue;
            oname = mload__item_name(items, stride, MLOAD__CAST(size_t, e & 0xFFFFFFFFu), &olen);
            if (olen == len && memcmp(oname, name, len) == 0) {
                *dup = i;
                return 1;
            }
        }
    }
    return 1;
}

static const void *mload__index_find(const mload__index *ix, const void *items, size_t stride, const char *name,
                                     size_t len) {
    uint64_t hv, tag;
    size_t h;
    if (!ix->slots || !name) return NULL;
    hv = mload__hash(ix->seed, name, len);
    tag = hv >> 32;
    for (h = MLOAD__CAST(size_t, hv) & ix->mask;; h = (h + 1) & ix->mask) {
        uint64_t e = ix->slots[h];
        size_t olen, pos;
        const char *oname;
        if (e == MLOAD__EMPTY) return NULL;
        if ((e >> 32) != tag) continue;
        pos = MLOAD__CAST(size_t, e & 0xFFFFFFFFu);
        oname = mload__item_name(items, stride, pos, &olen);
        if (olen == len && memcmp(oname, name, len) == 0)
            return MLOAD__CAST(const unsigned char *, items) + pos * stride;
    }
}

static void mload__file_free(mload_file *f) {
    mload_allocator a = f->alloc;
    mload_source_close(&f->src);
    mload__free(&a, f->header, MLOAD__CAST(size_t, f->header_size) + 1 + MLOAD__PAD, 1);
    mload__free(&a, f->tensors, f->cap * sizeof(mload_tensor), sizeof(void *));
    mload__free(&a, f->dims, f->dims_cap * sizeof(uint64_t), sizeof(void *));
    mload__free(&a, f->index.slots, (f->index.mask + 1) * sizeof(uint64_t), sizeof(uint64_t));
    mload__free(&a, f->meta, f->meta_cap * sizeof(mload_kv), sizeof(void *));
    mload__free(&a, f->meta_index.slots, (f->meta_index.mask + 1) * sizeof(uint64_t), sizeof(uint64_t));
    mload__free(&a, f->names, f->names_cap, 1);
    mload__free(&a, f->stride_of, f->stride_of_cap * sizeof(size_t), sizeof(void *));
    mload__free(&a, f, sizeof(*f), sizeof(void *));
}

/* __metadata__: null or an object of string -> string. */
static mload_result mload__parse_metadata(mload_file *f, mload__json *j) {
    mload_result r;
    mload_kv kv;
    int st = 0;
    if (mload__json_lit(j, "null", 4)) return MLOAD_OK;
    if (*j->p != '{') return mload__json_fail(j, "__metadata__ must be an object of strings or null");
    f->has_meta = 1;
    r = MLOAD_OK;
    while (mload__json_member(j, &st, &kv.key, &kv.key_len, NULL, &r)) {
        void *np;
        if (*j->p != '"') return mload__json_fail(j, "__metadata__ values must be strings");
        if ((r = mload__json_string(j, &kv.value, &kv.value_len)) != MLOAD_OK) return r;
        np = mload__grow(&f->alloc, f->meta, &f->meta_cap, f->meta_count + 1, sizeof(mload_kv));
        if (!np) return mload__oom(j->err);
        f->meta = MLOAD__CAST(mload_kv *, np);
        f->meta[f->meta_count++] = kv;
    }
    return r;
}

/* Compares n bytes of k with the literal lit (n <= 12), without a libc call. */
static MLOAD__INLINE int mload__keyeq(const char *k, const char *lit, size_t n) {
    uint64_t a = 0, b = 0;
    uint32_t c = 0, d = 0;
    if (n >= 8) {
        memcpy(&a, k, 8);
        memcpy(&b, lit, 8);
        if (a != b) return 0;
        k += 8; lit += 8; n -= 8;
    }
    if (n >= 4) {
        memcpy(&c, k, 4);
        memcpy(&d, lit, 4);
        if (c != d) return 0;
        k += 4; lit += 4; n -= 4;
    }
    while (n--) if (*k++ != *lit++) return 0;
    return 1;
}

/* One tensor entry {"dtype":..., "shape":[...], "data_offsets":[b,e], ...}.
   begin/end are returned through *off (2 values). */
/* Up to 19 decimal digits without a leading zero, as written by every
   writer; anything else (20 digits, leading zero, no digit) returns NULL so
   the caller falls back to the general path, which reports errors. */
static MLOAD__INLINE char *mload__fast_u64(char *p, uint64_t *out) {
    uint64_t v;
    char *q = p;
    if (*q < '0' || *q > '9') return NULL;
    v = MLOAD__CAST(uint64_t, *q - '0');
    ++q;
    if (v == 0) {
        if (*q >= '0' && *q <= '9') return NULL;
    } else {
        while (*q >= '0' && *q <= '9') {
            if (q - p >= 19) return NULL;
            v = v * 10u + MLOAD__CAST(uint64_t, *q - '0');
            ++q;
        }
    }
    if (*q == '.' || *q == 'e' || *q == 'E') return NULL;
    *out = v;
    return q;
}

/* The canonical compact entry {"dtype":"X","shape":[..],"data_offsets":[a,b]}
   matched literally. Returns 1 on a match (j->p moved past the entry), 0 to
   use the general path (nothing consumed, no dims kept). */
static int mload__parse_entry_fast(mload_file *f, mload__json *j, mload_tensor *t, uint64_t *off) {
    char *q = j->p, *dn;
    size_t first = f->ndims;
    if (!mload__keyeq(q, "{\"dtype\":\"", 10)) return 0;
    q += 10;
    dn = q;
    while ((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_') {
        if (q - dn > 11) return 0;
        ++q;
    }
    if (*q != '"') return 0;
    t->dtype = mload_dtype_from_name(dn, MLOAD__CAST(size_t, q - dn));
    if (t->dtype == MLOAD_DTYPE_INVALID) return 0;
    ++q;
    if (!mload__keyeq(q, ",\"shape\":[", 10)) return 0;
    q += 10;
    if (*q == ']') {
        ++q;
    } else {
        for (;;) {
            uint64_t d;
            if ((q = mload__fast_u64(q, &d)) == NULL) { f->ndims = first; return 0; }
            if (f->ndims == f->dims_cap) {
                void *np = mload__grow(&f->alloc, f->dims, &f->dims_cap, f->ndims + 1, sizeof(uint64_t));
                if (!np) { f->ndims = first; return 0; } /* the general path reports it */
                f->dims = MLOAD__CAST(uint64_t *, np);
            }
            f->dims[f->ndims++] = d;
            if (*q == ',') { ++q; continue; }
            if (*q == ']') { ++q; break; }
            f->ndims = first;
            return 0;
        }
    }
    if (!mload__keyeq(q, ",\"data_offsets\":[", 17) || (q = mload__fast_u64(q + 17, &off[0])) == NULL || *q != ',' ||
        (q = mload__fast_u64(q + 1, &off[1])) == NULL || q[0] != ']' || q[1] != '}' || f->ndims - first > UINT32_MAX) {
        f->ndims = first;
        return 0;
    }
    t->rank = MLOAD__CAST(uint32_t, f->ndims - first);
    j->p = q + 2;
    return 1;
}

static mload_result mload__parse_entry(mload_file *f, mload__json *j, mload_tensor *t, uint64_t *off) {
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    mload_result r;
    if (mload__parse_entry_fast(f, j, t, off)) return MLOAD_OK;
    if (*j->p != '{') return mload__json_fail(j, "tensor entry must be an object");
    ++j->p;
    mload__json_ws(j);
    if (*j->p == '}') return mload__json_fail(j, "missing field dtype");
    for (;;) {
        const char *k;
        size_t kl;
        mload__json_ws(j);
        if ((r = mload__json_string(j, &k, &kl)) != MLOAD_OK) return r;
        mload__json_ws(j);
        if (*j->p != ':') return mload__json_fail(j, "expected ':'");
        ++j->p;
        mload__json_ws(j);
        if (kl == 5 && mload__keyeq(k, "dtype", 5)) {
            const char *s;
            size_t sl;
            char *vpos = j->p;
            if (have_dtype) return mload__json_fail(j, "duplicate field dtype");
            have_dtype = 1;
            if (*j->p != '"') return mload__json_fail(j, "dtype must be a string");
            if ((r = mload__json_string(j, &s, &sl)) != MLOAD_OK) return r;
            t->dtype = mload_dtype_from_name(s, sl);
            if (t->dtype == MLOAD_DTYPE_INVALID) {
                j->p = vpos;
                return mload__json_fail(j, "unknown dtype");
            }
        } else if (kl == 5 && mload__keyeq(k, "shape", 5)) {
            size_t first = f->ndims;
            if (have_shape) return mload__json_fail(j, "duplicate field shape");
            have_shape = 1;
            if (*j->p != '[') return mload__json_fail(j, "shape must be an array of integers");
            ++j->p;
            mload__json_ws(j);
            if (*j->p == ']') {
                ++j->p;
            } else {
                for (;;) {
                    uint64_t d;
                    mload__json_ws(j);
                    if ((r = mload__json_u64(j, &d)) != MLOAD_OK) return r;
                    if (f->ndims == f->dims_cap) {
                        void *np = mload__grow(&f->alloc, f->dims, &f->dims_cap, f->ndims + 1, sizeof(uint64_t));
                        if (!np) return mload__oom(j->err);
                        f->dims = MLOAD__CAST(uint64_t *, np);
                    }
                    f->dims[f->ndims++] = d;
                    mload__json_ws(j);
                    if (*j->p == ',') { ++j->p; continue; }
                    if (*j->p == ']') { ++j->p; break; }
                    return mload__json_fail(j, "expected ',' or ']' in shape");
                }
            }
            if (f->ndims - first > UINT32_MAX) return mload__json_fail(j, "too many dimensions");
            t->rank = MLOAD__CAST(uint32_t, f->ndims - first);
        } else if (kl == 12 && mload__keyeq(k, "data_offsets", 12)) {
            if (have_offsets) return mload__json_fail(j, "duplicate field data_offsets");
            have_offsets = 1;
            if (*j->p != '[') return mload__json_fail(j, "data_offsets must be an array of 2 integers");
            ++j->p;
            mload__json_ws(j);
            if ((r = mload__json_u64(j, &off[0])) != MLOAD_OK) return r;
            mload__json_ws(j);
            if (*j->p != ',') return mload__json_fail(j, "data_offsets must have exactly 2 integers");
            ++j->p;
            mload__json_ws(j);
            if ((r = mload__json_u64(j, &off[1])) != MLOAD_OK) return r;
            mload__json_ws(j);
            if (*j->p != ']') return mload__json_fail(j, "data_offsets must have exactly 2 integers");
            ++j->p;
        } else {
            if ((r = mload__json_skip(j, 2)) != MLOAD_OK) return r; /* unknown field: ignored */
        }
        mload__json_ws(j);
        if (*j->p == ',') { ++j->p; continue; }
        if (*j->p == '}') { ++j->p; break; }
        return mload__json_fail(j, "expected ',' or '}' in tensor entry");
    }
    if (!have_dtype) return mload__json_fail(j, "missing field dtype");
    if (!have_shape) return mload__json_fail(j, "missing field shape");
    if (!have_offsets) return mload__json_fail(j, "missing field data_offsets");
    return MLOAD_OK;
}

/* Per-tensor facts kept while parsing, beside the tensor table. */
typedef struct mload__aux {
    uint64_t end;    /* data_offsets[1]; the tensor's offset holds [0] */
    uint64_t hash;   /* of the name, under f->index.seed */
    uint64_t keypos; /* header position of the name, for error reports */
} mload__aux;

static mload_result mload__parse_header(mload_file *f, mload_error *err, mload__aux **aux, size_t *aux_cap) {
    mload__json j;
    mload_result r;
    int seen_meta = 0;
    mload__json_init(&j, f->header, f->header_size, 8u, "header", err);
    mload__json_ws(&j);
    if (*j.p != '{') return mload__json_fail(&j, "the header must be a JSON object");
    r = MLOAD_OK;
    {
        const char *k;
        size_t kl;
        char *kpos;
        int st = 0;
        while (mload__json_member(&j, &st, &k, &kl, &kpos, &r)) {
            if (kl == 12 && mload__keyeq(k, "__metadata__", 12)) {
                if (seen_meta)
                    return mload__fail(err, MLOAD_ERR_DUPLICATE_KEY, 8u + MLOAD__CAST(uint64_t, kpos - j.base), k, kl,
                                       "__metadata__ is given twice");
                seen_meta = 1;
                if ((r = mload__parse_metadata(f, &j)) != MLOAD_OK) return r;
            } else {
                mload_tensor *t;
                mload__aux *x;
                uint64_t off[2] = {0, 0};
                if (f->count == f->cap || f->count == *aux_cap) {
                    void *np = mload__grow(&f->alloc, f->tensors, &f->cap, f->count + 1, sizeof(mload_tensor));
                    if (!np) return mload__oom(err);
                    f->tensors = MLOAD__CAST(mload_tensor *, np);
                    np = mload__grow(&f->alloc, *aux, aux_cap, f->count + 1, sizeof(mload__aux));
                    if (!np) return mload__oom(err);
                    *aux = MLOAD__CAST(mload__aux *, np);
                }
                t = &f->tensors[f->count];
                x = &(*aux)[f->count];
                memset(t, 0, sizeof(*t));
                t->name = k;
                t->name_len = kl;
                x->hash = mload__hash(f->index.seed, k, kl); /* while the name is in cache */
                x->keypos = 8u + MLOAD__CAST(uint64_t, kpos - j.base);
                if ((r = mload__parse_entry(f, &j, t, off)) != MLOAD_OK) return r;
                t->offset = off[0];
                x->end = off[1];
                f->count++;
            }
        }
    }
    if (r != MLOAD_OK) return r;
    mload__json_ws(&j);
    if (j.p != j.end) return mload__json_fail(&j, "trailing characters after the header object");
    if (f->count >= UINT32_MAX) return mload__fail(err, MLOAD_ERR_INVALID_HEADER_DESERIALIZATION, 8, NULL, 0, "too many tensors");
    return MLOAD_OK;
}

/* sort record: (begin, end, original position) */
typedef struct mload__ord { uint64_t begin, end; size_t idx; } mload__ord;

static int mload__ord_cmp(const void *a, const void *b) {
    const mload__ord *x = MLOAD__CAST(const mload__ord *, a), *y = MLOAD__CAST(const mload__ord *, b);
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx ? 1 : 0);
}

/* Puts tensors (and their aux records) in file order: by (begin, end),
   ties in header order. Most files are already in order: checked first. */
static int mload__sort_tensors(mload_file *f, mload__aux **aux, size_t *aux_cap) {
    const mload_allocator *a = &f->alloc;
    mload__ord *ord;
    mload_tensor *nt;
    mload__aux *nx;
    size_t i, n = f->count;
    for (i = 1; i < n; ++i) {
        const mload__aux *x = *aux;
        if (f->tensors[i].offset < f->tensors[i - 1].offset ||
            (f->tensors[i].offset == f->tensors[i - 1].offset && x[i].end < x[i - 1].end))
            break;
    }
    if (i >= n) return 1;
    ord = MLOAD__CAST(mload__ord *, mload__malloc(a, n * sizeof(mload__ord), sizeof(void *)));
    nt = MLOAD__CAST(mload_tensor *, mload__malloc(a, n * sizeof(mload_tensor), sizeof(void *)));
    nx = MLOAD__CAST(mload__aux *, mload__malloc(a, n * sizeof(mload__aux), sizeof(void *)));
    if (!ord || !nt || !nx) {
        mload__free(a, ord, n * sizeof(mload__ord), sizeof(void *));
        mload__free(a, nt, n * sizeof(mload_tensor), sizeof(void *));
        mload__free(a, nx, n * sizeof(mload__aux), sizeof(void *));
        return 0;
    }
    for (i = 0; i < n; ++i) {
        ord[i].begin = f->tensors[i].offset;
        ord[i].end = (*aux)[i].end;
        ord[i].idx = i;
    }
    qsort(ord, n, sizeof(mload__ord), mload__ord_cmp);
    for (i = 0; i < n; ++i) {
        nt[i] = f->tensors[ord[i].idx];
        nx[i] = (*aux)[ord[i].idx];
    }
    mload__free(a, f->tensors, f->cap * sizeof(mload_tensor), sizeof(void *));
    mload__free(a, *aux, *aux_cap * sizeof(mload__aux), sizeof(void *));
    mload__free(a, ord, n * sizeof(mload__ord), sizeof(void *));
    f->tensors = nt;
    f->cap = n;
    *aux = nx;
    *aux_cap = n;
    return 1;
}

/* Check 6 of the format, per tensor in file order, then check 7. */
static mload_result mload__validate(mload_file *f, const mload__aux *aux, mload_error *err) {
    uint64_t data_off = 8u + f->header_size, data_len = f->file_size - data_off, prev_end = 0;
    size_t i;
    for (i = 0; i < f->count; ++i) {
        mload_tensor *t = &f->tensors[i];
        uint64_t begin = t->offset, end = aux[i].end, numel = 1, nbits, at = aux[i].keypos;
        uint32_t d;
        if (begin != prev_end || end < begin)
            return mload__fail(err, MLOAD_ERR_INVALID_OFFSET, at, t->name, t->name_len,
                               "tensor '%s': data_offsets [%U, %U] do not start where the previous tensor ends (%U)",
                               t->name, begin, end, prev_end);
        prev_end = end;
        for (d = 0; d < t->rank; ++d)
            if (!mload__mul_u64(numel, t->shape[d], &numel))
                return mload__fail(err, MLOAD_ERR_VALIDATION_OVERFLOW, at, t->name, t->name_len,
                                   "tensor '%s': element count overflows 64 bits", t->name);
        if (!mload__mul_u64(numel, mload__dtypes[t->dtype].bits, &nbits))
            return mload__fail(err, MLOAD_ERR_VALIDATION_OVERFLOW, at, t->name, t->name_len,
                               "tensor '%s': bit count overflows 64 bits", t->name);
        if (nbits % 8u != 0)
            return mload__fail(err, MLOAD_ERR_MISALIGNED_SLICE, at, t->name, t->name_len,
                               "tensor '%s': %U elements of %s do not fill whole bytes", t->name, numel,
                               mload__dtypes[t->dtype].name);
        if (end - begin != nbits / 8u)
            return mload__fail(err, MLOAD_ERR_TENSOR_INVALID_INFO, at, t->name, t->name_len,
                               "tensor '%s': data_offsets span %U bytes but dtype and shape need %U", t->name,
                               end - begin, nbits / 8u);
        t->numel = numel;
        t->nbytes = nbits / 8u;
        t->offset = data_off + begin; /* wraps only on a file that check 7 rejects */
    }
    /* the data buffer is exactly the tensors (compared, never added: the
       reference overflows here on offsets near 2^64) */
    if (prev_end != data_len)
        return mload__fail(err, MLOAD_ERR_METADATA_INCOMPLETE_BUFFER, data_off, NULL, 0,
                           "tensors cover %U bytes but the data buffer has %U", prev_end, data_len);
    return MLOAD_OK;
}

static mload_result mload__open_source(const mload_file_desc *desc, mload_file *f, mload_error *err) {
    if (desc->source) {
        f->src = *desc->source;
        if (!f->src.read_at || !f->src.size)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "source without read_at or size");
        return MLOAD_OK;
    }
    if (desc->data) {
        return mload_source_open_memory(desc->data, desc->data_size, &f->alloc, &f->src, err);
    }
    return mload_source_open_path(desc->path, &f->alloc, &f->src, err);
}

/* Checks 1-3 and reads the header into a NUL-terminated, padded buffer.
   A zip archive stops here with f->format set (a PyTorch checkpoint);
   torch's legacy format is refused by name. */
static mload_result mload__read_header(mload_file *f, mload_error *err) {
    unsigned char lenbuf[8];
    uint64_t n = 0;
    int i, text;
    const char *hint;
    if (f->src.size(f->src.user, &f->file_size) != MLOAD_OK)
        return mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, NULL, 0, "cannot get the file size");
    if (f->file_size < 8)
        return mload__fail(err, MLOAD_ERR_HEADER_TOO_SMALL, 0, NULL, 0,
                           "file has %U bytes, fewer than the 8-byte header length", f->file_size);
    if (f->src.read_at(f->src.user, 0, lenbuf, 8) != MLOAD_OK)
        return mload__fail(err, MLOAD_ERR_IO, 0, NULL, 0, "cannot read the header length");
    if (lenbuf[0] == 'P' && lenbuf[1] == 'K' && ((lenbuf[2] == 3 && lenbuf[3] == 4) || (lenbuf[2] == 5 && lenbuf[3] == 6))) {
        f->format = MLOAD_FORMAT_PYTORCH;
        return MLOAD_OK;
    }
    if (memcmp(lenbuf, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46", 8) == 0) /* PROTO 2, then the LONG1 magic number */
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, 0, NULL, 0,
                           "the legacy PyTorch format (torch.save before torch 1.6, or _use_new_zipfile_serialization=False): "
                           "re-save it with torch >= 1.6");
    for (i = 7, text = 1; i >= 0; --i) {
        n = (n << 8) | lenbuf[i];
        text &= (lenbuf[i] >= 0x20 && lenbuf[i] < 0x7F) || lenbuf[i] == '\n' || lenbuf[i] == '\r' || lenbuf[i] == '\t';
    }
    hint = text ? " (the file starts with text: not a safetensors file?)" : "";
    if (n > MLOAD__MAX_HEADER)
        return mload__fail(err, MLOAD_ERR_HEADER_TOO_LARGE, 0, NULL, 0, "header length %U exceeds the limit of 100000000%s", n, hint);
    if (8u + n > f->file_size) /* n <= 1e8: no overflow */
        return mload__fail(err, MLOAD_ERR_INVALID_HEADER_LENGTH, 0, NULL, 0,
                           "header length %U runs past the end of the %U-byte file%s", n, f->file_size, hint);
    f->header = MLOAD__CAST(char *, mload__malloc(&f->alloc, MLOAD__CAST(size_t, n) + 1 + MLOAD__PAD, 1));
    if (!f->header) return mload__oom(err);
    f->header_size = n;
    memset(f->header + n, 0, 1 + MLOAD__PAD);
    if (n && f->src.read_at(f->src.user, 8, f->header, MLOAD__CAST(size_t, n)) != MLOAD_OK)
        return mload__fail(err, MLOAD_ERR_IO, 8, NULL, 0, "cannot read the %U-byte header", n);
    return MLOAD_OK;
}

/* ---- PyTorch checkpoints, read without executing anything ----
   torch.save (torch >= 1.6) writes a zip: PREFIX/data.pkl (a pickle of the
   object), PREFIX/data/KEY (one stored entry per storage), PREFIX/byteorder.
   The pickle runs on a machine that knows only the opcodes and globals
   torch.save writes for (nested) dicts of tensors: any other opcode or
   global is refused when it is met, before anything could use it, and no
   callable is ever called (the allowed ones are recognised by name and
   their effect is computed here). Memory is bounded by the limits below. */
#if !defined(MODELLOAD_NO_PICKLE)

#define MLOAD__ZIP_MAX_DIR (MLOAD__CAST(uint64_t, 1) << 28)  /* central directory bytes */
#define MLOAD__PK_MAX_OBJECTS (MLOAD__CAST(size_t, 1) << 23) /* values one pickle may create */
#define MLOAD__PK_MAX_STACK (MLOAD__CAST(size_t, 1) << 20)   /* stack entries */
#define MLOAD__PK_MAX_MARKS 256u                             /* open MARKs (nesting of tuples, lists, dicts) */
#define MLOAD__PK_MAX_MEMO (MLOAD__CAST(size_t, 1) << 23)    /* memo slots */
#define MLOAD__PK_MAX_DEPTH 64u                              /* nested dicts of a state dict */

static uint64_t mload__le(const unsigned char *p, unsigned n) {
    uint64_t v = 0;
    while (n--) v = (v << 8) | p[n];
    return v;
}

/* CRC-32 (zip's), eight bytes a step, tables built per call: used on the
   entries read whole (the pickle) */
static uint32_t mload__crc32(const unsigned char *p, size_t n) {
    uint32_t tab[8][256], c;
    unsigned i, k;
    for (i = 0; i < 256; ++i) {
        for (c = i, k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        tab[0][i] = c;
    }
    for (i = 0; i < 256; ++i)
        for (k = 1; k < 8; ++k) tab[k][i] = (tab[k - 1][i] >> 8) ^ tab[0][tab[k - 1][i] & 0xFFu];
    for (c = 0xFFFFFFFFu; n >= 8; n -= 8, p += 8) {
        uint32_t lo = c ^ (MLOAD__CAST(uint32_t, p[0]) | MLOAD__CAST(uint32_t, p[1]) << 8 | MLOAD__CAST(uint32_t, p[2]) << 16 |
                           MLOAD__CAST(uint32_t, p[3]) << 24);
        c = tab[7][lo & 0xFFu] ^ tab[6][(lo >> 8) & 0xFFu] ^ tab[5][(lo >> 16) & 0xFFu] ^ tab[4][lo >> 24] ^ tab[3][p[4]] ^
            tab[2][p[5]] ^ tab[1][p[6]] ^ tab[0][p[7]];
    }
    for (; n; --n) c = tab[0][(c ^ *p++) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* one central directory entry (the name points into the directory) */
typedef struct mload__zent {
    const char *name;
    size_t name_len;
    uint64_t csize, usize, lho;
    uint32_t crc, method, flags;
} mload__zent;

typedef struct mload__zip {
    unsigned char *cd;
    size_t cd_size;
    mload__zent *ents; /* sorted by name */
    size_t n, cap;
    unsigned char *win; /* read-ahead over local headers (MLOAD__ZIP_WIN bytes): one read serves many small entries */
    uint64_t win_at;
    size_t win_len;
} mload__zip;
#define MLOAD__ZIP_WIN (MLOAD__CAST(size_t, 1) << 17) /* > 30 + the longest name (65535) */
#define MLOAD__ZIP_AHEAD (MLOAD__CAST(size_t, 1) << 14) /* bytes read at a time */

static void mload__zip_free(const mload_allocator *a, mload__zip *z) {
    mload__free(a, z->cd, z->cd_size ? z->cd_size : 1, 1);
    mload__free(a, z->ents, z->cap * sizeof(mload__zent), sizeof(void *));
    mload__free(a, z->win, MLOAD__ZIP_WIN, 1);
    memset(z, 0, sizeof *z);
}

static mload_result mload__zip_bad(mload_error *err, uint64_t at, const char *what) {
    return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, at, NULL, 0, "zip archive: %s", what);
}

static int mload__zent_cmp(const void *x, const void *y) {
    const mload__zent *a = MLOAD__CAST(const mload__zent *, x), *b = MLOAD__CAST(const mload__zent *, y);
    return mload__name_cmp(a->name, a->name_len, b->name, b->name_len);
}

static const mload__zent *mload__zip_find(const mload__zip *z, const char *name, size_t len) {
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mload__name_cmp(z->ents[mid].name, z->ents[mid].name_len, name, len);
        if (c == 0) return &z->ents[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* the 32-bit fields replaced by ZIP64's extra field 0x0001 */
static int mload__zip64_extra(const unsigned char *x, size_t xl, mload__zent *e) {
    while (xl >= 4) {
        size_t id = MLOAD__CAST(size_t, mload__le(x, 2)), sz = MLOAD__CAST(size_t, mload__le(x + 2, 2)), at = 0;
        if (sz > xl - 4) return 0;
        if (id == 1) {
            uint64_t *fields[3];
            int k;
            fields[0] = &e->usize;
            fields[1] = &e->csize;
            fields[2] = &e->lho;
            for (k = 0; k < 3; ++k) {
                if (*fields[k] != 0xFFFFFFFFu) continue;
                if (at + 8 > sz) return 0;
                *fields[k] = mload__le(x + 4 + at, 8);
                at += 8;
            }
        }
        x += 4 + sz;
        xl -= 4 + sz;
    }
    return 1;
}

/* End of central directory (ZIP64 too), then the directory itself. */
static mload_result mload__zip_open(mload_file *f, mload__zip *z, mload_error *err) {
    const mload_allocator *a = &f->alloc;
    uint64_t fs = f->file_size, tl = fs < 65557u ? fs : 65557u, eocd, cd_off, cd_size, count, pos;
    unsigned char *tail = MLOAD__CAST(unsigned char *, mload__malloc(a, MLOAD__CAST(size_t, tl) + 1, 1));
    size_t i, k;
    int found = 0;
    mload_result r = MLOAD_OK;
    if (!tail) return mload__oom(err);
    if (f->src.read_at(f->src.user, fs - tl, tail, MLOAD__CAST(size_t, tl)) != MLOAD_OK) {
        mload__free(a, tail, MLOAD__CAST(size_t, tl) + 1, 1);
        return mload__fail(err, MLOAD_ERR_IO, fs - tl, NULL, 0, "cannot read the end of the zip archive");
    }
    for (i = tl >= 22 ? MLOAD__CAST(size_t, tl) - 22 : 0, k = tl >= 22; k; --i) { /* the record whose comment ends the file */
        if (mload__le(tail + i, 4) == 0x06054b50u && i + 22 + mload__le(tail + i + 20, 2) == tl) { found = 1; break; }
        if (i == 0) break;
    }
    if (!found) {
        mload__free(a, tail, MLOAD__CAST(size_t, tl) + 1, 1);
        return mload__zip_bad(err, MLOAD_NO_OFFSET, "no end of central directory record (a truncated file?)");
    }
    eocd = fs - tl + i;
    count = mload__le(tail + i + 10, 2);
    cd_size = mload__le(tail + i + 12, 4);
    cd_off = mload__le(tail + i + 16, 4);
    if (mload__le(tail + i + 4, 2) != 0 || mload__le(tail + i + 6, 2) != 0 || mload__le(tail + i + 8, 2) != count)
        r = mload__zip_bad(err, eocd, "archives split over several disks are not supported");
    if (r == MLOAD_OK && eocd >= 20) { /* a ZIP64 locator just before */
        unsigned char loc[20], z64[56];
        if (f->src.read_at(f->src.user, eocd - 20, loc, 20) != MLOAD_OK) {
            r = mload__fail(err, MLOAD_ERR_IO, eocd - 20, NULL, 0, "cannot read the zip archive");
        } else if (mload__le(loc, 4) == 0x07064b50u) {
            uint64_t zo = mload__le(loc + 8, 8);
            if (zo > eocd - 20 || eocd - 20 - zo < 56)
                r = mload__zip_bad(err, eocd - 20, "the ZIP64 end of central directory lies outside the archive");
            else if (f->src.read_at(f->src.user, zo, z64, 56) != MLOAD_OK)
                r = mload__fail(err, MLOAD_ERR_IO, zo, NULL, 0, "cannot read the zip archive");
            else if (mload__le(z64, 4) != 0x06064b50u)
                r = mload__zip_bad(err, zo, "bad ZIP64 end of central directory signature");
            else if (mload__le(z64 + 16, 4) != 0 || mload__le(z64 + 20, 4) != 0 || mload__le(z64 + 24, 8) != mload__le(z64 + 32, 8))
                r = mload__zip_bad(err, zo, "archives split over several disks are not supported");
            else {
                count = mload__le(z64 + 32, 8);
                cd_size = mload__le(z64 + 40, 8);
                cd_off = mload__le(z64 + 48, 8);
                eocd = zo;
            }
        }
    }
    mload__free(a, tail, MLOAD__CAST(size_t, tl) + 1, 1);
    if (r != MLOAD_OK) return r;
    if (cd_off > eocd || cd_size > eocd - cd_off) return mload__zip_bad(err, eocd, "the central directory lies outside the archive");
    if (cd_size > MLOAD__ZIP_MAX_DIR) return mload__zip_bad(err, eocd, "central directory larger than 256 MiB");
    if (count > cd_size / 46u) return mload__zip_bad(err, eocd, "more entries than the central directory can hold");
    z->cd_size = MLOAD__CAST(size_t, cd_size);
    z->cd = MLOAD__CAST(unsigned char *, mload__malloc(a, z->cd_size ? z->cd_size : 1, 1));
    z->win = MLOAD__CAST(unsigned char *, mload__malloc(a, MLOAD__ZIP_WIN, 1));
    if (!z->cd || !z->win || !mload__reserve(a, MLOAD__PCAST(void **, &z->ents), &z->cap, MLOAD__CAST(size_t, count) + 1, sizeof(mload__zent)))
        return mload__oom(err);
    if (cd_size && f->src.read_at(f->src.user, cd_off, z->cd, z->cd_size) != MLOAD_OK)
        return mload__fail(err, MLOAD_ERR_IO, cd_off, NULL, 0, "cannot read the zip central directory");
    for (pos = 0, k = 0; k < count; ++k) {
        const unsigned char *h = z->cd + pos;
        mload__zent *e = &z->ents[z->n];
        uint64_t nl, xl, cl;
        if (cd_size - pos < 46 || mload__le(h, 4) != 0x02014b50u) return mload__zip_bad(err, cd_off + pos, "bad central directory entry");
        nl = mload__le(h + 28, 2);
        xl = mload__le(h + 30, 2);
        cl = mload__le(h + 32, 2);
        if (cd_size - pos - 46 < nl + xl + cl) return mload__zip_bad(err, cd_off + pos, "central directory entry runs past the directory");
        e->flags = MLOAD__CAST(uint32_t, mload__le(h + 8, 2));
        e->method = MLOAD__CAST(uint32_t, mload__le(h + 10, 2));
        e->crc = MLOAD__CAST(uint32_t, mload__le(h + 16, 4));
        e->csize = mload__le(h + 20, 4);
        e->usize = mload__le(h + 24, 4);
        e->lho = mload__le(h + 42, 4);
        e->name = MLOAD__PCAST(const char *, h + 46);
        e->name_len = MLOAD__CAST(size_t, nl);
        if (!mload__zip64_extra(h + 46 + nl, MLOAD__CAST(size_t, xl), e))
            return mload__zip_bad(err, cd_off + pos, "bad ZIP64 extra field");
        z->n++;
        pos += 46 + nl + xl + cl;
    }
    qsort(z->ents, z->n, sizeof(mload__zent), mload__zent_cmp);
    for (i = 1; i < z->n; ++i)
        if (mload__zent_cmp(&z->ents[i - 1], &z->ents[i]) == 0)
            return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, MLOAD_NO_OFFSET, z->ents[i].name, z->ents[i].name_len,
                               "zip archive: entry '%S' is given twice", z->ents[i].name, z->ents[i].name_len);
    return MLOAD_OK;
}

/* bytes [at, at + n) of the file (n <= MLOAD__ZIP_WIN) through the
   read-ahead window; NULL when they are not all in the file or a read fails */
static const unsigned char *mload__zip_window(const mload_file *f, mload__zip *z, uint64_t at, size_t n) {
    if (at > f->file_size || f->file_size - at < n) return NULL;
    if (at < z->win_at || at - z->win_at > z->win_len || z->win_len - (at - z->win_at) < n) {
        uint64_t len = f->file_size - at, want = n > MLOAD__ZIP_AHEAD ? n : MLOAD__ZIP_AHEAD;
        if (len > want) len = want;
        z->win_len = 0;
        if (f->src.read_at(f->src.user, at, z->win, MLOAD__CAST(size_t, len)) != MLOAD_OK) return NULL;
        z->win_at = at;
        z->win_len = MLOAD__CAST(size_t, len);
    }
    return z->win + (at - z->win_at);
}

/* Where entry e's bytes start, checked against its local header. */
static mload_result mload__zip_data(const mload_file *f, mload__zip *z, const mload__zent *e, uint64_t *off, mload_error *err) {
    const unsigned char *h;
    uint64_t nl, xl, at;
    if (e->method != 0)
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, e->lho, e->name, e->name_len,
                           "zip entry '%S' is compressed (method %U); torch.save stores entries uncompressed: re-save it",
                           e->name, e->name_len, MLOAD__CAST(uint64_t, e->method));
    if (e->flags & 1u)
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, e->lho, e->name, e->name_len, "zip entry '%S' is encrypted", e->name, e->name_len);
    if (e->csize != e->usize)
        return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, e->lho, e->name, e->name_len,
                           "zip entry '%S': a stored entry's sizes differ", e->name, e->name_len);
    h = mload__zip_window(f, z, e->lho, 30 + e->name_len);
    if (!h || mload__le(h, 4) != 0x04034b50u)
        return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, e->lho, e->name, e->name_len,
                           "zip entry '%S': no local header where the directory says", e->name, e->name_len);
    nl = mload__le(h + 26, 2);
    xl = mload__le(h + 28, 2);
    at = e->lho + 30 + nl + xl;
    if (nl != e->name_len || memcmp(h + 30, e->name, e->name_len) != 0)
        return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, e->lho, e->name, e->name_len,
                           "zip entry '%S': its local header names another file", e->name, e->name_len);
    if (at > f->file_size || e->usize > f->file_size - at)
        return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, e->lho, e->name, e->name_len,
                           "zip entry '%S' runs past the end of the archive", e->name, e->name_len);
    *off = at;
    return MLOAD_OK;
}

/* A small entry read whole (CRC checked) into memory: its size in *n. */
static mload_result mload__zip_slurp(const mload_file *f, mload__zip *z, const mload__zent *e, uint64_t limit,
                                     unsigned char **out, uint64_t *at, mload_error *err) {
    mload_result r = mload__zip_data(f, z, e, at, err);
    unsigned char *p;
    *out = NULL;
    if (r != MLOAD_OK) return r;
    if (e->usize > limit)
        return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, *at, e->name, e->name_len, "zip entry '%S' is larger than %U bytes",
                           e->name, e->name_len, limit);
    p = MLOAD__CAST(unsigned char *, mload__malloc(&f->alloc, MLOAD__CAST(size_t, e->usize) + 1, 1));
    if (!p) return mload__oom(err);
    p[e->usize] = 0;
    if (e->usize && f->src.read_at(f->src.user, *at, p, MLOAD__CAST(size_t, e->usize)) != MLOAD_OK) r = MLOAD_ERR_IO;
    if (r != MLOAD_OK) mload__fail(err, r, *at, e->name, e->name_len, "zip entry '%S': read failed", e->name, e->name_len);
    else if (mload__crc32(p, MLOAD__CAST(size_t, e->usize)) != e->crc)
        r = mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, *at, e->name, e->name_len, "zip entry '%S': CRC-32 mismatch", e->name, e->name_len);
    if (r != MLOAD_OK) mload__free(&f->alloc, p, MLOAD__CAST(size_t, e->usize) + 1, 1);
    else *out = p;
    return r;
}

/* ---- the restricted pickle machine ---- */
enum {
    MLOAD__PK_NONE, MLOAD__PK_BOOL, MLOAD__PK_INT, MLOAD__PK_FLOAT, MLOAD__PK_STR, MLOAD__PK_BYTES, MLOAD__PK_TUPLE,
    MLOAD__PK_LIST, MLOAD__PK_DICT, MLOAD__PK_GLOBAL, MLOAD__PK_STORAGE, MLOAD__PK_TENSOR
};
static const char *const mload__pk_kinds[] = {"None", "bool", "int", "float", "str", "bytes", "tuple",
                                             "list", "dict", "global", "storage", "tensor"};
enum { MLOAD__G_ODICT = 1, MLOAD__G_V2, MLOAD__G_V3, MLOAD__G_PARAM, MLOAD__G_PARAM_STATE, MLOAD__G_ENCODE, MLOAD__G_STORAGE, MLOAD__G_DTYPE };

/* the only globals a pickle may name */
typedef struct mload__pk_allowed { const char *mod, *name; uint8_t gid, dtype; } mload__pk_allowed;
static const mload__pk_allowed mload__pk_globals[] = {
    {"collections", "OrderedDict", MLOAD__G_ODICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", MLOAD__G_V2, 0},
    {"torch._utils", "_rebuild_tensor_v3", MLOAD__G_V3, 0},
    {"torch._utils", "_rebuild_parameter", MLOAD__G_PARAM, 0},
    {"torch._utils", "_rebuild_parameter_with_state", MLOAD__G_PARAM_STATE, 0},
    {"_codecs", "encode", MLOAD__G_ENCODE, 0},
    {"torch", "DoubleStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_F64},
    {"torch", "FloatStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_F32},
    {"torch", "HalfStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_F16},
    {"torch", "BFloat16Storage", MLOAD__G_STORAGE, MLOAD_DTYPE_BF16},
    {"torch", "LongStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_I64},
    {"torch", "IntStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_I32},
    {"torch", "ShortStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_I16},
    {"torch", "CharStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_I8},
    {"torch", "ByteStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_U8},
    {"torch", "BoolStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_BOOL},
    {"torch", "ComplexFloatStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_C64},
    {"torch", "UntypedStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_INVALID},
    {"torch.storage", "UntypedStorage", MLOAD__G_STORAGE, MLOAD_DTYPE_INVALID},
    {"torch", "float64", MLOAD__G_DTYPE, MLOAD_DTYPE_F64},
    {"torch", "float32", MLOAD__G_DTYPE, MLOAD_DTYPE_F32},
    {"torch", "float16", MLOAD__G_DTYPE, MLOAD_DTYPE_F16},
    {"torch", "bfloat16", MLOAD__G_DTYPE, MLOAD_DTYPE_BF16},
    {"torch", "float8_e4m3fn", MLOAD__G_DTYPE, MLOAD_DTYPE_F8_E4M3},
    {"torch", "float8_e5m2", MLOAD__G_DTYPE, MLOAD_DTYPE_F8_E5M2},
    {"torch", "float8_e4m3fnuz", MLOAD__G_DTYPE, MLOAD_DTYPE_F8_E4M3FNUZ},
    {"torch", "float8_e5m2fnuz", MLOAD__G_DTYPE, MLOAD_DTYPE_F8_E5M2FNUZ},
    {"torch", "float8_e8m0fnu", MLOAD__G_DTYPE, MLOAD_DTYPE_F8_E8M0},
    {"torch", "int64", MLOAD__G_DTYPE, MLOAD_DTYPE_I64},
    {"torch", "int32", MLOAD__G_DTYPE, MLOAD_DTYPE_I32},
    {"torch", "int16", MLOAD__G_DTYPE, MLOAD_DTYPE_I16},
    {"torch", "int8", MLOAD__G_DTYPE, MLOAD_DTYPE_I8},
    {"torch", "uint8", MLOAD__G_DTYPE, MLOAD_DTYPE_U8},
    {"torch", "uint16", MLOAD__G_DTYPE, MLOAD_DTYPE_U16},
    {"torch", "uint32", MLOAD__G_DTYPE, MLOAD_DTYPE_U32},
    {"torch", "uint64", MLOAD__G_DTYPE, MLOAD_DTYPE_U64},
    {"torch", "bool", MLOAD__G_DTYPE, MLOAD_DTYPE_BOOL},
    {"torch", "complex64", MLOAD__G_DTYPE, MLOAD_DTYPE_C64}
};

/* a value: containers hold an edge list; a tensor its storage (ref), shape
   and stride tuples (head, tail); a storage its key (s), dtype, size in
   elements of dtype (i) and, once resolved, its entry (ref) and offset (u) */
typedef struct mload__pv {
    uint8_t kind, gid, dtype, seen;
    uint32_t n, head, tail, ref;
    int64_t i;
    uint64_t u;
    const char *s;
    size_t len;
} mload__pv;
typedef struct mload__pe { uint32_t k, v, next; } mload__pe;

typedef struct mload__pk {
    const mload_allocator *a;
    const unsigned char *base, *p, *end;
    uint64_t file_off; /* of the pickle, for error offsets */
    const unsigned char *op_at;
    mload__pv *obj; size_t nobj, obj_cap;
    mload__pe *edge; size_t nedge, edge_cap;
    uint32_t *stack; size_t sp, stack_cap;
    size_t marks[MLOAD__PK_MAX_MARKS]; size_t nmarks;
    uint32_t *memo; size_t memo_cap, memo_used;
    uint32_t small[256]; /* the value of each int 0..255 once made (ints never change), else UINT32_MAX */
    mload_error *err;
} mload__pk;

static void mload__pk_free(mload__pk *k) {
    mload__free(k->a, k->obj, k->obj_cap * sizeof(mload__pv), sizeof(void *));
    mload__free(k->a, k->edge, k->edge_cap * sizeof(mload__pe), sizeof(void *));
    mload__free(k->a, k->stack, k->stack_cap * sizeof(uint32_t), sizeof(void *));
    mload__free(k->a, k->memo, k->memo_cap * sizeof(uint32_t), sizeof(void *));
}

static uint64_t mload__pk_at(const mload__pk *k) { return k->file_off + MLOAD__CAST(uint64_t, k->op_at - k->base); }

static mload_result mload__pk_bad(mload__pk *k, const char *what) {
    return mload__fail(k->err, MLOAD_ERR_INVALID_PICKLE, mload__pk_at(k), NULL, 0, "pickle: %s (at pickle byte %U)", what,
                       MLOAD__CAST(uint64_t, k->op_at - k->base));
}

/* opcode names, for messages */
static const char *mload__pk_opname(unsigned op) {
    static const char low[] = "(MARK\0.STOP\0000POP\0001POP_MARK\0002DUP\0FFLOAT\0IINT\0JBININT\0KBININT1\0LLONG\0MBININT2\0"
                              "NNONE\0PPERSID\0QBINPERSID\0RREDUCE\0SSTRING\0TBINSTRING\0USHORT_BINSTRING\0VUNICODE\0"
                              "XBINUNICODE\0aAPPEND\0bBUILD\0cGLOBAL\0dDICT\0}EMPTY_DICT\0eAPPENDS\0gGET\0hBINGET\0iINST\0"
                              "jLONG_BINGET\0lLIST\0]EMPTY_LIST\0oOBJ\0pPUT\0qBINPUT\0rLONG_BINPUT\0sSETITEM\0tTUPLE\0"
                              ")EMPTY_TUPLE\0uSETITEMS\0GBINFLOAT\0BBINBYTES\0CSHORT_BINBYTES\0";
    static const char *const high[] = {"PROTO", "NEWOBJ", "EXT1", "EXT2", "EXT4", "TUPLE1", "TUPLE2", "TUPLE3",
                                       "NEWTRUE", "NEWFALSE", "LONG1", "LONG4", "SHORT_BINUNICODE", "BINUNICODE8",
                                       "BINBYTES8", "EMPTY_SET", "ADDITEMS", "FROZENSET", "NEWOBJ_EX", "STACK_GLOBAL",
                                       "MEMOIZE", "FRAME", "BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"};
    const char *s = low;
    if (op >= 0x80 && op <= 0x98) return high[op - 0x80];
    for (; s < low + sizeof low - 1; s += strlen(s) + 1)
        if (MLOAD__CAST(unsigned char, *s) == op) return s + 1;
    return "unknown";
}

static mload_result mload__pk_refuse(mload__pk *k, unsigned op, const char *why) {
    return mload__fail(k->err, MLOAD_ERR_PICKLE_REFUSED, mload__pk_at(k), NULL, 0,
                       "pickle: opcode %s %s (not something torch.save writes for tensors; nothing was run)", mload__pk_opname(op), why);
}

/* a new value of `kind`: its id in *id */
static mload_result mload__pk_new(mload__pk *k, uint8_t kind, uint32_t *id) {
    if (k->nobj >= MLOAD__PK_MAX_OBJECTS) return mload__pk_bad(k, "more than 8388608 values");
    if (k->nobj >= k->obj_cap && !mload__reserve(k->a, MLOAD__PCAST(void **, &k->obj), &k->obj_cap, k->nobj + 1, sizeof(mload__pv))) return mload__oom(k->err);
    memset(&k->obj[k->nobj], 0, sizeof(mload__pv));
    k->obj[k->nobj].kind = kind;
    k->obj[k->nobj].head = k->obj[k->nobj].tail = UINT32_MAX;
    *id = MLOAD__CAST(uint32_t, k->nobj++);
    return MLOAD_OK;
}

static mload_result mload__pk_push(mload__pk *k, uint32_t id) {
    if (k->sp >= MLOAD__PK_MAX_STACK) return mload__pk_bad(k, "stack deeper than 1048576 entries");
    if (k->sp >= k->stack_cap && !mload__reserve(k->a, MLOAD__PCAST(void **, &k->stack), &k->stack_cap, k->sp + 1, sizeof(uint32_t))) return mload__oom(k->err);
    k->stack[k->sp++] = id;
    return MLOAD_OK;
}

/* pushes a new value */
static mload_result mload__pk_make(mload__pk *k, uint8_t kind, int64_t i, const unsigned char *s, size_t len) {
    uint32_t id = 0;
    mload_result r = mload__pk_new(k, kind, &id);
    if (r != MLOAD_OK) return r;
    k->obj[id].i = i;
    k->obj[id].s = MLOAD__PCAST(const char *, s);
    k->obj[id].len = len;
    return mload__pk_push(k, id);
}

/* pushes an int: the ones 0..255 (dims, strides, offsets) are shared */
static mload_result mload__pk_int(mload__pk *k, int64_t v) {
    mload_result r;
    if (v < 0 || v > 255) return mload__pk_make(k, MLOAD__PK_INT, v, NULL, 0);
    if (k->small[v] != UINT32_MAX) return mload__pk_push(k, k->small[v]);
    if ((r = mload__pk_make(k, MLOAD__PK_INT, v, NULL, 0)) == MLOAD_OK) k->small[v] = k->stack[k->sp - 1];
    return r;
}

/* appends (key, value) to container c */
static mload_result mload__pk_add(mload__pk *k, uint32_t c, uint32_t key, uint32_t val) {
    mload__pv *o = &k->obj[c];
    if (k->nedge >= MLOAD__PK_MAX_OBJECTS) return mload__pk_bad(k, "more than 8388608 container items");
    if (k->nedge >= k->edge_cap && !mload__reserve(k->a, MLOAD__PCAST(void **, &k->edge), &k->edge_cap, k->nedge + 1, sizeof(mload__pe))) return mload__oom(k->err);
    k->edge[k->nedge].k = key;
    k->edge[k->nedge].v = val;
    k->edge[k->nedge].next = UINT32_MAX;
    if (o->tail != UINT32_MAX) k->edge[o->tail].next = MLOAD__CAST(uint32_t, k->nedge);
    else o->head = MLOAD__CAST(uint32_t, k->nedge);
    o->tail = MLOAD__CAST(uint32_t, k->nedge++);
    o->n++;
    return MLOAD_OK;
}

/* the stack from the last MARK: its position in *from, the MARK removed */
static mload_result mload__pk_pop_mark(mload__pk *k, size_t *from) {
    if (!k->nmarks) return mload__pk_bad(k, "no MARK to pop to");
    *from = k->marks[--k->nmarks];
    return MLOAD_OK;
}

/* The values APPEND or SETITEM (single: the last nvals) or APPENDS or
   SETITEMS (those above the last MARK) add: where they start; the
   container lies just below. */
static mload_result mload__pk_items(mload__pk *k, int single, size_t nvals, size_t *from) {
    mload_result r;
    if (single) {
        if (k->sp < nvals + 1 || (k->nmarks && k->marks[k->nmarks - 1] > k->sp - nvals - 1))
            return mload__pk_bad(k, "APPEND or SETITEM without a container and its values");
        *from = k->sp - nvals;
        return MLOAD_OK;
    }
    if ((r = mload__pk_pop_mark(k, from)) != MLOAD_OK) return r;
    if (*from == 0) return mload__pk_bad(k, "APPENDS or SETITEMS without a container");
    return MLOAD_OK;
}

/* a tuple (or list) of stack[from..sp), popped and replaced by it */
static mload_result mload__pk_collect(mload__pk *k, uint8_t kind, size_t from) {
    uint32_t id = 0;
    size_t i;
    mload_result r = mload__pk_new(k, kind, &id);
    for (i = from; i < k->sp && r == MLOAD_OK; ++i) r = mload__pk_add(k, id, UINT32_MAX, k->stack[i]);
    if (r != MLOAD_OK) return r;
    k->sp = from;
    return mload__pk_push(k, id);
}

/* n bytes of the argument of the current opcode */
static const unsigned char *mload__pk_take(mload__pk *k, uint64_t n) {
    const unsigned char *p = k->p;
    if (n > MLOAD__CAST(uint64_t, k->end - k->p)) return NULL;
    k->p += n;
    return p;
}

static uint32_t mload__pk_item_id(const mload__pk *k, uint32_t c, uint32_t i) { /* item i (< n) of a tuple */
    uint32_t e = k->obj[c].head;
    while (i--) e = k->edge[e].next;
    return k->edge[e].v;
}
static mload__pv *mload__pk_item(const mload__pk *k, uint32_t c, uint32_t i) { return &k->obj[mload__pk_item_id(k, c, i)]; }

/* module and name: a global the machine knows, or the refusal naming it */
static mload_result mload__pk_global(mload__pk *k, unsigned op, const char *mod, size_t ml, const char *name, size_t nl) {
    size_t i;
    uint32_t id = 0;
    mload_result r;
    for (i = 0; i < sizeof mload__pk_globals / sizeof mload__pk_globals[0]; ++i) {
        const mload__pk_allowed *g = &mload__pk_globals[i];
        if (strlen(g->mod) == ml && strlen(g->name) == nl && memcmp(g->mod, mod, ml) == 0 && memcmp(g->name, name, nl) == 0) {
            if ((r = mload__pk_new(k, MLOAD__PK_GLOBAL, &id)) != MLOAD_OK) return r;
            k->obj[id].gid = g->gid;
            k->obj[id].dtype = g->dtype;
            k->obj[id].s = g->name;
            k->obj[id].len = nl;
            return mload__pk_push(k, id);
        }
    }
    return mload__fail(k->err, MLOAD_ERR_PICKLE_REFUSED, mload__pk_at(k), name, nl,
                       "pickle: opcode %s names global '%S.%S', which is not allowed: only what torch.save writes for "
                       "tensors is (nothing was run)", mload__pk_opname(op), mod, ml, name, nl);
}

/* REDUCE: the callable's effect computed here, for the allowed ones only */
static mload_result mload__pk_reduce(mload__pk *k) {
    uint32_t fn, args, id;
    mload__pv *f, *t;
    mload_result r;
    if (k->sp < 2 || (k->nmarks && k->marks[k->nmarks - 1] > k->sp - 2)) return mload__pk_bad(k, "REDUCE needs a callable and arguments");
    args = k->stack[--k->sp];
    fn = k->stack[--k->sp];
    f = &k->obj[fn];
    t = &k->obj[args];
    if (f->kind != MLOAD__PK_GLOBAL)
        return mload__fail(k->err, MLOAD_ERR_PICKLE_REFUSED, mload__pk_at(k), NULL, 0,
                           "pickle: opcode REDUCE of a %s, not of an allowed global (nothing was run)", mload__pk_kinds[f->kind]);
    if (t->kind != MLOAD__PK_TUPLE) return mload__pk_bad(k, "REDUCE arguments are not a tuple");
    switch (f->gid) {
    case MLOAD__G_ODICT: /* OrderedDict(): its items follow (SETITEMS) */
        if (t->n != 0) return mload__pk_bad(k, "OrderedDict with arguments");
        if ((r = mload__pk_new(k, MLOAD__PK_DICT, &id)) != MLOAD_OK) return r;
        return mload__pk_push(k, id);
    case MLOAD__G_V2: case MLOAD__G_V3: { /* (storage, offset, size, stride, requires_grad, hooks[, metadata | dtype]) */
        mload__pv *st, *off, *size, *stride, *dt = NULL;
        if (t->n < 6 || t->n > 7) return mload__pk_bad(k, "_rebuild_tensor with a wrong number of arguments");
        st = mload__pk_item(k, args, 0);
        off = mload__pk_item(k, args, 1);
        size = mload__pk_item(k, args, 2);
        stride = mload__pk_item(k, args, 3);
        if (f->gid == MLOAD__G_V3) {
            if (t->n != 7) return mload__pk_bad(k, "_rebuild_tensor_v3 without a dtype");
            dt = mload__pk_item(k, args, 6);
            if (dt->kind != MLOAD__PK_GLOBAL || dt->gid != MLOAD__G_DTYPE) return mload__pk_bad(k, "_rebuild_tensor_v3: bad dtype");
        }
        if (st->kind != MLOAD__PK_STORAGE || off->kind != MLOAD__PK_INT || size->kind != MLOAD__PK_TUPLE ||
            stride->kind != MLOAD__PK_TUPLE)
            return mload__pk_bad(k, "_rebuild_tensor arguments are not (storage, int, tuple, tuple, ...)");
        if ((dt == NULL) != (st->dtype != MLOAD_DTYPE_INVALID)) return mload__pk_bad(k, "tensor of an untyped storage without a dtype");
        {
            uint32_t sid = mload__pk_item_id(k, args, 0), shp = mload__pk_item_id(k, args, 2), str = mload__pk_item_id(k, args, 3);
            int64_t soff = off->i;
            uint8_t dtype = dt ? dt->dtype : st->dtype;
            if ((r = mload__pk_new(k, MLOAD__PK_TENSOR, &id)) != MLOAD_OK) return r; /* (the table may move) */
            k->obj[id].ref = sid;
            k->obj[id].i = soff;
            k->obj[id].head = shp;
            k->obj[id].tail = str;
            k->obj[id].dtype = dtype;
        }
        return mload__pk_push(k, id);
    }
    case MLOAD__G_PARAM: case MLOAD__G_PARAM_STATE: /* (tensor, requires_grad, hooks[, state]): the tensor */
        if (t->n < 3 || t->n > 4 || mload__pk_item(k, args, 0)->kind != MLOAD__PK_TENSOR)
            return mload__pk_bad(k, "_rebuild_parameter arguments are not (tensor, ...)");
        return mload__pk_push(k, k->edge[t->head].v);
    case MLOAD__G_ENCODE: { /* _codecs.encode(str, "latin1"): how protocol 2 writes bytes */
        mload__pv *s, *enc;
        if (t->n != 2) return mload__pk_bad(k, "_codecs.encode with a wrong number of arguments");
        s = mload__pk_item(k, args, 0);
        enc = mload__pk_item(k, args, 1);
        if (s->kind != MLOAD__PK_STR || enc->kind != MLOAD__PK_STR || enc->len != 6 || memcmp(enc->s, "latin1", 6) != 0)
            return mload__pk_bad(k, "_codecs.encode of something other than (str, 'latin1')");
        return mload__pk_make(k, MLOAD__PK_BYTES, 0, MLOAD__PCAST(const unsigned char *, s->s), s->len);
    }
    default:
        return mload__fail(k->err, MLOAD_ERR_PICKLE_REFUSED, mload__pk_at(k), f->s, f->len,
                           "pickle: opcode REDUCE of global '%S' is not allowed (nothing was run)", f->s, f->len);
    }
}

/* BINPERSID: ('storage', storage type, key, location, numel) */
static mload_result mload__pk_persid(mload__pk *k) {
    uint32_t pid, id;
    mload__pv *t, *tag, *ty, *key, *loc, *n;
    if (k->sp < 1 || (k->nmarks && k->marks[k->nmarks - 1] > k->sp - 1)) return mload__pk_bad(k, "BINPERSID on an empty stack");
    pid = k->stack[--k->sp];
    t = &k->obj[pid];
    if (t->kind != MLOAD__PK_TUPLE || t->n != 5) return mload__pk_bad(k, "persistent id is not a 5-tuple");
    tag = mload__pk_item(k, pid, 0);
    ty = mload__pk_item(k, pid, 1);
    key = mload__pk_item(k, pid, 2);
    loc = mload__pk_item(k, pid, 3);
    n = mload__pk_item(k, pid, 4);
    if (tag->kind != MLOAD__PK_STR || tag->len != 7 || memcmp(tag->s, "storage", 7) != 0 || ty->kind != MLOAD__PK_GLOBAL ||
        ty->gid != MLOAD__G_STORAGE || key->kind != MLOAD__PK_STR || loc->kind != MLOAD__PK_STR || n->kind != MLOAD__PK_INT || n->i < 0)
        return mload__pk_bad(k, "persistent id is not ('storage', <storage type>, key, location, size)");
    {
        mload_result r = mload__pk_new(k, MLOAD__PK_STORAGE, &id);
        if (r != MLOAD_OK) return r;
    }
    k->obj[id].dtype = mload__pk_item(k, pid, 1)->dtype;
    k->obj[id].s = mload__pk_item(k, pid, 2)->s;
    k->obj[id].len = mload__pk_item(k, pid, 2)->len;
    k->obj[id].i = mload__pk_item(k, pid, 4)->i;
    k->obj[id].ref = UINT32_MAX;
    return mload__pk_push(k, id);
}

static mload_result mload__pk_memo_put(mload__pk *k, uint64_t idx) {
    if (!k->sp) return mload__pk_bad(k, "memo put on an empty stack");
    if (idx >= MLOAD__PK_MAX_MEMO) return mload__pk_bad(k, "memo index above 8388608");
    if (idx >= k->memo_cap) {
        size_t old = k->memo_cap;
        if (!mload__reserve(k->a, MLOAD__PCAST(void **, &k->memo), &k->memo_cap, MLOAD__CAST(size_t, idx) + 1, sizeof(uint32_t)))
            return mload__oom(k->err);
        memset(k->memo + old, 0xFF, (k->memo_cap - old) * sizeof(uint32_t));
    }
    if (k->memo[idx] == UINT32_MAX) k->memo_used++;
    k->memo[idx] = k->stack[k->sp - 1];
    return MLOAD_OK;
}

static mload_result mload__pk_memo_get(mload__pk *k, uint64_t idx) {
    if (idx >= k->memo_cap || k->memo[idx] == UINT32_MAX) return mload__pk_bad(k, "memo get of an index never put");
    return mload__pk_push(k, k->memo[idx]);
}

/* Runs the pickle; the value it returns in *out. */
static mload_result mload__pk_run(mload__pk *k, uint32_t *out) {
    size_t from = 0, i;
    mload_result r = MLOAD_OK;
    uint32_t id = 0;
    for (i = 0; i < 3; ++i) /* None, False, True */
        if ((r = mload__pk_new(k, i ? MLOAD__PK_BOOL : MLOAD__PK_NONE, &id)) != MLOAD_OK) return r;
    k->obj[2].i = 1;
    while (r == MLOAD_OK) {
        const unsigned char *a;
        unsigned op;
        k->op_at = k->p;
        if (k->p >= k->end) return mload__pk_bad(k, "ends without STOP");
        op = *k->p++;
        switch (op) {
        case 0x80: /* PROTO */
            if (!(a = mload__pk_take(k, 1))) return mload__pk_bad(k, "truncated");
            if (*a < 2 || *a > 5) return mload__pk_bad(k, "protocol other than 2 to 5");
            break;
        case 0x95: /* FRAME: a length hint */
            if (!mload__pk_take(k, 8)) return mload__pk_bad(k, "truncated");
            break;
        case '.': /* STOP */
            if (k->sp != 1 || k->nmarks) return mload__pk_bad(k, "STOP with a stack of other than one value");
            *out = k->stack[0];
            return MLOAD_OK;
        case '(':
            if (k->nmarks >= MLOAD__PK_MAX_MARKS) return mload__pk_bad(k, "more than 256 nested MARKs");
            k->marks[k->nmarks++] = k->sp;
            break;
        case '0': /* POP */
            if (!k->sp || (k->nmarks && k->marks[k->nmarks - 1] == k->sp)) return mload__pk_bad(k, "POP of nothing");
            k->sp--;
            break;
        case '1': /* POP_MARK */
            if ((r = mload__pk_pop_mark(k, &from)) == MLOAD_OK) k->sp = from;
            break;
        case 'N': r = mload__pk_push(k, 0); break;
        case 0x89: r = mload__pk_push(k, 1); break;
        case 0x88: r = mload__pk_push(k, 2); break;
        case 'K': case 'M': case 'J': { /* BININT1, BININT2, BININT */
            unsigned n = op == 'K' ? 1u : op == 'M' ? 2u : 4u;
            uint64_t v;
            if (!(a = mload__pk_take(k, n))) return mload__pk_bad(k, "truncated");
            v = mload__le(a, n);
            r = mload__pk_int(k, op == 'J' ? MLOAD__CAST(int64_t, MLOAD__CAST(int32_t, MLOAD__CAST(uint32_t, v))) : MLOAD__CAST(int64_t, v));
            break;
        }
        case 0x8a: { /* LONG1: little-endian two's complement, at most 8 bytes here */
            uint64_t v;
            unsigned n;
            if (!(a = mload__pk_take(k, 1))) return mload__pk_bad(k, "truncated");
            n = *a;
            if (n > 8) return mload__pk_bad(k, "integer wider than 64 bits");
            if (!(a = mload__pk_take(k, n))) return mload__pk_bad(k, "truncated");
            v = mload__le(a, n);
            if (n && n < 8 && (a[n - 1] & 0x80u)) v |= ~MLOAD__CAST(uint64_t, 0) << (8u * n);
            r = mload__pk_int(k, MLOAD__CAST(int64_t, v));
            break;
        }
        case 'G': /* BINFLOAT: kept as its bits */
            if (!(a = mload__pk_take(k, 8))) return mload__pk_bad(k, "truncated");
            r = mload__pk_make(k, MLOAD__PK_FLOAT, 0, a, 8);
            break;
        case 'X': case 0x8c: case 0x8d: case 'B': case 'C': case 0x8e: { /* strings and bytes, pointing into the pickle */
            unsigned n = (op == 0x8c || op == 'C') ? 1u : (op == 0x8d || op == 0x8e) ? 8u : 4u;
            uint64_t len;
            if (!(a = mload__pk_take(k, n))) return mload__pk_bad(k, "truncated");
            len = mload__le(a, n);
            if (!(a = mload__pk_take(k, len))) return mload__pk_bad(k, "string runs past the end");
            r = mload__pk_make(k, (op == 'B' || op == 'C' || op == 0x8e) ? MLOAD__PK_BYTES : MLOAD__PK_STR, 0, a, MLOAD__CAST(size_t, len));
            break;
        }
        case ')': r = mload__pk_collect(k, MLOAD__PK_TUPLE, k->sp); break;
        case 't': if ((r = mload__pk_pop_mark(k, &from)) == MLOAD_OK) r = mload__pk_collect(k, MLOAD__PK_TUPLE, from); break;
        case 'l': if ((r = mload__pk_pop_mark(k, &from)) == MLOAD_OK) r = mload__pk_collect(k, MLOAD__PK_LIST, from); break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t n = op - 0x84u;
            if (k->sp < n || (k->nmarks && k->marks[k->nmarks - 1] > k->sp - n)) return mload__pk_bad(k, "TUPLEn with too few values");
            r = mload__pk_collect(k, MLOAD__PK_TUPLE, k->sp - n);
            break;
        }
        case ']': r = mload__pk_make(k, MLOAD__PK_LIST, 0, NULL, 0); break;
        case '}': r = mload__pk_make(k, MLOAD__PK_DICT, 0, NULL, 0); break;
        case 'a': case 'e': { /* APPEND, APPENDS */
            size_t to;
            if ((r = mload__pk_items(k, op == 'a', 1, &from)) != MLOAD_OK) break;
            if (k->obj[k->stack[from - 1]].kind != MLOAD__PK_LIST) return mload__pk_bad(k, "APPEND to something other than a list");
            for (to = from; to < k->sp && r == MLOAD_OK; ++to) r = mload__pk_add(k, k->stack[from - 1], UINT32_MAX, k->stack[to]);
            k->sp = from;
            break;
        }
        case 'd': case 's': case 'u': { /* DICT, SETITEM, SETITEMS */
            size_t to;
            uint32_t d;
            if (op == 'd') {
                if ((r = mload__pk_pop_mark(k, &from)) != MLOAD_OK) break;
                if ((r = mload__pk_new(k, MLOAD__PK_DICT, &d)) != MLOAD_OK) break;
            } else {
                if ((r = mload__pk_items(k, op == 's', 2, &from)) != MLOAD_OK) break;
                d = k->stack[from - 1];
                if (k->obj[d].kind != MLOAD__PK_DICT) return mload__pk_bad(k, "SETITEM on something other than a dict");
            }
            if ((k->sp - from) % 2u) return mload__pk_bad(k, "SETITEMS with an odd number of values");
            for (to = from; to < k->sp && r == MLOAD_OK; to += 2) r = mload__pk_add(k, d, k->stack[to], k->stack[to + 1]);
            k->sp = from;
            if (r == MLOAD_OK && op == 'd') r = mload__pk_push(k, d);
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const unsigned char *m = k->p, *e1 = MLOAD__CAST(const unsigned char *, memchr(m, '\n', MLOAD__CAST(size_t, k->end - m))), *e2;
            if (!e1 || !(e2 = MLOAD__CAST(const unsigned char *, memchr(e1 + 1, '\n', MLOAD__CAST(size_t, k->end - e1 - 1)))))
                return mload__pk_bad(k, "GLOBAL without two lines");
            k->p = e2 + 1;
            r = mload__pk_global(k, op, MLOAD__PCAST(const char *, m), MLOAD__CAST(size_t, e1 - m), MLOAD__PCAST(const char *, e1 + 1),
                                 MLOAD__CAST(size_t, e2 - e1 - 1));
            break;
        }
        case 0x93: { /* STACK_GLOBAL: module and name from the stack */
            mload__pv *m, *n;
            if (k->sp < 2 || (k->nmarks && k->marks[k->nmarks - 1] > k->sp - 2)) return mload__pk_bad(k, "STACK_GLOBAL needs two strings");
            m = &k->obj[k->stack[k->sp - 2]];
            n = &k->obj[k->stack[k->sp - 1]];
            if (m->kind != MLOAD__PK_STR || n->kind != MLOAD__PK_STR) return mload__pk_bad(k, "STACK_GLOBAL needs two strings");
            k->sp -= 2;
            r = mload__pk_global(k, op, m->s, m->len, n->s, n->len);
            break;
        }
        case 'R': r = mload__pk_reduce(k); break;
        case 'Q': r = mload__pk_persid(k); break;
        case 'b': { /* BUILD: only the attributes of an OrderedDict (a state dict's _metadata), dropped */
            mload__pv *st, *target;
            if (k->sp < 2 || (k->nmarks && k->marks[k->nmarks - 1] > k->sp - 2)) return mload__pk_bad(k, "BUILD needs an object and a state");
            st = &k->obj[k->stack[k->sp - 1]];
            target = &k->obj[k->stack[k->sp - 2]];
            if (target->kind != MLOAD__PK_DICT || st->kind != MLOAD__PK_DICT)
                return mload__pk_refuse(k, op, target->kind != MLOAD__PK_DICT ? "sets the state of something other than a dict"
                                                                                : "with a state other than a dict");
            k->sp--;
            break;
        }
        case 'q': case 'r': /* BINPUT, LONG_BINPUT */
            if (!(a = mload__pk_take(k, op == 'q' ? 1u : 4u))) return mload__pk_bad(k, "truncated");
            r = mload__pk_memo_put(k, mload__le(a, op == 'q' ? 1u : 4u));
            break;
        case 0x94: r = mload__pk_memo_put(k, k->memo_used); break; /* MEMOIZE: index = entries so far */
        case 'h': case 'j': /* BINGET, LONG_BINGET */
            if (!(a = mload__pk_take(k, op == 'h' ? 1u : 4u))) return mload__pk_bad(k, "truncated");
            r = mload__pk_memo_get(k, mload__le(a, op == 'h' ? 1u : 4u));
            break;
        default:
            if (strcmp(mload__pk_opname(op), "unknown") == 0) return mload__pk_bad(k, "unknown opcode");
            return mload__pk_refuse(k, op, "is not allowed");
        }
    }
    return r;
}

/* ---- from the unpickled value to the tensor table ---- */
typedef struct mload__ptrec {
    size_t name_off, name_len, seq, dims_at, strides_at;
    uint32_t obj, rank;
    uint64_t offset, numel, nbytes;
    mload_dtype dtype;
} mload__ptrec;

typedef struct mload__ptw {
    mload__pk *k;
    char *path; size_t plen, pcap;
    char *names; size_t nn, ncap;
    mload__ptrec *recs; size_t nrec, rcap;
} mload__ptw;

static int mload__ptw_put(const mload_allocator *a, char **buf, size_t *n, size_t *cap, const char *s, size_t len) {
    if (*n + len + 1 < *n || !mload__reserve(a, MLOAD__PCAST(void **, buf), cap, *n + len + 1, 1)) return 0;
    if (len) memcpy(*buf + *n, s, len);
    *n += len;
    (*buf)[*n] = '\0';
    return 1;
}

/* Tensors of dict d (and of the dicts in it), named by their keys joined
   with dots. Values that are neither are ignored, as are non-string keys. */
static mload_result mload__ptw_dict(mload__ptw *w, uint32_t d, unsigned depth) {
    mload__pk *k = w->k;
    uint32_t e;
    if (depth > MLOAD__PK_MAX_DEPTH)
        return mload__fail(k->err, MLOAD_ERR_INVALID_PICKLE, MLOAD_NO_OFFSET, NULL, 0, "pickle: dicts nested deeper than 64");
    if (k->obj[d].seen)
        return mload__fail(k->err, MLOAD_ERR_INVALID_PICKLE, MLOAD_NO_OFFSET, w->path, w->plen,
                           "pickle: the dict at '%S' appears twice (shared or cyclic)", w->path, w->plen);
    k->obj[d].seen = 1;
    for (e = k->obj[d].head; e != UINT32_MAX; e = k->edge[e].next) {
        const mload__pv *key = &k->obj[k->edge[e].k], *val = &k->obj[k->edge[e].v];
        size_t keep = w->plen;
        mload_result r = MLOAD_OK;
        if (key->kind != MLOAD__PK_STR || (val->kind != MLOAD__PK_TENSOR && val->kind != MLOAD__PK_DICT)) continue;
        if (mload__utf8_check(MLOAD__PCAST(const unsigned char *, key->s), key->len) != key->len)
            return mload__fail(k->err, MLOAD_ERR_INVALID_PICKLE, MLOAD_NO_OFFSET, NULL, 0, "pickle: a key is not valid UTF-8");
        if ((w->plen && !mload__ptw_put(k->a, &w->path, &w->plen, &w->pcap, ".", 1)) ||
            !mload__ptw_put(k->a, &w->path, &w->plen, &w->pcap, key->s, key->len))
            return mload__oom(k->err);
        if (val->kind == MLOAD__PK_DICT) {
            r = mload__ptw_dict(w, k->edge[e].v, depth + 1);
        } else if (!mload__reserve(k->a, MLOAD__PCAST(void **, &w->recs), &w->rcap, w->nrec + 1, sizeof(mload__ptrec))) {
            r = mload__oom(k->err);
        } else {
            mload__ptrec *rec = &w->recs[w->nrec];
            memset(rec, 0, sizeof *rec);
            rec->name_off = w->nn;
            rec->name_len = w->plen;
            rec->obj = k->edge[e].v;
            rec->seq = w->nrec++;
            if (!mload__ptw_put(k->a, &w->names, &w->nn, &w->ncap, w->path, w->plen)) r = mload__oom(k->err);
            else w->nn++; /* keep the NUL */
        }
        if (r != MLOAD_OK) return r;
        w->plen = keep;
    }
    return MLOAD_OK;
}

/* the wrappers the original loader unwraps: a dict with no tensor of its
   own and one of these keys holding a dict */
static uint32_t mload__pt_unwrap(const mload__pk *k, uint32_t d) {
    static const char *const keys[] = {"state_dict", "model_state", "module", "model"};
    unsigned depth;
    for (depth = 0; depth < 8; ++depth) {
        uint32_t e, found = UINT32_MAX;
        size_t w;
        for (e = k->obj[d].head; e != UINT32_MAX; e = k->edge[e].next)
            if (k->obj[k->edge[e].v].kind == MLOAD__PK_TENSOR) return d;
        for (w = 0; w < 4 && found == UINT32_MAX; ++w)
            for (e = k->obj[d].head; e != UINT32_MAX; e = k->edge[e].next) {
                const mload__pv *key = &k->obj[k->edge[e].k];
                if (key->kind == MLOAD__PK_STR && key->len == strlen(keys[w]) && memcmp(key->s, keys[w], key->len) == 0 &&
                    k->obj[k->edge[e].v].kind == MLOAD__PK_DICT) {
                    found = k->edge[e].v;
                    break;
                }
            }
        if (found == UINT32_MAX) return d;
        d = found;
    }
    return d;
}

static int mload__ptrec_cmp(const void *x, const void *y) {
    const mload__ptrec *a = MLOAD__CAST(const mload__ptrec *, x), *b = MLOAD__CAST(const mload__ptrec *, y);
    if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
    return a->seq < b->seq ? -1 : (a->seq > b->seq ? 1 : 0);
}

/* Where storage s lies: its entry PREFIX + "data/" + key, resolved once. */
static mload_result mload__pt_storage(mload_file *f, mload__pk *k, mload__zip *z, const char *prefix, size_t pl,
                                      mload__pv *s, mload_error *err) {
    char stack[256], *nm = stack; /* the usual names fit: no allocation per storage */
    const mload__zent *e;
    uint64_t bytes, es = s->dtype != MLOAD_DTYPE_INVALID ? mload_dtype_bits(MLOAD__CAST(mload_dtype, s->dtype)) / 8u : 1u;
    size_t nl = pl + 5 + s->len;
    mload_result r;
    if (s->ref != UINT32_MAX) return MLOAD_OK;
    if (nl > sizeof stack && !(nm = MLOAD__CAST(char *, mload__malloc(k->a, nl, 1)))) return mload__oom(err);
    memcpy(nm, prefix, pl);
    memcpy(nm + pl, "data/", 5);
    memcpy(nm + pl + 5, s->s, s->len);
    e = mload__zip_find(z, nm, nl);
    if (nm != stack) mload__free(k->a, nm, nl, 1);
    if (!e)
        return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, MLOAD_NO_OFFSET, s->s, s->len,
                           "storage '%S' has no entry %Sdata/%S in the archive", s->s, s->len, prefix, pl, s->s, s->len);
    if ((r = mload__zip_data(f, z, e, &s->u, err)) != MLOAD_OK) return r;
    if (!mload__mul_u64(MLOAD__CAST(uint64_t, s->i), es, &bytes) || bytes != e->usize)
        return mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, s->u, s->s, s->len,
                           "storage '%S' of %U elements does not fill its %U-byte entry", s->s, s->len, MLOAD__CAST(uint64_t, s->i), e->usize);
    s->ref = MLOAD__CAST(uint32_t, e - z->ents);
    s->i = MLOAD__CAST(int64_t, bytes); /* from now on: its size in bytes */
    return MLOAD_OK;
}

/* One tensor checked against its storage: offset, shape, strides. */
static mload_result mload__pt_tensor(mload_file *f, mload__pk *k, mload__zip *z, const char *prefix, size_t pl,
                                     mload__ptrec *rec, const char *name, uint64_t **pool, size_t *np, size_t *pcap, mload_error *err) {
    const mload__pv *t = &k->obj[rec->obj], *sh = &k->obj[t->head], *st = &k->obj[t->tail];
    mload__pv *s = &k->obj[t->ref];
    uint64_t es, avail, numel = 1, last = MLOAD__CAST(uint64_t, t->i), expect = 1, off;
    uint32_t d, e1, e2;
    int contiguous = 1;
    mload_result r;
    size_t nl = rec->name_len;
    if (!mload__dtype_valid(MLOAD__CAST(mload_dtype, t->dtype)) || sh->kind != MLOAD__PK_TUPLE || st->kind != MLOAD__PK_TUPLE ||
        sh->n != st->n || sh->n > 64 || t->i < 0)
        return mload__fail(err, MLOAD_ERR_INVALID_PICKLE, MLOAD_NO_OFFSET, name, nl,
                           "tensor '%S': bad dtype, shape, strides or storage offset", name, nl);
    if ((r = mload__pt_storage(f, k, z, prefix, pl, s, err)) != MLOAD_OK) return r;
    es = mload_dtype_bits(MLOAD__CAST(mload_dtype, t->dtype)) / 8u;
    if (s->dtype != MLOAD_DTYPE_INVALID && s->dtype != t->dtype)
        return mload__fail(err, MLOAD_ERR_INVALID_PICKLE, MLOAD_NO_OFFSET, name, nl, "tensor '%S': its dtype is not its storage's", name, nl);
    avail = MLOAD__CAST(uint64_t, s->i) / es;
    rec->dtype = MLOAD__CAST(mload_dtype, t->dtype);
    rec->rank = sh->n;
    rec->dims_at = *np;
    rec->strides_at = SIZE_MAX;
    if (!mload__reserve(k->a, MLOAD__PCAST(void **, pool), pcap, *np + 2u * sh->n + 1, sizeof(uint64_t))) return mload__oom(err);
    for (d = 0, e1 = sh->head, e2 = st->head; d < sh->n; ++d, e1 = k->edge[e1].next, e2 = k->edge[e2].next) {
        const mload__pv *a = &k->obj[k->edge[e1].v], *b = &k->obj[k->edge[e2].v];
        if (a->kind != MLOAD__PK_INT || b->kind != MLOAD__PK_INT || a->i < 0 || b->i < 0)
            return mload__fail(err, MLOAD_ERR_INVALID_PICKLE, MLOAD_NO_OFFSET, name, nl, "tensor '%S': a dim or stride is not a size", name, nl);
        (*pool)[*np + d] = MLOAD__CAST(uint64_t, a->i);
        (*pool)[*np + sh->n + d] = MLOAD__CAST(uint64_t, b->i);
        if (!mload__mul_u64(numel, MLOAD__CAST(uint64_t, a->i), &numel))
            return mload__fail(err, MLOAD_ERR_VALIDATION_OVERFLOW, MLOAD_NO_OFFSET, name, nl, "tensor '%S': element count overflows", name, nl);
    }
    for (d = sh->n; d-- > 0;) { /* the last element's place, and whether the layout is row-major */
        uint64_t dim = (*pool)[*np + d], str = (*pool)[*np + sh->n + d], step;
        if (numel && (!mload__mul_u64(dim - 1u, str, &step) || !mload__add_u64(last, step, &last)))
            return mload__fail(err, MLOAD_ERR_VALIDATION_OVERFLOW, MLOAD_NO_OFFSET, name, nl, "tensor '%S': strides overflow", name, nl);
        if (dim != 1 && str != expect) contiguous = 0;
        expect *= dim; /* no overflow: bounded by numel */
    }
    if (numel ? last >= avail : MLOAD__CAST(uint64_t, t->i) > avail)
        return mload__fail(err, MLOAD_ERR_INVALID_OFFSET, MLOAD_NO_OFFSET, name, nl,
                           "tensor '%S' reaches element %U of a storage of %U", name, nl, last, avail);
    if (!mload__mul_u64(numel, es, &rec->nbytes))
        return mload__fail(err, MLOAD_ERR_VALIDATION_OVERFLOW, MLOAD_NO_OFFSET, name, nl, "tensor '%S': byte count overflows", name, nl);
    off = MLOAD__CAST(uint64_t, t->i) * es; /* < storage bytes */
    rec->offset = s->u + off;
    rec->numel = numel;
    *np += sh->n;
    if (!contiguous && numel) { /* keep the strides, after the dims */
        rec->strides_at = *np;
        *np += sh->n;
    }
    return MLOAD_OK;
}

/* The archive's folder: the one PREFIX with PREFIX "data.pkl" ("" or one
   folder name and a slash). */
static const mload__zent *mload__pt_pickle_entry(const mload__zip *z, size_t *pl, mload_error *err) {
    const mload__zent *found = NULL;
    size_t i;
    for (i = 0; i < z->n; ++i) {
        const mload__zent *e = &z->ents[i];
        const char *slash;
        if (e->name_len < 8 || memcmp(e->name + e->name_len - 8, "data.pkl", 8) != 0) continue;
        slash = MLOAD__CAST(const char *, memchr(e->name, '/', e->name_len - 8));
        if (e->name_len > 8 && (!slash || slash != e->name + e->name_len - 9)) continue;
        if (found) {
            mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, MLOAD_NO_OFFSET, NULL, 0, "zip archive: more than one data.pkl");
            return NULL;
        }
        found = e;
    }
    if (!found) mload__fail(err, MLOAD_ERR_INVALID_ARCHIVE, MLOAD_NO_OFFSET, NULL, 0, "a zip archive without data.pkl: not a PyTorch checkpoint");
    else *pl = found->name_len - 8;
    return found;
}

/* Fills f's table from a torch.save archive. */
static mload_result mload__torch_open(mload_file *f, mload_error *err) {
    const mload_allocator *a = &f->alloc;
    mload__zip z;
    mload__pk k;
    mload__ptw w;
    const mload__zent *pe, *bo;
    unsigned char *pkl = NULL, *order = NULL;
    uint64_t at = 0, bo_at = 0, pkl_size = 0, order_size = 0;
    size_t pl = 0, i, nstrided = 0, dup;
    uint32_t root = 0;
    mload_result r;
    memset(&z, 0, sizeof z);
    memset(&k, 0, sizeof k);
    memset(&w, 0, sizeof w);
    k.a = a;
    k.err = err;
    memset(k.small, 0xFF, sizeof k.small);
    w.k = &k;
    f->format = MLOAD_FORMAT_PYTORCH;
    if ((r = mload__zip_open(f, &z, err)) != MLOAD_OK) goto done;
    if (!(pe = mload__pt_pickle_entry(&z, &pl, err))) { r = err ? err->code : MLOAD_ERR_INVALID_ARCHIVE; goto done; }
    {
        char nm[512];
        if (pl + 9 < sizeof nm) { /* PREFIX "byteorder": "little", when present */
            memcpy(nm, pe->name, pl);
            memcpy(nm + pl, "byteorder", 9);
            if ((bo = mload__zip_find(&z, nm, pl + 9)) != NULL) {
                if ((r = mload__zip_slurp(f, &z, bo, 16, &order, &bo_at, err)) != MLOAD_OK) goto done;
                order_size = bo->usize + 1;
                if (bo->usize != 6 || memcmp(order, "little", 6) != 0) {
                    r = mload__fail(err, MLOAD_ERR_UNSUPPORTED, bo_at, NULL, 0, "a big-endian PyTorch checkpoint (byteorder is not 'little')");
                    goto done;
                }
            }
        }
    }
    if ((r = mload__zip_slurp(f, &z, pe, MLOAD__MAX_HEADER, &pkl, &at, err)) != MLOAD_OK) goto done;
    pkl_size = pe->usize;
    f->header_size = pkl_size;
    k.base = k.p = pkl;
    k.end = pkl + pkl_size;
    k.file_off = at;
    if ((r = mload__pk_run(&k, &root)) != MLOAD_OK) goto done;
    if (k.obj[root].kind != MLOAD__PK_DICT) {
        r = mload__fail(err, MLOAD_ERR_INVALID_PICKLE, at, NULL, 0, "the checkpoint holds a %s, not a dict of tensors",
                        mload__pk_kinds[k.obj[root].kind]);
        goto done;
    }
    if ((r = mload__ptw_dict(&w, mload__pt_unwrap(&k, root), 0)) != MLOAD_OK) goto done;
    /* each tensor checked and placed; then file order */
    for (i = 0; i < w.nrec; ++i) {
        r = mload__pt_tensor(f, &k, &z, pe->name, pl, &w.recs[i], w.names + w.recs[i].name_off, &f->dims, &f->ndims, &f->dims_cap, err);
        if (r != MLOAD_OK) goto done;
        nstrided += w.recs[i].strides_at != SIZE_MAX;
    }
    if (w.nrec) qsort(w.recs, w.nrec, sizeof(mload__ptrec), mload__ptrec_cmp);
    if (!mload__reserve(a, MLOAD__PCAST(void **, &f->tensors), &f->cap, w.nrec + 1, sizeof(mload_tensor)) ||
        (nstrided && !mload__reserve(a, MLOAD__PCAST(void **, &f->stride_of), &f->stride_of_cap, w.nrec + 1, sizeof(size_t)))) {
        r = mload__oom(err);
        goto done;
    }
    f->names = w.names; /* the table's names from now on */
    f->names_cap = w.ncap;
    w.names = NULL;
    for (i = 0; i < w.nrec; ++i) {
        const mload__ptrec *rec = &w.recs[i];
        mload_tensor *t = &f->tensors[i];
        t->name = f->names + rec->name_off;
        t->name_len = rec->name_len;
        t->dtype = rec->dtype;
        t->rank = rec->rank;
        t->shape = rec->rank ? f->dims + rec->dims_at : &f->zero_dim;
        t->numel = rec->numel;
        t->nbytes = rec->nbytes;
        t->offset = rec->offset;
        t->file_index = 0;
        if (f->stride_of) f->stride_of[i] = rec->strides_at;
    }
    f->count = w.nrec;
    if (!mload__index_build(a, &f->index, f->tensors, sizeof(mload_tensor), f->count, NULL, 0, &dup)) {
        r = mload__oom(err);
        goto done;
    }
    if (dup != SIZE_MAX)
        r = mload__fail(err, MLOAD_ERR_DUPLICATE_KEY, MLOAD_NO_OFFSET, f->tensors[dup].name, f->tensors[dup].name_len,
                        "tensor '%S' is given twice", f->tensors[dup].name, f->tensors[dup].name_len);
done:
    mload__free(a, pkl, MLOAD__CAST(size_t, pkl_size) + 1, 1);
    mload__free(a, order, MLOAD__CAST(size_t, order_size), 1);
    mload__free(a, w.path, w.pcap, 1);
    mload__free(a, w.names, w.ncap, 1);
    mload__free(a, w.recs, w.rcap * sizeof(mload__ptrec), sizeof(void *));
    mload__pk_free(&k);
    mload__zip_free(a, &z);
    return r;
}

#endif /* !MODELLOAD_NO_PICKLE */

/* Elements [first, first + count) of a tensor laid out with strides (a
   non-contiguous view of its storage), gathered into dst: the storage span
   those elements touch is read once into a buffer. */
static void mload__unravel(uint64_t i, const uint64_t *shape, uint32_t rank, uint64_t *idx) {
    uint32_t d = rank;
    while (d-- > 0) {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
}
static uint64_t mload__stride_next(uint64_t *idx, const uint64_t *shape, const uint64_t *st, uint32_t rank, uint64_t off) {
    uint32_t d = rank;
    while (d-- > 0) {
        if (++idx[d] < shape[d]) return off + st[d];
        idx[d] = 0;
        off -= (shape[d] - 1u) * st[d];
    }
    return off;
}
static mload_result mload__strided_read(const mload_file *f, const mload_tensor *t, const uint64_t *st, uint64_t first,
                                        uint64_t count, unsigned char *dst, mload_error *err) {
    uint64_t idx[64], off = 0, lo, hi, i, es = mload_dtype_bits(t->dtype) / 8u, span;
    uint32_t d;
    unsigned char *buf;
    mload_result r = MLOAD_OK;
    if (!count) return MLOAD_OK;
    mload__unravel(first, t->shape, t->rank, idx);
    for (d = 0; d < t->rank; ++d) off += idx[d] * st[d];
    for (lo = hi = off, i = 1; i < count; ++i) {
        off = mload__stride_next(idx, t->shape, st, t->rank, off);
        if (off < lo) lo = off;
        if (off > hi) hi = off;
    }
    span = (hi - lo + 1u) * es; /* inside the storage: checked at open */
    if (span > SIZE_MAX) return mload__oom(err);
    buf = MLOAD__CAST(unsigned char *, mload__malloc(&f->alloc, MLOAD__CAST(size_t, span), 64));
    if (!buf) return mload__oom(err);
    if (f->src.read_at(f->src.user, t->offset + lo * es, buf, MLOAD__CAST(size_t, span)) != MLOAD_OK) {
        r = mload__fail(err, MLOAD_ERR_IO, t->offset + lo * es, t->name, t->name_len,
                        "tensor '%s': reading %U bytes failed (short read: the file may have shrunk)", t->name, span);
    } else {
        mload__unravel(first, t->shape, t->rank, idx);
        for (off = 0, d = 0; d < t->rank; ++d) off += idx[d] * st[d];
        for (i = 0; i < count; ++i) {
            memcpy(dst + i * es, buf + (off - lo) * es, MLOAD__CAST(size_t, es));
            off = mload__stride_next(idx, t->shape, st, t->rank, off);
        }
    }
    mload__free(&f->alloc, buf, MLOAD__CAST(size_t, span), 64);
    return r;
}

MODELLOAD_API mload_result mload_file_open(const mload_file_desc *desc, mload_file **out, mload_error *err) {
    mload_file *f;
    mload_result r;
    mload__aux *aux = NULL;
    size_t aux_cap = 0, i, dup;
    const mload_allocator *a;

    if (out) *out = NULL;
    if (!desc || !out) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL desc or out");
    if ((desc->path != NULL) + (desc->data != NULL) + (desc->source != NULL) != 1 || !mload__allocator_ok(&desc->allocator)) {
        if (desc->source) { mload_source s = *desc->source; mload_source_close(&s); }
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                           "give exactly one of path, data or source, and both or neither allocator functions");
    }
    a = &desc->allocator;
    f = MLOAD__CAST(mload_file *, mload__malloc(a, sizeof(mload_file), sizeof(void *)));
    if (!f) {
        if (desc->source) { mload_source s = *desc->source; mload_source_close(&s); }
        return mload__oom(err);
    }
    memset(f, 0, sizeof(*f));
    f->alloc = *a;
    f->index.seed = mload__hash(0x243F6A8885A308D3ull, MLOAD__PCAST(const char *, &f), sizeof(f));
    f->meta_index.seed = f->index.seed;
    if ((r = mload__open_source(desc, f, err)) != MLOAD_OK) goto fail;
    if ((r = mload__read_header(f, err)) != MLOAD_OK) goto fail;
    if (f->format == MLOAD_FORMAT_PYTORCH) {
#if !defined(MODELLOAD_NO_PICKLE)
        if ((r = mload__torch_open(f, err)) != MLOAD_OK) goto fail;
        *out = f;
        return MLOAD_OK;
#else
        r = mload__fail(err, MLOAD_ERR_UNSUPPORTED, 0, NULL, 0, "a zip archive (a PyTorch checkpoint?): this build has MODELLOAD_NO_PICKLE");
        goto fail;
#endif
    }

    /* 4 + 5: UTF-8 and JSON in one pass (strings are checked as they are
       scanned; everything else must be ASCII JSON). The arrays are
       pre-sized from the header length (an entry takes ~50+ bytes), so
       typical files never regrow them. */
    {
        size_t est = MLOAD__CAST(size_t, f->header_size / 64u) + 16u;
        void *p1, *p2, *p3;
        if (est > (MLOAD__CAST(size_t, 1) << 20)) est = MLOAD__CAST(size_t, 1) << 20;
        p1 = mload__grow(a, NULL, &f->cap, est, sizeof(mload_tensor));
        if (p1) f->tensors = MLOAD__CAST(mload_tensor *, p1);
        p2 = mload__grow(a, NULL, &aux_cap, est, sizeof(mload__aux));
        if (p2) aux = MLOAD__CAST(mload__aux *, p2);
        p3 = mload__grow(a, NULL, &f->dims_cap, est * 3u, sizeof(uint64_t));
        if (p3) f->dims = MLOAD__CAST(uint64_t *, p3);
        if (!p1 || !p2 || !p3) { r = mload__oom(err); goto fail; }
    }
    r = mload__parse_header(f, err, &aux, &aux_cap);
    if (r != MLOAD_OK && r != MLOAD_ERR_OUT_OF_MEMORY && r != MLOAD_ERR_INVALID_HEADER) {
        /* the reference checks UTF-8 before JSON: an invalid byte anywhere
           wins over the JSON error (decoded strings are kept valid) */
        size_t bad = mload__utf8_check(MLOAD__PCAST(const unsigned char *, f->header), MLOAD__CAST(size_t, f->header_size));
        if (bad != MLOAD__CAST(size_t, f->header_size))
            r = mload__fail(err, MLOAD_ERR_INVALID_HEADER, 8u + MLOAD__CAST(uint64_t, bad), NULL, 0, "header is not valid UTF-8");
    }
    if (r != MLOAD_OK) goto fail;

    /* shapes: dims were appended in tensor order */
    {
        size_t d = 0;
        for (i = 0; i < f->count; ++i) {
            f->tensors[i].shape = f->tensors[i].rank ? f->dims + d : &f->zero_dim;
            d += f->tensors[i].rank;
        }
    }
    if (!mload__sort_tensors(f, &aux, &aux_cap)) { r = mload__oom(err); goto fail; }
    /* duplicates (stricter than the reference), before the offset checks */
    if (!mload__index_build(a, &f->index, f->tensors, sizeof(mload_tensor), f->count, f->count ? &aux[0].hash : NULL,
                            sizeof(mload__aux), &dup)) {
        r = mload__oom(err);
        goto fail;
    }
    if (dup != SIZE_MAX) {
        const mload_tensor *t = &f->tensors[dup];
        r = mload__fail(err, MLOAD_ERR_DUPLICATE_KEY, aux[dup].keypos, t->name, t->name_len, "tensor '%s' is given twice", t->name);
        goto fail;
    }
    if (!mload__index_build(a, &f->meta_index, f->meta, sizeof(mload_kv), f->meta_count, NULL, 0, &dup)) {
        r = mload__oom(err);
        goto fail;
    }
    if (dup != SIZE_MAX) {
        const mload_kv *kv = &f->meta[dup];
        r = mload__fail(err, MLOAD_ERR_DUPLICATE_KEY, MLOAD__CAST(uint64_t, kv->key - f->header) + 7u, kv->key, kv->key_len,
                        "__metadata__ key '%s' is given twice", kv->key);
        goto fail;
    }
    /* 6 + 7 */
    if ((r = mload__validate(f, aux, err)) != MLOAD_OK) goto fail;
    mload__free(a, aux, aux_cap * sizeof(mload__aux), sizeof(void *));
    *out = f;
    return MLOAD_OK;
fail:
    mload__free(a, aux, aux_cap * sizeof(mload__aux), sizeof(void *));
    mload__file_free(f);
    return r;
}

MODELLOAD_API void mload_file_close(mload_file *f) {
    if (f) mload__file_free(f);
}

/* the lookups of a tensor table (a file's, a map's) */
static const mload_tensor *mload__table_at(const mload_tensor *ts, size_t count, uint64_t i) {
    return i < count ? &ts[i] : NULL;
}
static const mload_tensor *mload__table_find(const mload__index *ix, const mload_tensor *ts, const char *name, size_t len) {
    return MLOAD__CAST(const mload_tensor *, mload__index_find(ix, ts, sizeof(mload_tensor), name, len));
}

MODELLOAD_API uint64_t mload_file_count(const mload_file *f) { return f ? f->count : 0; }
MODELLOAD_API const mload_tensor *mload_file_tensor(const mload_file *f, uint64_t i) { return f ? mload__table_at(f->tensors, f->count, i) : NULL; }
MODELLOAD_API const mload_tensor *mload_file_find_n(const mload_file *f, const char *name, size_t len) { return f ? mload__table_find(&f->index, f->tensors, name, len) : NULL; }
MODELLOAD_API const mload_tensor *mload_file_find(const mload_file *f, const char *name) { return name ? mload_file_find_n(f, name, strlen(name)) : NULL; }

MODELLOAD_API uint64_t mload_file_tensor_index(const mload_file *f, const mload_tensor *t) {
    return MLOAD__CAST(uint64_t, t - f->tensors);
}

MODELLOAD_API uint64_t mload_file_metadata_count(const mload_file *f) { return f ? f->meta_count : 0; }

MODELLOAD_API const mload_kv *mload_file_metadata(const mload_file *f, uint64_t i) {
    return (f && i < f->meta_count) ? &f->meta[i] : NULL;
}

MODELLOAD_API const mload_kv *mload_file_metadata_find(const mload_file *f, const char *key) {
    if (!f || !key) return NULL;
    return MLOAD__CAST(const mload_kv *, mload__index_find(&f->meta_index, f->meta, sizeof(mload_kv), key, strlen(key)));
}

MODELLOAD_API int mload_file_has_metadata(const mload_file *f) { return f ? f->has_meta : 0; }
MODELLOAD_API uint64_t mload_file_header_size(const mload_file *f) { return f ? f->header_size : 0; }
MODELLOAD_API uint64_t mload_file_data_offset(const mload_file *f) { return f && f->format == MLOAD_FORMAT_SAFETENSORS ? 8u + f->header_size : 0; }
MODELLOAD_API mload_format mload_file_format(const mload_file *f) { return f ? f->format : MLOAD_FORMAT_SAFETENSORS; }
MODELLOAD_API uint64_t mload_file_size(const mload_file *f) { return f ? f->file_size : 0; }

static int mload__owns(const mload_file *f, const mload_tensor *t) {
    uintptr_t b = MLOAD__PCAST(uintptr_t, f->tensors), p = MLOAD__PCAST(uintptr_t, t);
    return f->count && p >= b && p < b + f->count * sizeof(mload_tensor) && (p - b) % sizeof(mload_tensor) == 0;
}

MODELLOAD_API const uint64_t *mload_file_strides(const mload_file *f, const mload_tensor *t) {
    size_t i;
    if (!f || !t || !f->stride_of || !mload__owns(f, t)) return NULL;
    i = f->stride_of[t - f->tensors];
    return i == SIZE_MAX ? NULL : f->dims + i;
}

MODELLOAD_API mload_result mload_file_read_bytes(const mload_file *f, const mload_tensor *t, uint64_t byte_begin,
                                                 uint64_t size, void *dst, mload_error *err) {
    mload_result r;
    if (!f || !t || (!dst && size) || !mload__owns(f, t))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL argument or tensor of another file");
    if (byte_begin > t->nbytes || size > t->nbytes - byte_begin)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s': byte range [%U, +%U) is outside its %U bytes", t->name, byte_begin, size, t->nbytes);
    if (size > SIZE_MAX)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len, "range too large for this platform");
    if (size == 0) return MLOAD_OK;
    if (mload_file_strides(f, t)) { /* a non-contiguous view: whole elements, gathered */
        uint64_t es = mload_dtype_bits(t->dtype) / 8u;
        if (byte_begin % es || size % es)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len,
                               "tensor '%s' is a strided view: ranges must hold whole elements", t->name);
        return mload__strided_read(f, t, mload_file_strides(f, t), byte_begin / es, size / es, MLOAD__CAST(unsigned char *, dst), err);
    }
    r = f->src.read_at(f->src.user, t->offset + byte_begin, dst, MLOAD__CAST(size_t, size));
    if (r != MLOAD_OK)
        return mload__fail(err, r == MLOAD_ERR_IO ? MLOAD_ERR_IO : r, t->offset + byte_begin, t->name, t->name_len,
                           "tensor '%s': reading %U bytes failed (short read: the file may have shrunk)", t->name, size);
    return MLOAD_OK;
}

MODELLOAD_API mload_result mload_file_read(const mload_file *f, const mload_tensor *t, void *dst, uint64_t dst_size,
                                           mload_error *err) {
    if (t && dst_size < t->nbytes)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s' needs %U bytes, buffer has %U", t->name, t->nbytes, dst_size);
    return mload_file_read_bytes(f, t, 0, t ? t->nbytes : 0, dst, err);
}

/* ==========================================================================
   5. RECIPES (internal)                                          >>recipes
   what a tensor of a map is: pieces over stored tensors, or a transpose; how recipes are read
   ========================================================================== */

/* A tensor of a map's name space is a recipe: a list of pieces (element
   ranges of stored tensors, or zeros) read one after another, or the 2-D
   transpose of another recipe; read as `dtype`. A stored tensor is the
   one-piece recipe over itself; the converter only builds recipes. */
#define MLOAD__ZERO_PIECE UINT32_MAX
#define MLOAD__MAX_PIECES (MLOAD__CAST(size_t, 1) << 20) /* pieces of one converted tensor */

/* elements [first, first + count) of stored tensor `base` (or zeros) */
typedef struct mload__piece { uint32_t base; uint64_t first, count; } mload__piece;

typedef struct mload__recipe {
    uint32_t transpose;   /* 0: pieces; 1: 2-D transpose of recipe `child` */
    mload_dtype dtype;    /* what it reads as */
    mload_dtype src_dtype;/* dtype of its pieces' stored tensors, or of the child */
    uint32_t rank;
    size_t dims;          /* into the dims pool */
    uint64_t numel;
    size_t piece0, npieces;
    size_t child;
    size_t term0, nterms; /* nterms > 0: recipe `child` plus these LoRA terms (a merge) */
} mload__recipe;

/* one LoRA pair merged into a recipe: scale * (B A), A and B read as F32 from their adapter map */
typedef struct mload__lterm {
    const mload_map *am;
    const mload_tensor *a, *b;
    uint64_t rank;
    float scale;
} mload__lterm;

/* The recipes of a name space and the pools they point into (names: those
   of converted tensors). */
typedef struct mload__recipes {
    mload__recipe *vts; size_t nvt, vt_cap;
    mload__piece *pieces; size_t np, p_cap;
    uint64_t *dims; size_t nd, d_cap;
    char *names; size_t nn, n_cap;
    mload__lterm *terms; size_t nt, t_cap;
} mload__recipes;

static void mload__recipes_free(const mload_allocator *a, mload__recipes *rc) {
    mload__free(a, rc->vts, rc->vt_cap * sizeof(mload__recipe), sizeof(void *));
    mload__free(a, rc->pieces, rc->p_cap * sizeof(mload__piece), sizeof(void *));
    mload__free(a, rc->dims, rc->d_cap * sizeof(uint64_t), sizeof(void *));
    mload__free(a, rc->names, rc->n_cap, 1);
    mload__free(a, rc->terms, rc->t_cap * sizeof(mload__lterm), sizeof(void *));
    memset(rc, 0, sizeof(*rc));
}

/* appends a recipe: its index, or SIZE_MAX on OOM */
static size_t mload__recipe_add(const mload_allocator *a, mload__recipes *rc, const mload__recipe *v) {
    if (!mload__reserve(a, MLOAD__PCAST(void **, &rc->vts), &rc->vt_cap, rc->nvt + 1, sizeof(mload__recipe))) return SIZE_MAX;
    rc->vts[rc->nvt] = *v;
    return rc->nvt++;
}

static int mload__recipe_dims(const mload_allocator *a, mload__recipes *rc, const uint64_t *d, uint32_t rank, size_t *at) {
    if (!mload__reserve(a, MLOAD__PCAST(void **, &rc->dims), &rc->d_cap, rc->nd + rank + 1, sizeof(uint64_t))) return 0;
    if (rank) memcpy(rc->dims + rc->nd, d, rank * sizeof(uint64_t));
    *at = rc->nd;
    rc->nd += rank;
    return 1;
}

/* recipe i = stored tensor i, whole, as it is */
static int mload__recipes_stored(const mload_allocator *a, mload__recipes *rc, const mload_tensor *stored, size_t n) {
    size_t i;
    if (!mload__reserve(a, MLOAD__PCAST(void **, &rc->pieces), &rc->p_cap, rc->np + n + 1, sizeof(mload__piece))) return 0;
    for (i = 0; i < n; ++i) {
        const mload_tensor *t = &stored[i];
        mload__recipe v;
        memset(&v, 0, sizeof v);
        v.dtype = v.src_dtype = t->dtype;
        v.rank = t->rank;
        v.numel = t->numel;
        if (!mload__recipe_dims(a, rc, t->shape, t->rank, &v.dims)) return 0;
        v.piece0 = rc->np;
        v.npieces = 1;
        rc->pieces[rc->np].base = MLOAD__CAST(uint32_t, i);
        rc->pieces[rc->np].first = 0;
        rc->pieces[rc->np].count = t->numel;
        rc->np++;
        if (mload__recipe_add(a, rc, &v) == SIZE_MAX) return 0;
    }
    return 1;
}

/* What reading recipes needs: the recipes, the stored tensors their pieces
   name, the files those live in, scratch memory and where errors go. */
typedef struct mload__reader {
    const mload__recipes *rc;
    const mload_tensor *stored;
    mload_file *const *files;
    const mload_allocator *alloc;
    uint32_t f8;
    int views; /* casts read from source views (MLOAD_CAST_READ_VIEW) */
    const uint64_t *const *strides; /* per stored tensor: strides of a non-contiguous view, or NULL; NULL if none has */
    unsigned char *scratch;
    size_t scratch_size;
    mload_error *err;
} mload__reader;

/* raw bytes of a stored tensor (ctx: mload__pread_ctx), offsets within the tensor */
typedef struct mload__pread_ctx { const mload_file *f; const mload_tensor *t; mload_error *err; } mload__pread_ctx;

static mload_result mload__stored_pread(const void *ctx, uint64_t byte_off, void *dst, uint64_t size) {
    const mload__pread_ctx *c = MLOAD__CAST(const mload__pread_ctx *, ctx);
    const mload_tensor *t = c->t;
    unsigned char *d = MLOAD__CAST(unsigned char *, dst);
    while (size) {
        size_t n = size > (MLOAD__CAST(uint64_t, 1) << 30) ? MLOAD__CAST(size_t, 1) << 30 : MLOAD__CAST(size_t, size);
        if (c->f->src.read_at(c->f->src.user, t->offset + byte_off, d, n) != MLOAD_OK) {
            mload__fail(c->err, MLOAD_ERR_IO, t->offset + byte_off, t->name, t->name_len,
                        "tensor '%s': reading %U bytes failed (short read: the file may have shrunk)", t->name, MLOAD__CAST(uint64_t, n));
            if (c->err) c->err->file_index = t->file_index;
            return MLOAD_ERR_IO;
        }
        d += n;
        byte_off += n;
        size -= n;
    }
    return MLOAD_OK;
}

/* a non-contiguous view (PyTorch): gathered, then cast */
static mload_result mload__read_strided(const mload__reader *rd, const mload_tensor *t, const uint64_t *st, uint64_t first,
                                        uint64_t count, mload_dtype as, unsigned char *dst) {
    const mload_file *f = rd->files[t->file_index];
    size_t bytes = MLOAD__CAST(size_t, count * (mload_dtype_bits(t->dtype) / 8u));
    unsigned char *tmp;
    mload_result r;
    if (as == t->dtype) r = mload__strided_read(f, t, st, first, count, dst, rd->err);
    else if (!(tmp = MLOAD__CAST(unsigned char *, mload__malloc(rd->alloc, bytes ? bytes : 1, 64)))) r = mload__oom(rd->err);
    else {
        if ((r = mload__strided_read(f, t, st, first, count, tmp, rd->err)) == MLOAD_OK) mload__cast(dst, as, tmp, t->dtype, count, rd->f8);
        mload__free(rd->alloc, tmp, bytes ? bytes : 1, 64);
    }
    if (r != MLOAD_OK && rd->err) rd->err->file_index = t->file_index;
    return r;
}

/* elements [first, first + count) of stored tensor t into dst as `as` */
static mload_result mload__read_stored(const mload__reader *rd, const mload_tensor *t, uint64_t first, uint64_t count,
                                       mload_dtype as, unsigned char *dst, unsigned char *scratch, size_t scratch_size) {
    mload__pread_ctx c;
    const mload_source *src = &rd->files[t->file_index]->src;
    if (rd->strides && rd->strides[t - rd->stored]) return mload__read_strided(rd, t, rd->strides[t - rd->stored], first, count, as, dst);
    if (rd->views && as != t->dtype && src->view) { /* cast straight from the stored bytes */
        uint64_t eb = mload_dtype_bits(t->dtype) / 8u;
        mload_view v;
        if (src->view(src->user, t->offset + first * eb, count * eb, &v) == MLOAD_OK) {
            mload__cast(dst, as, MLOAD__CAST(const unsigned char *, v.data), t->dtype, count, rd->f8);
            if (v.release) v.release(&v);
            return MLOAD_OK;
        } /* refused: read a copy */
    }
    c.f = rd->files[t->file_index];
    c.t = t;
    c.err = rd->err;
    return mload__read_cast(mload__stored_pread, &c, first * mload_dtype_bits(t->dtype) / 8u, t->dtype, count, as, dst,
                            scratch, scratch_size, rd->f8);
}

/* a piece read as its recipe's dtype (ctx: mload__piece_ctx), byte offsets
   counted in that dtype: the first step of a two-step cast */
typedef struct mload__piece_ctx {
    const mload__reader *rd;
    const mload_tensor *t;
    mload_dtype as;
    uint64_t first;
    unsigned char *scratch; /* for the stored -> as cast */
    size_t scratch_size;
} mload__piece_ctx;

static mload_result mload__piece_read(const void *ctx, uint64_t off, void *dst, uint64_t size) {
    const mload__piece_ctx *c = MLOAD__CAST(const mload__piece_ctx *, ctx);
    uint64_t eb = mload_dtype_bits(c->as) / 8u;
    return mload__read_stored(c->rd, c->t, c->first + off / eb, size / eb, c->as, MLOAD__CAST(unsigned char *, dst),
                              c->scratch, c->scratch_size);
}

static void mload__transpose_copy(unsigned char *dst, const unsigned char *src, uint64_t rows, uint64_t cols, size_t es) {
    uint64_t i0, j0, i, j;
    const uint64_t tile = 32;
    for (i0 = 0; i0 < rows; i0 += tile)
        for (j0 = 0; j0 < cols; j0 += tile) {
            uint64_t ie = i0 + tile < rows ? i0 + tile : rows, je = j0 + tile < cols ? j0 + tile : cols;
            for (i = i0; i < ie; ++i)
                for (j = j0; j < je; ++j) memcpy(dst + (j * rows + i) * es, src + (i * cols + j) * es, es);
        }
}

/* elements [first, first + count) of a pieces recipe */
static mload_result mload__read_pieces(const mload__reader *rd, const mload__recipe *v, uint64_t first, uint64_t count,
                                       mload_dtype as, unsigned char *dst) {
    uint64_t ab = mload_dtype_bits(as), pos = 0;
    size_t i;
    mload_result r = MLOAD_OK;
    for (i = 0; i < v->npieces && r == MLOAD_OK; ++i) {
        const mload__piece *p = &rd->rc->pieces[v->piece0 + i];
        uint64_t lo = first > pos ? first : pos, hi = first + count < pos + p->count ? first + count : pos + p->count;
        if (lo < hi) {
            unsigned char *out = dst + (lo - first) * ab / 8u;
            uint64_t n = hi - lo, at = p->first + (lo - pos);
            if (p->base == MLOAD__ZERO_PIECE) {
                memset(out, 0, MLOAD__CAST(size_t, n * ab / 8u));
            } else if (v->dtype == v->src_dtype || as == v->dtype) { /* one cast: stored -> as */
                r = mload__read_stored(rd, &rd->stored[p->base], at, n, as, out, rd->scratch, rd->scratch_size);
            } else { /* two: stored -> the recipe's dtype -> as, each half of scratch */
                mload__piece_ctx c;
                size_t half = rd->scratch_size / 2u;
                c.rd = rd;
                c.t = &rd->stored[p->base];
                c.as = v->dtype;
                c.first = at;
                c.scratch = rd->scratch;
                c.scratch_size = half;
                r = mload__read_cast(mload__piece_read, &c, 0, v->dtype, n, as, out, rd->scratch + half, half, rd->f8);
            }
        }
        pos += p->count;
    }
    return r;
}

static mload_result mload__read_recipe(const mload__reader *rd, size_t vi, uint64_t first, uint64_t count, mload_dtype as,
                                       unsigned char *dst, const mload_tensor *pub);

/* a transpose: the child whole into a source-sized buffer, then moved (and
   cast one output row at a time) */
static mload_result mload__read_transpose(const mload__reader *rd, const mload__recipe *v, mload_dtype as,
                                          unsigned char *dst, const mload_tensor *pub) {
    const mload__recipe *c = &rd->rc->vts[v->child];
    uint64_t rows = c->rank == 2 ? rd->rc->dims[c->dims] : 0, cols = c->rank == 2 ? rd->rc->dims[c->dims + 1] : 0, j, i;
    uint64_t ab = mload_dtype_bits(as);
    size_t cb = mload_dtype_bits(c->dtype) / 8u, vb = mload_dtype_bits(v->dtype) / 8u, bytes, rowb = 0;
    unsigned char *buf, *row = NULL;
    mload_result r;
    if (v->numel == 0) return MLOAD_OK;
    bytes = MLOAD__CAST(size_t, v->numel * cb);
    buf = MLOAD__CAST(unsigned char *, mload__malloc(rd->alloc, bytes, 64)); /* the documented source-sized scratch */
    if (!buf) return mload__oom(rd->err);
    r = mload__read_recipe(rd, v->child, 0, c->numel, c->dtype, buf, pub);
    if (r == MLOAD_OK && as == v->dtype && v->dtype == c->dtype) {
        mload__transpose_copy(dst, buf, rows, cols, cb);
    } else if (r == MLOAD_OK) {
        rowb = MLOAD__CAST(size_t, rows) * (cb + vb);
        row = MLOAD__CAST(unsigned char *, mload__malloc(rd->alloc, rowb ? rowb : 1, 64)); /* + one output row */
        if (!row) r = mload__oom(rd->err);
        for (j = 0; j < cols && r == MLOAD_OK; ++j) {
            unsigned char *o = dst + j * rows * ab / 8u;
            for (i = 0; i < rows; ++i) memcpy(row + i * cb, buf + (i * cols + j) * cb, cb);
            if (v->dtype == c->dtype || as == v->dtype) {
                mload__cast(o, as, row, c->dtype, rows, rd->f8);
            } else {
                mload__cast(row + rows * cb, v->dtype, row, c->dtype, rows, rd->f8);
                mload__cast(o, as, row + rows * cb, v->dtype, rows, rd->f8);
            }
        }
        mload__free(rd->alloc, row, rowb ? rowb : 1, 64);
    }
    mload__free(rd->alloc, buf, bytes, 64);
    return r;
}

/* w (nrows x rest) += sb (nrows x rank, the scaled B rows) x A (rank x
   rest), columns [j_begin, rest): each element takes its terms in k order
   as a multiply then an add (no FMA), so every kernel and every tiling
   gives the same bits. The C loops tile columns by 1024 so that A's tile
   row stays in L1 while it is added to every row; the AVX2 kernel keeps a
   4 x 16 block of w in registers across all k. */
/* no contraction of the multiply and the add into an FMA: GCC fuses across
   statements under its default -ffp-contract=fast, so it is told per
   function; clang fuses within one expression only, so the two are
   separate statements */
#if defined(__GNUC__) && !defined(__clang__)
#define MLOAD__NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define MLOAD__NO_CONTRACT
#endif
MLOAD__VECTORIZE MLOAD__NO_CONTRACT static void mload__merge_rows(float *w, uint64_t nrows, uint64_t j_begin, uint64_t rest, const float *A,
                                               const float *sb, uint64_t rank) {
    uint64_t j0, k, i, j;
    for (j0 = j_begin; j0 < rest; j0 += 1024) {
        uint64_t jn = rest - j0 < 1024 ? rest - j0 : 1024;
        for (k = 0; k < rank; ++k) {
            const float *ar = A + k * rest + j0;
            for (i = 0; i < nrows; ++i) {
                float sk = sb[i * rank + k], *wr = w + i * rest + j0;
                for (j = 0; j < jn; ++j) {
                    float p = sk * ar[j];
                    wr[j] += p;
                }
            }
        }
    }
}

#if MLOAD__X86_SIMD
__attribute__((target("avx2"))) MLOAD__NO_CONTRACT static void mload__merge_avx2(float *w, uint64_t nrows, uint64_t rest, const float *A, const float *sb, uint64_t rank) {
    uint64_t i, j, k, r, jend = rest / 16u * 16u;
    for (i = 0; i + 4 <= nrows; i += 4) {
        for (j = 0; j < jend; j += 16) {
            __m256 c[8];
            for (r = 0; r < 4; ++r) {
                c[2 * r] = _mm256_loadu_ps(w + (i + r) * rest + j);
                c[2 * r + 1] = _mm256_loadu_ps(w + (i + r) * rest + j + 8);
            }
            for (k = 0; k < rank; ++k) {
                __m256 a0 = _mm256_loadu_ps(A + k * rest + j), a1 = _mm256_loadu_ps(A + k * rest + j + 8);
                for (r = 0; r < 4; ++r) {
                    __m256 sk = _mm256_set1_ps(sb[(i + r) * rank + k]), p0 = _mm256_mul_ps(sk, a0), p1 = _mm256_mul_ps(sk, a1);
                    c[2 * r] = _mm256_add_ps(c[2 * r], p0); /* target avx2 without fma: never fused */
                    c[2 * r + 1] = _mm256_add_ps(c[2 * r + 1], p1);
                }
            }
            for (r = 0; r < 4; ++r) {
                _mm256_storeu_ps(w + (i + r) * rest + j, c[2 * r]);
                _mm256_storeu_ps(w + (i + r) * rest + j + 8, c[2 * r + 1]);
            }
        }
        if (jend < rest) mload__merge_rows(w + i * rest, 4, jend, rest, A, sb + i * rank, rank);
    }
    if (i < nrows) mload__merge_rows(w + i * rest, nrows - i, 0, rest, A, sb + i * rank, rank);
}
#endif

static void mload__merge_block(float *w, uint64_t nrows, uint64_t rest, const float *A, const float *sb, uint64_t rank) {
#if MLOAD__X86_SIMD
    if (mload__simd() >= MLOAD_SIMD_AVX2) {
        mload__merge_avx2(w, nrows, rest, A, sb, rank);
        return;
    }
#endif
    mload__merge_rows(w, nrows, 0, rest, A, sb, rank);
}

/* A LoRA merge: rows of the child read as F32 a block at a time, each
   term's scale * B[rows] A added row by row, the block converted out. A is
   read whole and B's rows once per call. */
#define MLOAD__MERGE_BLOCK (MLOAD__CAST(uint64_t, 1) << 16) /* F32 elements per block */
static mload_result mload__read_merged(const mload__reader *rd, const mload__recipe *v, uint64_t first, uint64_t count,
                                       mload_dtype as, unsigned char *dst, const mload_tensor *pub) {
    const mload__recipe *c = &rd->rc->vts[v->child];
    const mload__lterm *terms = rd->rc->terms + v->term0;
    uint64_t rows = rd->rc->dims[v->dims], rest = rows ? v->numel / rows : 0, r0, r1, b0, nrb, ab = mload_dtype_bits(as);
    size_t t, wn = 0, whn = 0, *an, *bn;
    float *w = NULL, *whole = NULL, **A, **B;
    mload_result r = MLOAD_OK;
    if (count == 0 || rest == 0) return MLOAD_OK;
    r0 = first / rest;
    r1 = (first + count - 1) / rest + 1;
    nrb = rest >= MLOAD__MERGE_BLOCK || ab < 8 ? 1 : MLOAD__MERGE_BLOCK / rest; /* sub-byte outputs: one block */
    if (ab < 8 || nrb > r1 - r0) nrb = r1 - r0;
    A = MLOAD__CAST(float **, mload__malloc(rd->alloc, 2 * v->nterms * (sizeof(float *) + sizeof(size_t)), sizeof(void *)));
    if (!A) return mload__oom(rd->err);
    memset(A, 0, 2 * v->nterms * (sizeof(float *) + sizeof(size_t)));
    B = A + v->nterms;
    an = MLOAD__PCAST(size_t *, B + v->nterms);
    bn = an + v->nterms;
    for (t = 0; t < v->nterms && r == MLOAD_OK; ++t) { /* A whole, B's rows r0..r1 */
        const mload__lterm *l = &terms[t];
        an[t] = MLOAD__CAST(size_t, l->a->numel) * 4u;
        bn[t] = MLOAD__CAST(size_t, (r1 - r0) * l->rank) * 4u;
        A[t] = MLOAD__CAST(float *, mload__malloc(rd->alloc, an[t] ? an[t] : 1, 64));
        B[t] = MLOAD__CAST(float *, mload__malloc(rd->alloc, bn[t] ? bn[t] : 1, 64));
        if (!A[t] || !B[t]) r = mload__oom(rd->err);
        else if ((r = mload_map_read(l->am, l->a, MLOAD_DTYPE_F32, A[t], an[t], rd->err)) == MLOAD_OK &&
                 (r = mload_map_read_range(l->am, l->b, r0 * l->rank, (r1 - r0) * l->rank, MLOAD_DTYPE_F32, B[t], bn[t], rd->err)) ==
                     MLOAD_OK) {
            size_t q;
            for (q = 0; q < bn[t] / 4u; ++q) B[t][q] *= l->scale; /* scale * B[i][k], as the element-wise order wants */
        }
    }
    wn = MLOAD__CAST(size_t, nrb * rest) * 4u;
    if (r == MLOAD_OK && !(w = MLOAD__CAST(float *, mload__malloc(rd->alloc, wn, 64)))) r = mload__oom(rd->err);
    if (r == MLOAD_OK && c->transpose) { /* a child read whole only */
        whn = MLOAD__CAST(size_t, c->numel) * 4u;
        if (!(whole = MLOAD__CAST(float *, mload__malloc(rd->alloc, whn, 64)))) r = mload__oom(rd->err);
        else r = mload__read_recipe(rd, v->child, 0, c->numel, MLOAD_DTYPE_F32, MLOAD__PCAST(unsigned char *, whole), pub);
    }
    for (b0 = r0; b0 < r1 && r == MLOAD_OK; b0 += nrb) {
        uint64_t b1 = b0 + nrb < r1 ? b0 + nrb : r1, lo, hi;
        if (whole) memcpy(w, whole + b0 * rest, MLOAD__CAST(size_t, (b1 - b0) * rest) * 4u);
        else if ((r = mload__read_recipe(rd, v->child, b0 * rest, (b1 - b0) * rest, MLOAD_DTYPE_F32, MLOAD__PCAST(unsigned char *, w), pub)) != MLOAD_OK)
            break;
        for (t = 0; t < v->nterms; ++t)
            mload__merge_block(w, b1 - b0, rest, A[t], B[t] + (b0 - r0) * terms[t].rank, terms[t].rank);
        lo = first > b0 * rest ? first : b0 * rest;
        hi = first + count < b1 * rest ? first + count : b1 * rest;
        mload__cast(dst + (lo - first) * ab / 8u, as, MLOAD__PCAST(const unsigned char *, w + (lo - b0 * rest)), MLOAD_DTYPE_F32,
                    hi - lo, rd->f8);
    }
    for (t = 0; t < v->nterms; ++t) {
        mload__free(rd->alloc, A[t], an[t] ? an[t] : 1, 64);
        mload__free(rd->alloc, B[t], bn[t] ? bn[t] : 1, 64);
    }
    mload__free(rd->alloc, A, 2 * v->nterms * (sizeof(float *) + sizeof(size_t)), sizeof(void *));
    mload__free(rd->alloc, w, wn, 64);
    mload__free(rd->alloc, whole, whn, 64);
    return r;
}

/* elements [first, first + count) of recipe vi as `as` into dst; pub names
   the tensor in errors */
static mload_result mload__read_recipe(const mload__reader *rd, size_t vi, uint64_t first, uint64_t count, mload_dtype as,
                                       unsigned char *dst, const mload_tensor *pub) {
    const mload__recipe *v = &rd->rc->vts[vi];
    if (v->nterms) return mload__read_merged(rd, v, first, count, as, dst, pub);
    if (!v->transpose) return mload__read_pieces(rd, v, first, count, as, dst);
    if (first != 0 || count != v->numel)
        return mload__fail(rd->err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, pub ? pub->name : NULL, pub ? pub->name_len : 0,
                           "tensor '%s' is a transpose: it can only be read whole", pub ? pub->name : "");
    return mload__read_transpose(rd, v, as, dst, pub);
}

/* ==========================================================================
   6. CONVERTER                                                 >>converter
   rules text; the builder that turns a name space into converted recipes (rename, concat, split, transpose, cast)
   ========================================================================== */

#if !defined(MODELLOAD_NO_CONVERTER)

/* ---- rules text ---- */

struct mload_rules {
    mload_allocator alloc;
    char *text;            /* a copy, tokens NUL-terminated in place */
    size_t text_size;
    mload_rule *rules;
    uint64_t count;
    const char **srcs;     /* concat source lists */
    uint64_t *dims;        /* shapes */
    size_t ntok;
};

typedef struct mload__verb_info { const char *name; mload_rule_verb verb; int min_args, max_args; } mload__verb_info;
static const mload__verb_info mload__verbs[] = {
    {"strip-prefix", MLOAD_RULE_STRIP_PREFIX, 1, 1},   {"add-prefix", MLOAD_RULE_ADD_PREFIX, 1, 1},
    {"replace-prefix", MLOAD_RULE_REPLACE_PREFIX, 2, 2}, {"keep", MLOAD_RULE_KEEP, 1, 1},
    {"drop", MLOAD_RULE_DROP, 1, 1},                   {"keep-name", MLOAD_RULE_KEEP_NAME, 1, 1},
    {"drop-name", MLOAD_RULE_DROP_NAME, 1, 1},         {"drop-index", MLOAD_RULE_DROP_INDEX, 2, 2},
    {"rename", MLOAD_RULE_RENAME, 2, 2},               {"replace", MLOAD_RULE_REPLACE, 2, 2},
    {"replace-suffix", MLOAD_RULE_REPLACE_SUFFIX, 2, 2}, {"alias", MLOAD_RULE_ALIAS, 2, 2},
    {"concat", MLOAD_RULE_CONCAT, 2, 1 << 20},         {"chunk", MLOAD_RULE_CHUNK, 4, 4},
    {"slice", MLOAD_RULE_SLICE, 4, 4},                 {"swap-halves", MLOAD_RULE_SWAP_HALVES, 2, 2},
    {"transpose", MLOAD_RULE_TRANSPOSE, 2, 2},         {"reshape", MLOAD_RULE_RESHAPE, 2, 2},
    {"flatten", MLOAD_RULE_FLATTEN, 1, 1},             {"squeeze", MLOAD_RULE_SQUEEZE, 1, 1},
    {"cast", MLOAD_RULE_CAST, 2, 2},                   {"zeros", MLOAD_RULE_ZEROS, 3, 3},
};

static int mload__parse_uint(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!*s) return 0;
    for (; *s; ++s) {
        unsigned d;
        if (*s < '0' || *s > '9') return 0;
        d = MLOAD__CAST(unsigned, *s - '0');
        if (v > (UINT64_MAX - d) / 10u) return 0;
        v = v * 10u + d;
    }
    *out = v;
    return 1;
}

/* "[d0,d1,...]" into dims; returns the rank or -1 */
static int64_t mload__parse_shape(const char *s, uint64_t *dims, size_t cap) {
    size_t n = 0, k = strlen(s);
    char buf[32];
    const char *p;
    if (k < 2 || s[0] != '[' || s[k - 1] != ']') return -1;
    if (k == 2) return 0;
    p = s + 1;
    for (;;) {
        size_t l = 0;
        while (p[l] && p[l] != ',' && p[l] != ']') ++l;
        if (l == 0 || l >= sizeof buf || n >= cap) return -1;
        memcpy(buf, p, l);
        buf[l] = '\0';
        if (!mload__parse_uint(buf, &dims[n++])) return -1;
        p += l;
        if (*p == ']') break;
        ++p;
    }
    return p == s + k - 1 ? MLOAD__CAST(int64_t, n) : -1;
}

MODELLOAD_API void mload_rules_destroy(mload_rules *r) {
    mload_allocator a;
    if (!r) return;
    a = r->alloc;
    mload__free(&a, r->text, r->text_size + 1, 1);
    mload__free(&a, r->rules, (r->ntok + 1) * sizeof(mload_rule), sizeof(void *));
    mload__free(&a, r->srcs, (r->ntok + 1) * sizeof(char *), sizeof(void *));
    mload__free(&a, r->dims, (r->ntok + 1) * sizeof(uint64_t), sizeof(void *));
    mload__free(&a, r, sizeof(*r), sizeof(void *));
}

MODELLOAD_API const mload_rule *mload_rules_list(const mload_rules *r, uint64_t *count) {
    if (count) *count = r ? r->count : 0;
    return r ? r->rules : NULL;
}

/* a line of rules text that does not parse */
static mload_result mload__line_fail(mload_error *err, uint64_t line_off, uint32_t line, const char *fmt, const char *arg) {
    return mload__fail(err, MLOAD_ERR_INVALID_CONVERTER, line_off, NULL, 0, fmt, MLOAD__CAST(uint64_t, line), arg ? arg : "");
}

/* the arguments of the rule after its verb and names: numbers, dtypes, shapes, sources */
static mload_result mload__rule_args(mload_rules *r, mload_rule *ru, char **tok, size_t ntk, size_t *nsrc, size_t *ndim,
                                     uint64_t line_off, mload_error *err) {
    size_t k;
    int64_t rank;
    const char *shape;
    switch (ru->verb) {
    case MLOAD_RULE_DROP_INDEX:
        ru->b = NULL;
        if (!mload__parse_uint(tok[2], &ru->n1)) return mload__line_fail(err, line_off, ru->line, "line %U: expected a non-negative integer%s", NULL);
        return MLOAD_OK;
    case MLOAD_RULE_CONCAT:
        ru->sources = r->srcs + *nsrc;
        ru->source_count = ntk - 2;
        for (k = 2; k < ntk; ++k) r->srcs[(*nsrc)++] = tok[k];
        ru->b = NULL;
        return MLOAD_OK;
    case MLOAD_RULE_CHUNK:
    case MLOAD_RULE_SLICE:
        if (!mload__parse_uint(tok[2], &ru->n1) || !mload__parse_uint(tok[3], &ru->n2))
            return mload__line_fail(err, line_off, ru->line, "line %U: expected a non-negative integer%s", NULL);
        ru->b = tok[4];
        return MLOAD_OK;
    case MLOAD_RULE_CAST:
    case MLOAD_RULE_ZEROS:
    case MLOAD_RULE_RESHAPE:
        ru->b = NULL;
        if (ru->verb != MLOAD_RULE_RESHAPE && !(ru->dtype = mload_dtype_from_name(tok[2], strlen(tok[2]))))
            return mload__line_fail(err, line_off, ru->line, "line %U: unknown dtype%s", NULL);
        if (ru->verb == MLOAD_RULE_CAST) return MLOAD_OK;
        shape = ru->verb == MLOAD_RULE_ZEROS ? tok[3] : tok[2];
        rank = mload__parse_shape(shape, r->dims + *ndim, r->ntok - *ndim);
        if (rank < 0) return mload__line_fail(err, line_off, ru->line, "line %U: bad shape '%s' (write [d0,d1,...])", shape);
        ru->shape = r->dims + *ndim;
        ru->rank = MLOAD__CAST(uint32_t, rank);
        *ndim += MLOAD__CAST(size_t, rank);
        ru->b = NULL;
        return MLOAD_OK;
    default:
        return MLOAD_OK;
    }
}

/* one line (NUL-terminated in place) into the next rule, unless blank */
static mload_result mload__rules_line(mload_rules *r, char *ln, uint32_t line, uint64_t line_off, size_t *nsrc, size_t *ndim,
                                      mload_error *err) {
    char *tok[64];
    size_t ntk = 0, k;
    const mload__verb_info *vi = NULL;
    mload_rule *ru;
    if (mload__utf8_check(MLOAD__PCAST(const unsigned char *, ln), strlen(ln)) != strlen(ln))
        return mload__line_fail(err, line_off, line, "line %U: not valid UTF-8%s", NULL);
    for (k = 0; ln[k];) { /* tokens; '#' at a token start begins a comment */
        while (ln[k] == ' ' || ln[k] == '\t' || ln[k] == '\r') ln[k++] = '\0';
        if (!ln[k] || ln[k] == '#') break;
        if (ntk == 64) return mload__line_fail(err, line_off, line, "line %U: more than 63 arguments%s", NULL);
        tok[ntk++] = ln + k;
        while (ln[k] && ln[k] != ' ' && ln[k] != '\t' && ln[k] != '\r') ++k;
    }
    if (ln[k] == '#') ln[k] = '\0';
    if (ntk == 0) return MLOAD_OK;
    for (k = 0; k < sizeof mload__verbs / sizeof mload__verbs[0]; ++k)
        if (strcmp(tok[0], mload__verbs[k].name) == 0) vi = &mload__verbs[k];
    if (!vi) return mload__line_fail(err, line_off, line, "line %U: unknown rule '%s'", tok[0]);
    if (MLOAD__CAST(int, ntk) - 1 < vi->min_args || MLOAD__CAST(int, ntk) - 1 > vi->max_args)
        return mload__line_fail(err, line_off, line, "line %U: wrong number of arguments for '%s'", tok[0]);
    ru = &r->rules[r->count];
    memset(ru, 0, sizeof(*ru));
    ru->verb = vi->verb;
    ru->line = line;
    ru->a = tok[1];
    ru->b = ntk > 2 ? tok[2] : NULL;
    {
        mload_result res = mload__rule_args(r, ru, tok, ntk, nsrc, ndim, line_off, err);
        if (res != MLOAD_OK) return res;
    }
    r->count++;
    return MLOAD_OK;
}

MODELLOAD_API mload_result mload_rules_create(const char *text, size_t len, const mload_allocator *a, mload_rules **out,
                                             mload_error *err) {
    mload_rules *r;
    size_t i, ntok = 0, nsrc = 0, ndim = 0, pos = 0;
    uint32_t line = 0;
    mload_allocator none;
    mload_result res = MLOAD_OK;
    memset(&none, 0, sizeof none);
    if (out) *out = NULL;
    if (!a) a = &none;
    if (!out || (!text && len) || !mload__allocator_ok(a))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "rules: NULL argument");
    if (len > MLOAD__MAX_HEADER) return mload__fail(err, MLOAD_ERR_INVALID_CONVERTER, 0, NULL, 0, "rules text too large");
    for (i = 0; i < len; ++i) /* every separator can start a token */
        ntok += (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r' || text[i] == ',') ? 1u : 0u;
    ntok += 2;
    r = MLOAD__CAST(mload_rules *, mload__malloc(a, sizeof(*r), sizeof(void *)));
    if (!r) return mload__oom(err);
    memset(r, 0, sizeof(*r));
    r->alloc = *a;
    r->ntok = ntok;
    r->text_size = len;
    r->text = MLOAD__CAST(char *, mload__malloc(a, len + 1, 1));
    r->rules = MLOAD__CAST(mload_rule *, mload__malloc(a, (ntok + 1) * sizeof(mload_rule), sizeof(void *)));
    r->srcs = MLOAD__CAST(const char **, mload__malloc(a, (ntok + 1) * sizeof(char *), sizeof(void *)));
    r->dims = MLOAD__CAST(uint64_t *, mload__malloc(a, (ntok + 1) * sizeof(uint64_t), sizeof(void *)));
    if (!r->text || !r->rules || !r->srcs || !r->dims) { mload_rules_destroy(r); return mload__oom(err); }
    if (len) memcpy(r->text, text, len);
    r->text[len] = '\0';
    while (pos < len && res == MLOAD_OK) {
        size_t end = pos, start = pos;
        while (end < len && r->text[end] != '\n') ++end;
        r->text[end] = '\0';
        pos = end + 1;
        res = mload__rules_line(r, r->text + start, ++line, start, &nsrc, &ndim, err);
    }
    if (res != MLOAD_OK) {
        mload_rules_destroy(r);
        return res;
    }
    *out = r;
    return MLOAD_OK;
}

/* ---- the converted name space ---- */


typedef struct mload__ent { size_t name, name_len, vt; int consumed, dead; } mload__ent;

typedef struct mload__nref { const char *name; size_t name_len; size_t ent; } mload__nref;

/* The converter builder: the recipes it adds to, and the entries of the
   name space being converted (a name and a recipe each). */
typedef struct mload__cvb {
    const mload_tensor *stored; /* the source name space (name order): recipe i = stored[i] */
    size_t nstored;
    const mload_allocator *a;
    mload_error *err;
    mload__recipes *rc;
    mload__ent *ents; size_t ne, e_cap;
    uint64_t work;              /* names visited so far (bounded by MLOAD__CONVERT_WORK) */
    mload__nref *refs; size_t refs_cap;
    mload__index ix;      /* over refs: live entries by name */
    int ix_valid;
    /* the callback's state */
    size_t cur_src;
    const mload_rule *rule; /* for error messages */
} mload__cvb;

struct mload_emitter { mload__cvb *b; };

/* A rule that cannot apply: the message names the rules text's line when the
   rule came from one (the error has no byte offset: it is not in a file). */
static mload_result mload__cv_fail(mload__cvb *b, const char *target, size_t tl, const char *fmt, const char *x) {
    mload_result r = mload__fail(b->err, MLOAD_ERR_INVALID_CONVERTER, MLOAD_NO_OFFSET, target, tl, fmt, target ? target : "",
                                 x ? x : "");
    if (b->err && b->rule && b->rule->line) { /* "rules line N: " before the message */
        char pre[40], dig[12], *msg = b->err->message;
        size_t pl = 11, nd = 0, ml = strlen(msg), cap = sizeof(b->err->message);
        uint32_t v = b->rule->line;
        memcpy(pre, "rules line ", 11);
        do { dig[nd++] = MLOAD__CAST(char, '0' + v % 10u); v /= 10u; } while (v);
        while (nd) pre[pl++] = dig[--nd];
        pre[pl++] = ':';
        pre[pl++] = ' ';
        if (ml + pl >= cap) ml = cap - pl - 1;
        memmove(msg + pl, msg, ml);
        memcpy(msg, pre, pl);
        msg[pl + ml] = '\0';
    }
    return r;
}

static int mload__cvb_reserve(mload__cvb *b, void **arr, size_t *cap, size_t need, size_t elem) {
    return mload__reserve(b->a, arr, cap, need, elem);
}

static size_t mload__cvb_name(mload__cvb *b, const char *s, size_t n) { /* SIZE_MAX on OOM */
    size_t at = b->rc->nn;
    if (!mload__cvb_reserve(b, MLOAD__PCAST(void **, &b->rc->names), &b->rc->n_cap, b->rc->nn + n + 1, 1)) return SIZE_MAX;
    if (n) memcpy(b->rc->names + at, s, n);
    b->rc->names[at + n] = '\0';
    b->rc->nn += n + 1;
    return at;
}

static size_t mload__cvb_vt(mload__cvb *b, const mload__recipe *v) { return mload__recipe_add(b->a, b->rc, v); }

static int mload__cvb_dims(mload__cvb *b, const uint64_t *d, uint32_t rank, size_t *at) {
    return mload__recipe_dims(b->a, b->rc, d, rank, at);
}

static mload_result mload__cvb_add_ent(mload__cvb *b, const char *name, size_t nl, size_t vt) {
    size_t at;
    if (!mload__cvb_reserve(b, MLOAD__PCAST(void **, &b->ents), &b->e_cap, b->ne + 1, sizeof(mload__ent))) return mload__oom(b->err);
    if ((at = mload__cvb_name(b, name, nl)) == SIZE_MAX) return mload__oom(b->err);
    b->ents[b->ne].name = at;
    b->ents[b->ne].name_len = nl;
    b->ents[b->ne].vt = vt;
    b->ents[b->ne].consumed = 0;
    b->ents[b->ne].dead = 0;
    b->ne++;
    b->ix_valid = 0;
    return MLOAD_OK;
}

/* index of the live entries by name (rebuilt when entries changed) */
/* Rules text is untrusted: every rule visits the name space, so the work is
   rules x names. It is bounded: past MLOAD__CONVERT_WORK name visits the
   converter stops with MLOAD_ERR_INVALID_CONVERTER (no real converter comes
   near it: 100 rules over 100,000 tensors are 10^7 visits). */
#ifndef MLOAD__CONVERT_WORK /* (the tests lower it to reach it quickly) */
#define MLOAD__CONVERT_WORK (MLOAD__CAST(uint64_t, 1) << 25)
#endif

static mload_result mload__cvb_charge(mload__cvb *b, size_t visits) {
    b->work += visits;
    if (b->work <= MLOAD__CONVERT_WORK) return MLOAD_OK;
    return mload__fail(b->err, MLOAD_ERR_INVALID_CONVERTER, MLOAD_NO_OFFSET, NULL, 0,
                       "the rules visit more than %U tensor names (rules x tensors): select tensors first or use fewer rules",
                       MLOAD__CONVERT_WORK);
}

/* The name pool only grows (a renamed entry gets a new name): when most of
   it is names no live entry uses, it is rebuilt with the live ones, so its
   size stays a small multiple of the output's names. */
static mload_result mload__cvb_compact(mload__cvb *b) {
    size_t i, live = 0, at = 0;
    char *pool;
    for (i = 0; i < b->ne; ++i)
        if (!b->ents[i].dead) live += b->ents[i].name_len + 1;
    if (b->rc->nn <= 2 * live + 65536) return MLOAD_OK;
    if (!(pool = MLOAD__CAST(char *, mload__malloc(b->a, live + 1, 1)))) return mload__oom(b->err);
    for (i = 0; i < b->ne; ++i) {
        mload__ent *e = &b->ents[i];
        if (e->dead) continue;
        memcpy(pool + at, b->rc->names + e->name, e->name_len + 1);
        e->name = at;
        at += e->name_len + 1;
    }
    mload__free(b->a, b->rc->names, b->rc->n_cap, 1);
    b->rc->names = pool;
    b->rc->n_cap = live + 1;
    b->rc->nn = at;
    b->ix_valid = 0;
    return MLOAD_OK;
}

static mload_result mload__cvb_index(mload__cvb *b) {
    size_t i, n = 0, dup;
    mload_result r;
    if (b->ix_valid) return MLOAD_OK;
    if ((r = mload__cvb_charge(b, b->ne)) != MLOAD_OK) return r;
    mload__free(b->a, b->ix.slots, b->ix.slots ? (b->ix.mask + 1) * sizeof(uint64_t) : 0, sizeof(uint64_t));
    b->ix.slots = NULL;
    if (!mload__cvb_reserve(b, MLOAD__PCAST(void **, &b->refs), &b->refs_cap, b->ne + 1, sizeof(mload__nref))) return mload__oom(b->err);
    for (i = 0; i < b->ne; ++i) {
        if (b->ents[i].dead) continue;
        b->refs[n].name = b->rc->names + b->ents[i].name;
        b->refs[n].name_len = b->ents[i].name_len;
        b->refs[n].ent = i;
        ++n;
    }
    b->ix.seed = 0x3C6EF372FE94F82Bull;
    if (!mload__index_build(b->a, &b->ix, b->refs, sizeof(mload__nref), n, NULL, 0, &dup)) return mload__oom(b->err);
    /* duplicates are caught at the end; lookups find the first */
    b->ix_valid = 1;
    return MLOAD_OK;
}

static size_t mload__cvb_find(mload__cvb *b, const char *name, size_t nl) { /* entry or SIZE_MAX */
    const mload__nref *r = MLOAD__CAST(const mload__nref *, mload__index_find(&b->ix, b->refs, sizeof(mload__nref), name, nl));
    return r ? r->ent : SIZE_MAX;
}

/* "{n}" patterns: a match captures the decimal digits */
static const char *mload__pat_brace(const char *p) { return strstr(p, "{n}"); }

static int mload__pat_match(const char *pat, const char *name, size_t nl, const char **dig, size_t *dl) {
    const char *br = mload__pat_brace(pat);
    size_t pl = strlen(pat), pre, suf, k;
    if (!br) return pl == nl && memcmp(pat, name, nl) == 0;
    pre = MLOAD__CAST(size_t, br - pat);
    suf = pl - pre - 3;
    if (nl < pre + suf + 1 || memcmp(name, pat, pre) != 0 || memcmp(name + nl - suf, br + 3, suf) != 0) return 0;
    for (k = pre; k < nl - suf; ++k)
        if (name[k] < '0' || name[k] > '9') return 0;
    if (nl - suf - pre > 19) return 0;
    *dig = name + pre;
    *dl = nl - suf - pre;
    return 1;
}

/* pattern with "{n}" replaced by the digits, into buf (cap bytes); length or SIZE_MAX */
static size_t mload__pat_subst(const char *pat, const char *dig, size_t dl, char *buf, size_t cap) {
    const char *br = mload__pat_brace(pat);
    size_t pl = strlen(pat), pre;
    if (!br) {
        if (pl >= cap) return SIZE_MAX;
        memcpy(buf, pat, pl);
        return pl;
    }
    pre = MLOAD__CAST(size_t, br - pat);
    if (pl - 3 + dl >= cap) return SIZE_MAX;
    memcpy(buf, pat, pre);
    memcpy(buf + pre, dig, dl);
    memcpy(buf + pre + dl, br + 3, pl - pre - 3);
    return pl - 3 + dl;
}

/* elements per row of dim 0 */
static uint64_t mload__recipe_row(const mload__cvb *b, const mload__recipe *v) {
    return (v->rank && b->rc->dims[v->dims]) ? v->numel / b->rc->dims[v->dims] : 0;
}

/* a vt over elements [first, first + count) of a pieces vt */
static size_t mload__recipe_subrange(mload__cvb *b, size_t src, uint64_t first, uint64_t count, const uint64_t *shape, uint32_t rank) {
    mload__recipe nv = b->rc->vts[src];
    size_t i, p0 = b->rc->np;
    uint64_t pos = 0;
    for (i = 0; i < b->rc->vts[src].npieces; ++i) {
        mload__piece pc = b->rc->pieces[b->rc->vts[src].piece0 + i];
        uint64_t lo = first > pos ? first : pos, hi = first + count < pos + pc.count ? first + count : pos + pc.count;
        if (lo < hi) {
            if (!mload__cvb_reserve(b, MLOAD__PCAST(void **, &b->rc->pieces), &b->rc->p_cap, b->rc->np + 1, sizeof(mload__piece))) return SIZE_MAX;
            b->rc->pieces[b->rc->np].base = pc.base;
            b->rc->pieces[b->rc->np].first = pc.first + (lo - pos);
            b->rc->pieces[b->rc->np].count = hi - lo;
            b->rc->np++;
        }
        pos += pc.count;
    }
    nv.piece0 = p0;
    nv.npieces = b->rc->np - p0;
    nv.numel = count;
    nv.rank = rank;
    if (!mload__cvb_dims(b, shape, rank, &nv.dims)) return SIZE_MAX;
    return mload__cvb_vt(b, &nv);
}

/* appends the pieces of recipe vi to the pool (its copy for a new recipe) */
static mload_result mload__cvb_copy_pieces(mload__cvb *b, size_t vi) {
    size_t i, n = b->rc->vts[vi].npieces, p0 = b->rc->vts[vi].piece0;
    if (!mload__cvb_reserve(b, MLOAD__PCAST(void **, &b->rc->pieces), &b->rc->p_cap, b->rc->np + n + 1, sizeof(mload__piece)))
        return mload__oom(b->err);
    for (i = 0; i < n; ++i) b->rc->pieces[b->rc->np++] = b->rc->pieces[p0 + i];
    return MLOAD_OK;
}

/* adds recipe nv with the given shape; its index in *out */
static mload_result mload__cvb_add(mload__cvb *b, mload__recipe *nv, const uint64_t *shape, uint32_t rank, size_t *out) {
    nv->rank = rank;
    if (!mload__cvb_dims(b, shape, rank, &nv->dims) || (*out = mload__cvb_vt(b, nv)) == SIZE_MAX) return mload__oom(b->err);
    return MLOAD_OK;
}

static mload_result mload__cv_concat(mload__cvb *b, const char *target, size_t tl, const size_t *src, size_t nsrc, size_t *out) {
    const mload__recipe *f = &b->rc->vts[src[0]];
    mload__recipe nv;
    uint64_t d0 = 0, shape[64], numel = 0;
    size_t k, total = 0, p0 = b->rc->np;
    uint32_t rank = f->rank;
    mload_result r;
    if (rank == 0 || rank > 64) return mload__cv_fail(b, target, tl, "target '%s': concat needs tensors of rank 1..64%s", NULL);
    for (k = 0; k < nsrc; ++k) {
        const mload__recipe *v = &b->rc->vts[src[k]];
        if (v->transpose || v->dtype != f->dtype || v->src_dtype != f->src_dtype || v->rank != rank ||
            memcmp(b->rc->dims + v->dims + 1, b->rc->dims + f->dims + 1, (rank - 1) * sizeof(uint64_t)) != 0)
            return mload__cv_fail(b, target, tl,
                                  "target '%s': concat sources must share dtype and every dim but the first (and not be transposed)%s", NULL);
        if (!mload__add_u64(d0, b->rc->dims[v->dims], &d0) || !mload__add_u64(numel, v->numel, &numel))
            return mload__cv_fail(b, target, tl, "target '%s': too large%s", NULL);
        total += v->npieces;
    }
    /* concats of concats copy piece lists: bound them (a rules text could double them at will) */
    if (total > MLOAD__MAX_PIECES || b->rc->np > MLOAD__MAX_PIECES * 4u)
        return mload__cv_fail(b, target, tl, "target '%s': the converter builds too many pieces%s", NULL);
    memcpy(shape, b->rc->dims + f->dims, rank * sizeof(uint64_t));
    shape[0] = d0;
    for (k = 0; k < nsrc; ++k)
        if ((r = mload__cvb_copy_pieces(b, src[k])) != MLOAD_OK) return r;
    nv = b->rc->vts[src[0]];
    nv.piece0 = p0;
    nv.npieces = b->rc->np - p0;
    nv.numel = numel;
    return mload__cvb_add(b, &nv, shape, rank, out);
}

/* chunk and slice: rows [lo, hi) of dim 0 */
static mload_result mload__cv_rows(mload__cvb *b, const mload_rule *r, const char *target, size_t tl, size_t src, size_t *out) {
    const mload__recipe *v = &b->rc->vts[src];
    uint64_t d0 = b->rc->dims[v->dims], lo, hi, row = mload__recipe_row(b, v), shape[64];
    if (r->verb == MLOAD_RULE_CHUNK) {
        if (r->n1 == 0 || r->n2 >= r->n1 || d0 % r->n1)
            return mload__cv_fail(b, target, tl, "target '%s': chunk needs N > I and dim 0 divisible by N%s", NULL);
        lo = d0 / r->n1 * r->n2;
        hi = lo + d0 / r->n1;
    } else {
        if (r->n1 > r->n2 || r->n2 > d0) return mload__cv_fail(b, target, tl, "target '%s': slice rows out of range%s", NULL);
        lo = r->n1;
        hi = r->n2;
    }
    memcpy(shape, b->rc->dims + v->dims, v->rank * sizeof(uint64_t));
    shape[0] = hi - lo;
    if ((*out = mload__recipe_subrange(b, src, lo * row, (hi - lo) * row, shape, v->rank)) == SIZE_MAX) return mload__oom(b->err);
    return MLOAD_OK;
}

static mload_result mload__cv_swap_halves(mload__cvb *b, const char *target, size_t tl, size_t src, size_t *out) {
    const mload__recipe *v = &b->rc->vts[src];
    uint64_t d0 = b->rc->dims[v->dims], row = mload__recipe_row(b, v), shape[64];
    uint32_t rank = v->rank; /* v points into the recipes, which the subranges may move */
    size_t a1, a2, p0;
    mload__recipe nv;
    mload_result r;
    if (d0 % 2u) return mload__cv_fail(b, target, tl, "target '%s': swap-halves needs an even dim 0%s", NULL);
    memcpy(shape, b->rc->dims + v->dims, rank * sizeof(uint64_t));
    shape[0] = d0 / 2u;
    a1 = mload__recipe_subrange(b, src, d0 / 2u * row, d0 / 2u * row, shape, rank);
    a2 = a1 == SIZE_MAX ? SIZE_MAX : mload__recipe_subrange(b, src, 0, d0 / 2u * row, shape, rank);
    if (a2 == SIZE_MAX) return mload__oom(b->err);
    p0 = b->rc->np;
    if ((r = mload__cvb_copy_pieces(b, a1)) != MLOAD_OK || (r = mload__cvb_copy_pieces(b, a2)) != MLOAD_OK) return r;
    nv = b->rc->vts[a1];
    nv.piece0 = p0;
    nv.npieces = b->rc->np - p0;
    nv.numel = d0 * row;
    shape[0] = d0;
    return mload__cvb_add(b, &nv, shape, rank, out);
}

static mload_result mload__cv_transpose(mload__cvb *b, const char *target, size_t tl, size_t src, size_t *out) {
    const mload__recipe *v = &b->rc->vts[src];
    mload__recipe nv;
    uint64_t shape[2];
    if (v->rank != 2) return mload__cv_fail(b, target, tl, "target '%s': transpose needs a 2-D tensor%s", NULL);
    shape[0] = b->rc->dims[v->dims + 1];
    shape[1] = b->rc->dims[v->dims];
    if (v->transpose && v->dtype == v->src_dtype && b->rc->vts[v->child].rank == 2 &&
        b->rc->dims[b->rc->vts[v->child].dims] == shape[0] && b->rc->dims[b->rc->vts[v->child].dims + 1] == shape[1]) {
        nv = b->rc->vts[v->child]; /* transposing back (no reshape in between) */
        return mload__cvb_add(b, &nv, shape, 2, out);
    }
    memset(&nv, 0, sizeof nv);
    nv.transpose = 1;
    nv.child = src;
    nv.dtype = v->dtype;
    nv.src_dtype = v->dtype;
    nv.numel = v->numel;
    return mload__cvb_add(b, &nv, shape, 2, out);
}

/* reshape, flatten, squeeze: the same elements under a new shape */
static mload_result mload__cv_reshape(mload__cvb *b, const mload_rule *r, const char *target, size_t tl, size_t src, size_t *out) {
    const mload__recipe *v = &b->rc->vts[src];
    mload__recipe nv;
    uint64_t numel = 1, shape[64];
    uint32_t rank = 0, d;
    if (r->verb == MLOAD_RULE_RESHAPE) {
        if (r->rank > 64 || (r->rank && !r->shape)) return mload__cv_fail(b, target, tl, "target '%s': bad shape%s", NULL);
        for (d = 0; d < r->rank; ++d) {
            shape[d] = r->shape[d];
            if (!mload__mul_u64(numel, shape[d], &numel)) return mload__cv_fail(b, target, tl, "target '%s': shape overflows%s", NULL);
        }
        rank = r->rank;
        if (numel != v->numel) return mload__cv_fail(b, target, tl, "target '%s': reshape must keep the element count%s", NULL);
    } else if (r->verb == MLOAD_RULE_FLATTEN) {
        shape[0] = v->numel;
        rank = 1;
    } else {
        for (d = 0; d < v->rank; ++d)
            if (b->rc->dims[v->dims + d] != 1) {
                if (rank == 64) return mload__cv_fail(b, target, tl, "target '%s': more than 64 dims%s", NULL);
                shape[rank++] = b->rc->dims[v->dims + d];
            }
    }
    nv = *v;
    return mload__cvb_add(b, &nv, shape, rank, out);
}

static mload_result mload__cv_zeros(mload__cvb *b, const mload_rule *r, const char *target, size_t tl, size_t *out) {
    mload__recipe nv;
    uint32_t d;
    memset(&nv, 0, sizeof nv);
    if (!mload__dtype_valid(r->dtype) || r->rank > 64 || (r->rank && !r->shape))
        return mload__cv_fail(b, target, tl, "target '%s': zeros needs a dtype and a shape%s", NULL);
    nv.numel = 1;
    for (d = 0; d < r->rank; ++d)
        if (!mload__mul_u64(nv.numel, r->shape[d], &nv.numel)) return mload__cv_fail(b, target, tl, "target '%s': shape overflows%s", NULL);
    nv.dtype = nv.src_dtype = r->dtype;
    if (!mload__cvb_reserve(b, MLOAD__PCAST(void **, &b->rc->pieces), &b->rc->p_cap, b->rc->np + 1, sizeof(mload__piece)))
        return mload__oom(b->err);
    nv.piece0 = b->rc->np;
    nv.npieces = 1;
    b->rc->pieces[b->rc->np].base = MLOAD__ZERO_PIECE;
    b->rc->pieces[b->rc->np].first = 0;
    b->rc->pieces[b->rc->np].count = nv.numel;
    b->rc->np++;
    return mload__cvb_add(b, &nv, r->shape, r->rank, out);
}

/* Applies value rule r (names already instantiated) with resolved source
   recipes; the new recipe for the target in *out. */
static mload_result mload__cvb_value(mload__cvb *b, const mload_rule *r, const char *target, const size_t *src, size_t nsrc,
                                    size_t *out) {
    size_t tl = strlen(target), k;
    const mload__recipe *v;
    mload__recipe nv;
    if (r->verb == MLOAD_RULE_CONCAT && (nsrc == 0 || !r->sources))
        return mload__cv_fail(b, target, tl, "target '%s': concat needs at least one source%s", NULL);
    if (r->verb == MLOAD_RULE_CONCAT || r->verb == MLOAD_RULE_CHUNK || r->verb == MLOAD_RULE_SLICE ||
        r->verb == MLOAD_RULE_SWAP_HALVES || r->verb == MLOAD_RULE_TRANSPOSE)
        for (k = 0; k < nsrc; ++k)
            if (mload_dtype_bits(b->rc->vts[src[k]].dtype) % 8u)
                return mload__cv_fail(b, target, tl, "target '%s': value recipes need whole-byte dtypes%s", NULL);
    v = nsrc ? &b->rc->vts[src[0]] : NULL;
    if ((r->verb == MLOAD_RULE_CHUNK || r->verb == MLOAD_RULE_SLICE || r->verb == MLOAD_RULE_SWAP_HALVES) &&
        (v->transpose || v->rank == 0 || v->rank > 64))
        return mload__cv_fail(b, target, tl, "target '%s': chunk/slice/swap-halves need an untransposed tensor of rank 1..64%s", NULL);
    switch (r->verb) {
    case MLOAD_RULE_ALIAS: *out = src[0]; return MLOAD_OK;
    case MLOAD_RULE_CONCAT: return mload__cv_concat(b, target, tl, src, nsrc, out);
    case MLOAD_RULE_CHUNK: case MLOAD_RULE_SLICE: return mload__cv_rows(b, r, target, tl, src[0], out);
    case MLOAD_RULE_SWAP_HALVES: return mload__cv_swap_halves(b, target, tl, src[0], out);
    case MLOAD_RULE_TRANSPOSE: return mload__cv_transpose(b, target, tl, src[0], out);
    case MLOAD_RULE_RESHAPE: case MLOAD_RULE_FLATTEN: case MLOAD_RULE_SQUEEZE: return mload__cv_reshape(b, r, target, tl, src[0], out);
    case MLOAD_RULE_CAST:
        if (!mload__dtype_valid(r->dtype) || !mload_cast_supported(r->dtype, v->src_dtype))
            return mload__cv_fail(b, target, tl, "target '%s': no conversion to %s", mload_dtype_name(r->dtype));
        nv = *v;
        nv.dtype = r->dtype;
        if ((*out = mload__cvb_vt(b, &nv)) == SIZE_MAX) return mload__oom(b->err);
        return MLOAD_OK;
    case MLOAD_RULE_ZEROS: return mload__cv_zeros(b, r, target, tl, out);
    default: return mload__cv_fail(b, target, tl, "'%s': not a value rule%s", NULL);
    }
}

static int mload__is_value_rule(mload_rule_verb v) { return v >= MLOAD_RULE_ALIAS && v <= MLOAD_RULE_ZEROS; }

/* the target name of a value rule, and its source names */
static const char *mload__rule_target(const mload_rule *r) {
    switch (r->verb) {
    case MLOAD_RULE_CONCAT: case MLOAD_RULE_ZEROS: return r->a;
    case MLOAD_RULE_RESHAPE: case MLOAD_RULE_FLATTEN: case MLOAD_RULE_SQUEEZE: case MLOAD_RULE_CAST: return r->a;
    default: return r->b;
    }
}
static uint32_t mload__rule_nsrc(const mload_rule *r) { /* 65 stands for "more than 64" */
    if (r->verb == MLOAD_RULE_CONCAT) return r->source_count > 64u ? 65u : MLOAD__CAST(uint32_t, r->source_count);
    return r->verb == MLOAD_RULE_ZEROS ? 0u : 1u;
}
static const char *mload__rule_src(const mload_rule *r, uint32_t k) {
    return r->verb == MLOAD_RULE_CONCAT ? (r->sources ? r->sources[k] : NULL) : r->a;
}
static int mload__rule_consumes(const mload_rule *r) {
    return r->verb == MLOAD_RULE_CONCAT || r->verb == MLOAD_RULE_CHUNK || r->verb == MLOAD_RULE_SLICE ||
           r->verb == MLOAD_RULE_SWAP_HALVES || r->verb == MLOAD_RULE_TRANSPOSE;
}
static int mload__rule_in_place(const mload_rule *r) {
    return r->verb == MLOAD_RULE_RESHAPE || r->verb == MLOAD_RULE_FLATTEN || r->verb == MLOAD_RULE_SQUEEZE || r->verb == MLOAD_RULE_CAST;
}

#define MLOAD__NAME_MAX 4096

/* one instance of a value rule (names with {n} substituted by dig) */
static mload_result mload__cvb_apply_value(mload__cvb *b, const mload_rule *r, const char *dig, size_t dl) {
    char target[MLOAD__NAME_MAX], srcname[MLOAD__NAME_MAX];
    size_t tl, src[64], sent[64], k, existing;
    uint32_t nsrc = mload__rule_nsrc(r);
    mload_result res;
    size_t vt;
    if (!mload__rule_target(r) || nsrc > 64) return mload__cv_fail(b, "", 0, "rule without a target or with more than 64 sources%s%s", NULL);
    tl = mload__pat_subst(mload__rule_target(r), dig, dl, target, sizeof target);
    if (tl == SIZE_MAX) return mload__cv_fail(b, "", 0, "name too long%s%s", NULL);
    target[tl] = '\0';
    if ((res = mload__cvb_index(b)) != MLOAD_OK) return res;
    for (k = 0; k < nsrc; ++k) {
        size_t sl;
        const char *pat = mload__rule_src(r, MLOAD__CAST(uint32_t, k));
        if (!pat) return mload__cv_fail(b, target, tl, "target '%s': a source name is missing%s", NULL);
        sl = mload__pat_subst(pat, dig, dl, srcname, sizeof srcname);
        if (sl == SIZE_MAX) return mload__cv_fail(b, target, tl, "name too long%s%s", NULL);
        srcname[sl] = '\0';
        sent[k] = mload__cvb_find(b, srcname, sl);
        if (sent[k] == SIZE_MAX) return mload__cv_fail(b, target, tl, "target '%s': source '%s' does not exist", srcname);
        src[k] = b->ents[sent[k]].vt;
    }
    if ((res = mload__cvb_value(b, r, target, src, nsrc, &vt)) != MLOAD_OK) return res;
    existing = mload__cvb_find(b, target, tl);
    if (mload__rule_in_place(r)) {
        b->ents[sent[0]].vt = vt;
        return MLOAD_OK;
    }
    if (existing != SIZE_MAX) {
        int is_src = 0;
        for (k = 0; k < nsrc; ++k) is_src |= sent[k] == existing;
        if (!is_src && !b->ents[existing].consumed)
            return mload__cv_fail(b, target, tl, "target '%s' already exists%s", NULL);
        b->ents[existing].dead = 1;
    }
    if (mload__rule_consumes(r))
        for (k = 0; k < nsrc; ++k) b->ents[sent[k]].consumed = 1;
    return mload__cvb_add_ent(b, target, tl, vt);
}

/* a value rule: once, or once per layer index its first source's {n} pattern matches */
static mload_result mload__cvb_value_rule(mload__cvb *b, const mload_rule *r) {
    size_t i, ne = b->ne;
    const char *first = mload__rule_nsrc(r) ? mload__rule_src(r, 0) : mload__rule_target(r);
    size_t matched = 0;
    if (!first) return mload__cv_fail(b, "", 0, "rule without names%s%s", NULL);
    if (r->verb == MLOAD_RULE_CONCAT && (r->source_count == 0 || !r->sources))
        return mload__cv_fail(b, r->a ? r->a : "", r->a ? strlen(r->a) : 0, "target '%s': concat needs at least one source%s", NULL);
    if (!mload__pat_brace(first) && mload__rule_target(r) && mload__pat_brace(mload__rule_target(r)))
        return mload__cv_fail(b, mload__rule_target(r), strlen(mload__rule_target(r)),
                              "target '%s' uses {n} but its first source does not%s", NULL);
    if (!mload__pat_brace(first) || r->verb == MLOAD_RULE_ZEROS) {
        if (r->verb == MLOAD_RULE_ZEROS && mload__pat_brace(first))
            return mload__cv_fail(b, first, strlen(first), "target '%s': zeros cannot use {n}%s", NULL);
        return mload__cvb_apply_value(b, r, "", 0);
    }
    /* one instance per layer index found in the first source's pattern */
    if (mload__cvb_charge(b, ne) != MLOAD_OK) return MLOAD_ERR_INVALID_CONVERTER;
    for (i = 0; i < ne; ++i) {
        const char *dig;
        size_t dl;
        char digits[24];
        mload_result res;
        if (b->ents[i].dead) continue;
        if (!mload__pat_match(first, b->rc->names + b->ents[i].name, b->ents[i].name_len, &dig, &dl)) continue;
        memcpy(digits, dig, dl); /* the name pool may move */
        if ((res = mload__cvb_apply_value(b, r, digits, dl)) != MLOAD_OK) return res;
        ++matched;
    }
    if (!matched) return mload__cv_fail(b, first, strlen(first), "no tensor matches '%s'%s", NULL);
    return MLOAD_OK;
}

/* drop-index PATTERN N: PATTERN ("blocks.{n}.") matches a prefix of the name with n >= N */
static mload_result mload__cvb_drop_index(mload__cvb *b, const mload_rule *r, mload__ent *e) {
    const char *nm = b->rc->names + e->name, *br = mload__pat_brace(r->a);
    size_t nl = e->name_len, l1 = strlen(r->a), pre, k, suf;
    uint64_t v = 0;
    if (!br) return mload__cv_fail(b, r->a, l1, "drop-index pattern '%s' needs {n}%s", NULL);
    pre = MLOAD__CAST(size_t, br - r->a);
    suf = l1 - pre - 3;
    if (nl < pre + 1 || memcmp(nm, r->a, pre) != 0) return MLOAD_OK;
    for (k = pre; k < nl && nm[k] >= '0' && nm[k] <= '9' && k - pre < 19; ++k) v = v * 10u + MLOAD__CAST(uint64_t, nm[k] - '0');
    if (k == pre || (k < nl && nm[k] >= '0' && nm[k] <= '9')) return MLOAD_OK;
    if (nl - k < suf || memcmp(nm + k, br + 3, suf) != 0) return MLOAD_OK;
    if (v >= r->n1) e->dead = 1;
    return MLOAD_OK;
}

/* replace OLD NEW (every occurrence) and replace-suffix OLD NEW */
static mload_result mload__cvb_replace(mload__cvb *b, const mload_rule *r, const char *nm, size_t nl, char *buf, size_t cap,
                                       size_t *outl) {
    size_t l1 = strlen(r->a), l2, k = 0, o = 0, hits = 0;
    if (!r->b || l1 == 0) return mload__cv_fail(b, "", 0, "replace needs a non-empty OLD and a NEW%s%s", NULL);
    l2 = strlen(r->b);
    if (r->verb == MLOAD_RULE_REPLACE_SUFFIX) {
        if (nl < l1 || memcmp(nm + nl - l1, r->a, l1) != 0) return MLOAD_OK;
        if (nl - l1 + l2 >= cap) return mload__cv_fail(b, nm, nl, "name '%s' too long%s", NULL);
        memcpy(buf, nm, nl - l1);
        memcpy(buf + nl - l1, r->b, l2);
        *outl = nl - l1 + l2;
        return MLOAD_OK;
    }
    while (k < nl) {
        int hit = k + l1 <= nl && memcmp(nm + k, r->a, l1) == 0;
        if (o + (hit ? l2 : 1) >= cap) return mload__cv_fail(b, nm, nl, "name '%s' too long%s", NULL);
        if (hit) {
            memcpy(buf + o, r->b, l2);
            o += l2;
            k += l1;
            ++hits;
        } else {
            buf[o++] = nm[k++];
        }
    }
    if (hits) *outl = o;
    return MLOAD_OK;
}

/* name rule r on live entry e: a new name in buf (*outl; SIZE_MAX keeps
   the name), or e marked dead */
static mload_result mload__cvb_rename(mload__cvb *b, const mload_rule *r, mload__ent *e, char *buf, size_t cap, size_t *outl) {
    const char *nm = b->rc->names + e->name, *dig, *newp = r->a;
    size_t nl = e->name_len, l1 = strlen(r->a), newl = l1, keep = 0, dl;
    int pre = nl >= l1 && memcmp(nm, r->a, l1) == 0, same = nl == l1 && memcmp(nm, r->a, l1) == 0;
    char digits[24];
    *outl = SIZE_MAX;
    switch (r->verb) {
    case MLOAD_RULE_STRIP_PREFIX:
        if (pre) { e->name += l1; e->name_len -= l1; }
        return MLOAD_OK;
    case MLOAD_RULE_REPLACE_PREFIX:
    case MLOAD_RULE_ADD_PREFIX:
        if (r->verb == MLOAD_RULE_REPLACE_PREFIX) {
            if (!r->b) return mload__cv_fail(b, "", 0, "rule without its argument%s%s", NULL);
            if (!pre) return MLOAD_OK;
            keep = l1;
            newp = r->b;
            newl = strlen(r->b);
        }
        if (newl + nl - keep >= cap) return mload__cv_fail(b, nm, nl, "name '%s' too long%s", NULL);
        memcpy(buf, newp, newl);
        memcpy(buf + newl, nm + keep, nl - keep);
        *outl = newl + nl - keep;
        return MLOAD_OK;
    case MLOAD_RULE_KEEP: if (!pre) e->dead = 1; return MLOAD_OK;
    case MLOAD_RULE_DROP: if (pre) e->dead = 1; return MLOAD_OK;
    case MLOAD_RULE_KEEP_NAME: if (!same) e->dead = 1; return MLOAD_OK;
    case MLOAD_RULE_DROP_NAME: if (same) e->dead = 1; return MLOAD_OK;
    case MLOAD_RULE_DROP_INDEX: return mload__cvb_drop_index(b, r, e);
    case MLOAD_RULE_RENAME:
        if (!r->b) return mload__cv_fail(b, "", 0, "rule without its argument%s%s", NULL);
        if (!mload__pat_brace(r->a) && mload__pat_brace(r->b))
            return mload__cv_fail(b, r->b, strlen(r->b), "rename to '%s': {n} in TO needs {n} in FROM%s", NULL);
        if (!mload__pat_match(r->a, nm, nl, &dig, &dl)) return MLOAD_OK;
        if (mload__pat_brace(r->a)) memcpy(digits, dig, dl);
        else dl = 0;
        *outl = mload__pat_subst(r->b, digits, dl, buf, cap);
        if (*outl == SIZE_MAX) return mload__cv_fail(b, nm, nl, "name '%s' too long%s", NULL);
        return MLOAD_OK;
    case MLOAD_RULE_REPLACE:
    case MLOAD_RULE_REPLACE_SUFFIX: return mload__cvb_replace(b, r, nm, nl, buf, cap, outl);
    default: return mload__cv_fail(b, "", 0, "unknown rule%s%s", NULL);
    }
}

static mload_result mload__cvb_rule(mload__cvb *b, const mload_rule *r) {
    size_t i, ne = b->ne;
    char buf[MLOAD__NAME_MAX];
    mload_result res0;
    b->rule = r;
    if (mload__is_value_rule(r->verb)) return mload__cvb_value_rule(b, r);
    if ((res0 = mload__cvb_charge(b, ne)) != MLOAD_OK) return res0;
    for (i = 0; i < ne; ++i) {
        size_t outl, at;
        mload_result res;
        if (b->ents[i].dead) continue;
        if (!r->a) return mload__cv_fail(b, "", 0, "rule without its argument%s%s", NULL);
        if ((res = mload__cvb_rename(b, r, &b->ents[i], buf, sizeof buf, &outl)) != MLOAD_OK) return res;
        if (outl == SIZE_MAX) continue;
        if ((at = mload__cvb_name(b, buf, outl)) == SIZE_MAX) return mload__oom(b->err);
        b->ents[i].name = at;
        b->ents[i].name_len = outl;
    }
    b->ix_valid = 0;
    return mload__cvb_compact(b);
}

/* index of the stored tensor named `name` (they are in name order), or SIZE_MAX */
static size_t mload__stored_find(const mload_tensor *stored, size_t n, const char *name) {
    size_t lo = 0, hi = n, nl = strlen(name);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = mload__name_cmp(stored[mid].name, stored[mid].name_len, name, nl);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return SIZE_MAX;
}

static mload_result mload__emit(mload_emitter *em, const char *target, const mload_rule *recipe) {
    mload__cvb *b = em->b;
    size_t vt;
    mload_result r;
    if (!recipe) return mload__cvb_add_ent(b, target, strlen(target), b->cur_src);
    if (!mload__is_value_rule(recipe->verb)) return mload__cv_fail(b, target, strlen(target), "target '%s': emit takes a value rule%s", NULL);
    {   /* sources name tensors of the source name space (recipe i = stored tensor i) */
        size_t src[64];
        uint32_t k, n = mload__rule_nsrc(recipe);
        if (n > 64) return mload__cv_fail(b, target, strlen(target), "target '%s': more than 64 sources%s", NULL);
        for (k = 0; k < n; ++k) {
            const char *sn = mload__rule_src(recipe, k);
            size_t at = sn ? mload__stored_find(b->stored, b->nstored, sn) : SIZE_MAX;
            if (at == SIZE_MAX) return mload__cv_fail(b, target, strlen(target), "target '%s': source '%s' does not exist", sn ? sn : "");
            src[k] = at;
        }
        if ((r = mload__cvb_value(b, recipe, target, src, n, &vt)) != MLOAD_OK) return r;
    }
    return mload__cvb_add_ent(b, target, strlen(target), vt);
}

MODELLOAD_API mload_result mload_emitter_add(mload_emitter *em, const char *target, const mload_rule *recipe,
                                             mload_error *err) {
    mload_result r;
    if (!em || !target) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "emit: NULL emitter or target");
    r = mload__emit(em, target, recipe);
    if (r != MLOAD_OK && err) {
        if (em->b->err && em->b->err->code == r) *err = *em->b->err;
        else mload__fail(err, r, MLOAD_NO_OFFSET, target, strlen(target), "emit of '%s' failed", target);
    }
    return r;
}

/* ---- building the converted view of a map ---- */

static void mload__cvb_free(mload__cvb *b) { /* the recipes belong to the caller */
    mload__free(b->a, b->ents, b->e_cap * sizeof(mload__ent), sizeof(void *));
    mload__free(b->a, b->refs, b->refs_cap * sizeof(mload__nref), sizeof(void *));
    mload__free(b->a, b->ix.slots, b->ix.slots ? (b->ix.mask + 1) * sizeof(uint64_t) : 0, sizeof(uint64_t));
    memset(b, 0, sizeof(*b));
}

static int mload__nref_cmp(const void *x, const void *y) {
    const mload__nref *a = MLOAD__CAST(const mload__nref *, x), *b = MLOAD__CAST(const mload__nref *, y);
    return mload__name_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* the entries before the rules: each stored tensor under its name, or what
   the callback emits for it */
static mload_result mload__cvb_start(mload__cvb *b, const mload_converter *c) {
    size_t i;
    mload_result r = MLOAD_OK;
    for (i = 0; i < b->nstored && r == MLOAD_OK; ++i) {
        const mload_tensor *t = &b->stored[i];
        mload_emitter em;
        if (!c->callback) {
            r = mload__cvb_add_ent(b, t->name, t->name_len, i);
            continue;
        }
        em.b = b;
        b->cur_src = i;
        b->rule = NULL;
        r = c->callback(c->user, t, &em);
        if (r != MLOAD_OK && (!b->err || b->err->code != r))
            mload__fail(b->err, r, MLOAD_NO_OFFSET, t->name, t->name_len, "the converter callback failed on '%s'", t->name);
    }
    return r;
}

/* the tensor a live entry presents */
static mload_result mload__cvb_tensor(mload__cvb *b, const mload__nref *ref, mload_tensor *t) {
    const mload__recipe *v = &b->rc->vts[b->ents[ref->ent].vt];
    uint64_t bits;
    memset(t, 0, sizeof(*t));
    t->name = ref->name;
    t->name_len = ref->name_len;
    t->dtype = v->dtype;
    t->rank = v->rank;
    t->shape = b->rc->dims + v->dims; /* rank 0: any readable address */
    t->numel = v->numel;
    if (!mload__mul_u64(v->numel, mload_dtype_bits(v->dtype), &bits) || bits % 8u)
        return mload__fail(b->err, MLOAD_ERR_INVALID_CONVERTER, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "target '%s' does not fill whole bytes or is too large", t->name);
    t->nbytes = bits / 8u;
    t->file_index = UINT32_MAX;
    if (!v->transpose && v->npieces == 1 && v->dtype == v->src_dtype) { /* a stored tensor, whole: it stays direct */
        const mload__piece *p = &b->rc->pieces[v->piece0];
        if (p->base != MLOAD__ZERO_PIECE && p->first == 0 && p->count == b->stored[p->base].numel) {
            t->offset = b->stored[p->base].offset;
            t->file_index = b->stored[p->base].file_index;
        }
    }
    return MLOAD_OK;
}

/* the final name space: live entries in name order, no name twice */
static mload_result mload__cvb_finish(mload__cvb *b, mload_tensor **out, size_t **out_of, size_t *out_n) {
    size_t i, nlive = 0;
    mload_tensor *fin;
    size_t *of;
    mload_result r = MLOAD_OK;
    if (!mload__cvb_reserve(b, MLOAD__PCAST(void **, &b->refs), &b->refs_cap, b->ne + 1, sizeof(mload__nref))) return mload__oom(b->err);
    for (i = 0; i < b->ne; ++i) {
        if (b->ents[i].dead || b->ents[i].consumed) continue;
        b->refs[nlive].name = b->rc->names + b->ents[i].name;
        b->refs[nlive].name_len = b->ents[i].name_len;
        b->refs[nlive].ent = i;
        ++nlive;
    }
    qsort(b->refs, nlive, sizeof(mload__nref), mload__nref_cmp);
    for (i = 1; i < nlive; ++i)
        if (mload__name_cmp(b->refs[i].name, b->refs[i].name_len, b->refs[i - 1].name, b->refs[i - 1].name_len) == 0)
            return mload__fail(b->err, MLOAD_ERR_DUPLICATE_KEY, MLOAD_NO_OFFSET, b->refs[i].name, b->refs[i].name_len,
                               "the converter produces '%s' twice", b->refs[i].name);
    fin = MLOAD__CAST(mload_tensor *, mload__malloc(b->a, (nlive + 1) * sizeof(mload_tensor), sizeof(void *)));
    of = MLOAD__CAST(size_t *, mload__malloc(b->a, (nlive + 1) * sizeof(size_t), sizeof(void *)));
    if (!fin || !of) r = mload__oom(b->err);
    for (i = 0; i < nlive && r == MLOAD_OK; ++i) {
        r = mload__cvb_tensor(b, &b->refs[i], &fin[i]);
        of[i] = b->ents[b->refs[i].ent].vt;
    }
    if (r != MLOAD_OK) {
        mload__free(b->a, fin, (nlive + 1) * sizeof(mload_tensor), sizeof(void *));
        mload__free(b->a, of, (nlive + 1) * sizeof(size_t), sizeof(void *));
        return r;
    }
    *out = fin;
    *out_of = of;
    *out_n = nlive;
    return MLOAD_OK;
}

/* Builds the converted name space over `stored` (whose recipes are the
   first nstored of rc): its tensors (names in rc's pool) and the recipe of
   each, added to rc. */
static mload_result mload__converter_build(const mload_converter *c, const mload_tensor *stored, size_t nstored,
                                           const mload_allocator *a, mload__recipes *rc, mload_tensor **out,
                                           size_t **out_of, size_t *out_n, mload_error *err) {
    mload__cvb b;
    uint64_t i;
    mload_result r;
    if (c->rule_count && !c->rules)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "converter: rules NULL with a count");
    memset(&b, 0, sizeof b);
    b.stored = stored;
    b.nstored = nstored;
    b.a = a;
    b.err = err;
    b.rc = rc;
    r = mload__cvb_start(&b, c);
    for (i = 0; i < c->rule_count && r == MLOAD_OK; ++i) r = mload__cvb_rule(&b, &c->rules[i]);
    if (r == MLOAD_OK) r = mload__cvb_finish(&b, out, out_of, out_n);
    mload__cvb_free(&b);
    return r;
}

#endif /* !MODELLOAD_NO_CONVERTER */

/* ==========================================================================
   7. MAP                                                             >>map
   files, folders and index.json of sharded checkpoints; the name space; reads, ranges, rows; views
   ========================================================================== */

struct mload_map {
    mload_allocator alloc;
    mload_file **files;
    char **paths;          /* NUL-terminated copies; NULL for user sources */
    uint32_t nfiles;
    size_t files_cap, paths_cap; /* grown one after the other: each freed with its own */
    mload_tensor *stored;  /* the files' tensors in name order */
    size_t nstored;
    const uint64_t **strides; /* per stored tensor: a PyTorch view's strides, or NULL; NULL when none is strided */
    mload_tensor *tensors; /* the name space, name order: `stored` itself without a converter */
    size_t count;
    size_t *recipe_of;     /* recipe of each tensor; NULL: tensor i is recipe i */
    mload__recipes rc;
    mload__index index;
    uint64_t data_size, declared; /* declared: the index.json total_size sum, when has_declared */
    int has_declared;
    uint32_t threads, f8_overflow, dup_policy;
    int cast_views; /* desc.cast_read == MLOAD_CAST_READ_VIEW */
    uint64_t model;        /* the matched models entry, or UINT64_MAX */
    mload_map **loras;     /* the adapters' maps (desc.loras), open until close */
    mload_lora_info *lora_info;
    uint64_t nloras;
};


#if defined(MLOAD__POSIX)
static int mload__ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}
#endif


static mload_result mload__map_fail_file(mload_error *err, uint32_t file_index, mload_result r) {
    if (err && r != MLOAD_OK) err->file_index = file_index;
    return r;
}

/* Adds an opened file (and its path copy, may be NULL) to the map. */
static mload_result mload__map_push(mload_map *m, mload_file *f, const char *path, mload_error *err) {
    char *pc = NULL;
    if (m->nfiles >= 0x7FFFFFFFu) { mload_file_close(f); return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "too many files"); }
    if (!mload__reserve(&m->alloc, MLOAD__PCAST(void **, &m->files), &m->files_cap, m->nfiles + 1u, sizeof(mload_file *)) ||
        !mload__reserve(&m->alloc, MLOAD__PCAST(void **, &m->paths), &m->paths_cap, m->nfiles + 1u, sizeof(char *))) {
        mload_file_close(f);
        return mload__oom(err);
    }
    if (path && !(pc = mload__strndup(&m->alloc, path, strlen(path)))) { mload_file_close(f); return mload__oom(err); }
    m->files[m->nfiles] = f;
    m->paths[m->nfiles] = pc;
    m->nfiles++;
    return MLOAD_OK;
}

static mload_result mload__map_add_path(mload_map *m, const char *path, mload_error *err) {
    mload_file_desc d;
    mload_file *f = NULL;
    mload_result r;
    memset(&d, 0, sizeof d);
    d.path = path;
    d.allocator = m->alloc;
    if ((r = mload_file_open(&d, &f, err)) != MLOAD_OK) return mload__map_fail_file(err, m->nfiles, r);
    return mload__map_push(m, f, path, err);
}

#if defined(MLOAD__POSIX)
/* Joins dir (up to its last '/', or nothing) and name into an allocation. */
/* (exactly strlen + 1 bytes: freed with mload__strfree) */
static char *mload__path_join(const mload_allocator *a, const char *dir, size_t dir_len, const char *name, size_t name_len) {
    size_t slash = dir_len && dir[dir_len - 1] != '/' ? 1u : 0u;
    char *p = MLOAD__CAST(char *, mload__malloc(a, dir_len + slash + name_len + 1, 1));
    if (!p) return NULL;
    memcpy(p, dir, dir_len);
    if (slash) p[dir_len++] = '/';
    memcpy(p + dir_len, name, name_len);
    p[dir_len + name_len] = '\0';
    return p;
}

static int mload__str_ptr_cmp(const void *x, const void *y) {
    return strcmp(*MLOAD__CAST(char *const *, x), *MLOAD__CAST(char *const *, y));
}


/* one weight_map entry */
typedef struct mload__wm { const char *name; size_t name_len; const char *file; size_t file_len; uint32_t shard; } mload__wm;

static int mload__wm_file_cmp(const void *x, const void *y) {
    const mload__wm *a = MLOAD__CAST(const mload__wm *, x), *b = MLOAD__CAST(const mload__wm *, y);
    return mload__name_cmp(a->file, a->file_len, b->file, b->file_len);
}

static mload_result mload__index_fail(mload_error *err, const char *name, size_t name_len, const char *fmt, const char *a1,
                                      const char *a2) {
    return mload__fail(err, MLOAD_ERR_INVALID_INDEX, MLOAD_NO_OFFSET, name, name_len, fmt, a1, a2);
}

/* A sharded checkpoint's index: {"metadata": {"total_size": N, ...},
   "weight_map": {"tensor": "shard file", ...}, ...} */
/* The parsed index.json: its weight_map entries and metadata.total_size. */
typedef struct mload__idx {
    char *buf;          /* the file's text (names point into it) */
    uint64_t size;
    mload__wm *wm;
    size_t nwm, wm_cap;
    uint64_t total;
    int have_total, have_wm;
} mload__idx;

static void mload__idx_free(const mload_allocator *a, mload__idx *x) {
    mload__free(a, x->wm, x->wm_cap * sizeof(mload__wm), sizeof(void *));
    if (x->buf) mload__free(a, x->buf, MLOAD__CAST(size_t, x->size) + 1 + MLOAD__PAD, 1);
}

/* the index file's bytes, NUL-padded for the JSON reader */
static mload_result mload__idx_load(const mload_allocator *a, const char *path, mload__idx *x, mload_error *err) {
    mload_source src;
    mload_result r;
    if ((r = mload_source_open_path(path, a, &src, err)) != MLOAD_OK) return r;
    if (src.size(src.user, &x->size) != MLOAD_OK || x->size > MLOAD__MAX_HEADER) {
        mload_source_close(&src);
        return mload__fail(err, MLOAD_ERR_INVALID_INDEX, MLOAD_NO_OFFSET, NULL, 0, "index '%s' is unreadable or larger than 100000000 bytes", path);
    }
    x->buf = MLOAD__CAST(char *, mload__malloc(a, MLOAD__CAST(size_t, x->size) + 1 + MLOAD__PAD, 1));
    if (!x->buf) { mload_source_close(&src); return mload__oom(err); }
    memset(x->buf + x->size, 0, 1 + MLOAD__PAD);
    r = x->size ? src.read_at(src.user, 0, x->buf, MLOAD__CAST(size_t, x->size)) : MLOAD_OK;
    mload_source_close(&src);
    if (r != MLOAD_OK) return mload__fail(err, MLOAD_ERR_IO, 0, NULL, 0, "cannot read index '%s'", path);
    return MLOAD_OK;
}

/* "metadata": {"total_size": N, ...}; total_size is advisory: a value that is not a u64 is skipped */
static mload_result mload__idx_metadata(mload__json *j, mload__idx *x) {
    const char *k;
    size_t kl;
    int st = 0;
    mload_result r = MLOAD_OK;
    while (mload__json_member(j, &st, &k, &kl, NULL, &r)) {
        char *save = j->p;
        if (kl == 10 && memcmp(k, "total_size", 10) == 0 && *j->p >= '0' && *j->p <= '9' &&
            mload__json_u64(j, &x->total) == MLOAD_OK) {
            x->have_total = 1;
            continue;
        }
        j->p = save;
        if ((r = mload__json_skip(j, 2)) != MLOAD_OK) return r;
    }
    return r;
}

/* "weight_map": {"tensor": "shard file", ...} */
static mload_result mload__idx_weight_map(mload__json *j, const mload_allocator *a, mload__idx *x) {
    mload__wm e;
    int st = 0;
    mload_result r = MLOAD_OK;
    if (x->have_wm) return mload__json_fail(j, "weight_map given twice");
    x->have_wm = 1;
    if (*j->p != '{') return mload__json_fail(j, "weight_map must be an object of strings");
    memset(&e, 0, sizeof e);
    while (mload__json_member(j, &st, &e.name, &e.name_len, NULL, &r)) {
        void *np;
        if (*j->p != '"') return mload__json_fail(j, "weight_map values must be file names");
        if ((r = mload__json_string(j, &e.file, &e.file_len)) != MLOAD_OK) return r;
        np = mload__grow(a, x->wm, &x->wm_cap, x->nwm + 1, sizeof(mload__wm));
        if (!np) return mload__oom(j->err);
        x->wm = MLOAD__CAST(mload__wm *, np);
        x->wm[x->nwm++] = e;
    }
    return r;
}

/* the index object: metadata and weight_map, other keys skipped */
static mload_result mload__idx_parse(const mload_allocator *a, mload__idx *x, mload_error *err) {
    mload__json j;
    const char *k;
    size_t kl;
    int st = 0;
    mload_result r = MLOAD_OK;
    mload__json_init(&j, x->buf, x->size, 0, "index", err);
    mload__json_ws(&j);
    if (*j.p != '{') r = mload__json_fail(&j, "the index must be a JSON object");
    while (r == MLOAD_OK && mload__json_member(&j, &st, &k, &kl, NULL, &r)) {
        if (kl == 8 && memcmp(k, "metadata", 8) == 0 && *j.p == '{') r = mload__idx_metadata(&j, x);
        else if (kl == 10 && memcmp(k, "weight_map", 10) == 0) r = mload__idx_weight_map(&j, a, x);
        else r = mload__json_skip(&j, 1);
    }
    if (r == MLOAD_OK) {
        mload__json_ws(&j);
        if (j.p != j.end) r = mload__json_fail(&j, "trailing characters after the index object");
    }
    if (r != MLOAD_OK && r != MLOAD_ERR_OUT_OF_MEMORY) { /* a JSON error of an index is InvalidIndex */
        if (err) err->code = MLOAD_ERR_INVALID_INDEX;
        r = MLOAD_ERR_INVALID_INDEX;
    }
    return r;
}

/* plain shard names only */
static mload_result mload__idx_check_names(const mload__idx *x, mload_error *err) {
    size_t i;
    for (i = 0; i < x->nwm; ++i) {
        const char *fn = x->wm[i].file;
        size_t fl = x->wm[i].file_len;
        if (fl == 0 || memchr(fn, '/', fl) || memchr(fn, '\\', fl) || memchr(fn, '\0', fl) ||
            (fl == 1 && fn[0] == '.') || (fl == 2 && fn[0] == '.' && fn[1] == '.'))
            return mload__index_fail(err, x->wm[i].name, x->wm[i].name_len, "shard name '%s' of tensor '%s' is not a plain file name",
                                     fn, x->wm[i].name);
    }
    return MLOAD_OK;
}

/* opens each distinct shard once, in file-name order; byfile[i].shard = its file */
static mload_result mload__idx_open_shards(mload_map *m, const char *path, mload__wm *byfile, size_t n, mload_error *err) {
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? MLOAD__CAST(size_t, slash - path) + 1 : 0, i, k;
    for (i = 0; i < n; i = k) {
        char *full;
        mload_result r;
        for (k = i; k < n && mload__name_cmp(byfile[k].file, byfile[k].file_len, byfile[i].file, byfile[i].file_len) == 0;) ++k;
        full = mload__path_join(&m->alloc, path, dir_len, byfile[i].file, byfile[i].file_len);
        if (!full) return mload__oom(err);
        r = mload__map_add_path(m, full, err);
        mload__strfree(&m->alloc, full);
        if (r != MLOAD_OK) return r;
        for (; i < k; ++i) byfile[i].shard = m->nfiles - 1;
    }
    return MLOAD_OK;
}

/* every mapped tensor is in its shard, and every tensor of a shard is mapped to it */
static mload_result mload__idx_verify(const mload_map *m, const mload__idx *x, const mload__index *ix, const mload__wm *byfile,
                                      mload_error *err) {
    size_t i, k, n = x->nwm;
    for (i = 0; i < n; ++i) {
        if (mload_file_find_n(m->files[byfile[i].shard], byfile[i].name, byfile[i].name_len)) continue;
        mload__index_fail(err, byfile[i].name, byfile[i].name_len, "tensor '%s' is mapped to shard '%s' but is not in it",
                          byfile[i].name, byfile[i].file);
        return mload__map_fail_file(err, byfile[i].shard, MLOAD_ERR_INVALID_INDEX);
    }
    for (i = 0; i < n; i = k) {
        uint32_t s = byfile[i].shard;
        const mload_file *f = m->files[s];
        uint64_t t;
        for (k = i; k < n && byfile[k].shard == s;) ++k;
        if (mload_file_count(f) == k - i) continue;
        for (t = 0; t < mload_file_count(f); ++t) {
            const mload_tensor *ft = mload_file_tensor(f, t);
            const mload__wm *e = MLOAD__CAST(const mload__wm *, mload__index_find(ix, x->wm, sizeof(mload__wm), ft->name, ft->name_len));
            if (!e)
                mload__index_fail(err, ft->name, ft->name_len, "tensor '%s' of shard '%s' is not in the weight_map", ft->name,
                                  byfile[i].file);
            else if (mload__name_cmp(e->file, e->file_len, byfile[i].file, byfile[i].file_len) != 0)
                mload__fail(err, MLOAD_ERR_INVALID_INDEX, MLOAD_NO_OFFSET, ft->name, ft->name_len,
                            "tensor '%s' is in two shards: '%s' and '%s'", ft->name, byfile[i].file, e->file);
            else continue;
            return mload__map_fail_file(err, s, MLOAD_ERR_INVALID_INDEX);
        }
    }
    return MLOAD_OK;
}

/* A sharded checkpoint's index.json: {"metadata": {"total_size": N, ...},
   "weight_map": {"tensor": "shard file", ...}, ...}: the shards it names
   are opened and checked against it. */
static mload_result mload__map_add_index(mload_map *m, const char *path, mload_error *err) {
    const mload_allocator *a = &m->alloc;
    mload__idx x;
    mload__wm *byfile = NULL;
    mload__index ix;
    size_t dup;
    mload_result r;
    memset(&x, 0, sizeof x);
    memset(&ix, 0, sizeof ix);
    r = mload__idx_load(a, path, &x, err);
    if (r == MLOAD_OK) r = mload__idx_parse(a, &x, err);
    if (r == MLOAD_OK && (!x.have_wm || x.nwm == 0))
        r = mload__fail(err, MLOAD_ERR_INVALID_INDEX, MLOAD_NO_OFFSET, NULL, 0, "index '%s' has no or an empty weight_map", path);
    if (r == MLOAD_OK) r = mload__idx_check_names(&x, err);
    if (r == MLOAD_OK) {
        if (x.have_total) {
            if (!m->has_declared) m->declared = x.total;
            else if (!mload__add_u64(m->declared, x.total, &m->declared)) m->declared = UINT64_MAX; /* saturated */
            m->has_declared = 1;
        }
        ix.seed = 0x9E3779B97F4A7C15ull ^ MLOAD__CAST(uint64_t, x.nwm);
        if (!mload__index_build(a, &ix, x.wm, sizeof(mload__wm), x.nwm, NULL, 0, &dup)) r = mload__oom(err);
        else if (dup != SIZE_MAX)
            r = mload__index_fail(err, x.wm[dup].name, x.wm[dup].name_len, "tensor '%s' is mapped twice in '%s'", x.wm[dup].name, path);
    }
    if (r == MLOAD_OK && !(byfile = MLOAD__CAST(mload__wm *, mload__malloc(a, (x.nwm + 1) * sizeof(mload__wm), sizeof(void *)))))
        r = mload__oom(err);
    if (r == MLOAD_OK) {
        memcpy(byfile, x.wm, x.nwm * sizeof(mload__wm));
        qsort(byfile, x.nwm, sizeof(mload__wm), mload__wm_file_cmp);
        r = mload__idx_open_shards(m, path, byfile, x.nwm, err);
    }
    if (r == MLOAD_OK) r = mload__idx_verify(m, &x, &ix, byfile, err);
    mload__free(a, ix.slots, ix.slots ? (ix.mask + 1) * sizeof(uint64_t) : 0, sizeof(uint64_t));
    mload__free(a, byfile, (x.nwm + 1) * sizeof(mload__wm), sizeof(void *));
    mload__idx_free(a, &x);
    return r;
}
/* A checkpoint file name: 1 safetensors, 2 its index, 3 a PyTorch file
   (.bin .pth .pt .ckpt), 4 its index (*.bin.index.json...); else 0. */
static int mload__ckpt_kind(const char *name) {
    static const char *const pt[] = {".bin", ".pth", ".pt", ".ckpt"};
    size_t i;
    if (mload__ends_with(name, ".safetensors") && strlen(name) > 12) return 1;
    if (mload__ends_with(name, ".safetensors.index.json") && strlen(name) > 23) return 2;
#if !defined(MODELLOAD_NO_PICKLE)
    for (i = 0; i < 4; ++i) {
        char ix[24];
        size_t k = strlen(pt[i]);
        memcpy(ix, pt[i], k);
        memcpy(ix + k, ".index.json", 12);
        if (mload__ends_with(name, pt[i]) && strlen(name) > k) return 3;
        if (mload__ends_with(name, ix) && strlen(name) > k + 11) return 4;
    }
#else
    (void)pt;
    (void)i;
#endif
    return 0;
}

/* A folder: safetensors first, through its index when it holds exactly
   one *.safetensors.index.json (so that a writer's commit is what readers
   see, and files the index does not name are ignored), else every
   *.safetensors file in it, sorted by name. With none, PyTorch files the
   same way: exactly one *.bin.index.json (or .pt, .pth, .ckpt), else
   pytorch_model.bin alone when present (beside it, training_args.bin and
   the like are not weights), else every .bin .pth .pt .ckpt file. An entry
   named like a checkpoint file that is not a readable regular file is an
   error. */
static mload_result mload__map_add_folder(mload_map *m, const char *dir, mload_error *err) {
    DIR *dh = opendir(dir);
    struct dirent *de;
    char **names[2] = {NULL, NULL}, *index[2] = {NULL, NULL}, *hf = NULL;
    size_t n[2] = {0, 0}, cap[2] = {0, 0}, nindex[2] = {0, 0}, i, dl = strlen(dir), use;
    mload_result r = MLOAD_OK, bad[2] = {MLOAD_OK, MLOAD_OK};
    int g;
    if (!dh) return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "cannot open folder '%s': %s", dir, mload__sys_reason(errno));
    while ((de = readdir(dh)) != NULL && r == MLOAD_OK) {
        size_t nl = strlen(de->d_name);
        int kind = mload__ckpt_kind(de->d_name), px = kind > 2; /* px: PyTorch */
        char *full;
        struct stat st;
        if (!kind) continue;
        if (!(full = mload__path_join(&m->alloc, dir, dl, de->d_name, nl))) { r = mload__oom(err); break; }
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) { /* a dangling link (a missing blob), a FIFO, a device... */
            if ((kind == 1 || kind == 3) && bad[px] == MLOAD_OK)
                bad[px] = mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, de->d_name, nl,
                                  "folder entry '%s' is named like a checkpoint file but is not a readable regular file", full);
            mload__strfree(&m->alloc, full);
        } else if (kind == 2 || kind == 4) {
            if (nindex[px]++ == 0) index[px] = full;
            else mload__strfree(&m->alloc, full);
        } else if (px && strcmp(de->d_name, "pytorch_model.bin") == 0 && !hf) {
            hf = full;
        } else if (mload__reserve(&m->alloc, MLOAD__PCAST(void **, &names[px]), &cap[px], n[px] + 1, sizeof(char *))) {
            names[px][n[px]++] = full;
        } else {
            mload__strfree(&m->alloc, full);
            r = mload__oom(err);
        }
    }
    closedir(dh);
    use = (n[0] || nindex[0]) ? 0 : 1;
    if (use == 1 && hf && nindex[1] != 1) { /* pytorch_model.bin alone */
        for (i = 0; i < n[1]; ++i) mload__strfree(&m->alloc, names[1][i]);
        n[1] = 0;
        if (r == MLOAD_OK && !mload__reserve(&m->alloc, MLOAD__PCAST(void **, &names[1]), &cap[1], 1, sizeof(char *))) r = mload__oom(err);
        else if (r == MLOAD_OK) { names[1][n[1]++] = hf; hf = NULL; }
    }
    if (r == MLOAD_OK && nindex[use] == 1) r = mload__map_add_index(m, index[use], err);
    else if (r == MLOAD_OK && bad[use] != MLOAD_OK) r = bad[use];
    else if (r == MLOAD_OK && n[use] == 0)
        r = mload__fail(err, MLOAD_ERR_NOT_FOUND, MLOAD_NO_OFFSET, NULL, 0, "folder '%s' has no .safetensors file (nor a PyTorch checkpoint)", dir);
    else if (r == MLOAD_OK) qsort(names[use], n[use], sizeof(char *), mload__str_ptr_cmp);
    for (g = 0; g < 2; ++g) {
        for (i = 0; i < n[g]; ++i) {
            if (r == MLOAD_OK && MLOAD__CAST(size_t, g) == use && nindex[use] != 1) r = mload__map_add_path(m, names[g][i], err);
            mload__strfree(&m->alloc, names[g][i]);
        }
        mload__strfree(&m->alloc, index[g]);
        mload__free(&m->alloc, names[g], cap[g] * sizeof(char *), sizeof(void *));
    }
    mload__strfree(&m->alloc, hf);
    return r;
}

#endif /* MLOAD__POSIX */

static mload_result mload__map_add_any(mload_map *m, const char *path, mload_error *err) {
#if defined(MLOAD__POSIX)
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return mload__map_add_folder(m, path, err);
    if (mload__ends_with(path, ".json")) return mload__map_add_index(m, path, err);
#endif
    return mload__map_add_path(m, path, err);
}

/* name-order sort record */
typedef struct mload__mref { const char *name; size_t name_len; uint32_t file; size_t idx; } mload__mref;

static int mload__mref_cmp(const void *x, const void *y) {
    const mload__mref *a = MLOAD__CAST(const mload__mref *, x), *b = MLOAD__CAST(const mload__mref *, y);
    int c = mload__name_cmp(a->name, a->name_len, b->name, b->name_len);
    if (c) return c;
    return a->file < b->file ? -1 : (a->file > b->file ? 1 : 0);
}

static void mload__map_free(mload_map *m) {
    mload_allocator a = m->alloc;
    uint32_t i;
    for (i = 0; i < m->nfiles; ++i) {
        mload_file_close(m->files[i]);
        mload__strfree(&a, m->paths[i]);
    }
    mload__free(&a, m->files, m->files_cap * sizeof(mload_file *), sizeof(void *));
    mload__free(&a, m->paths, m->paths_cap * sizeof(char *), sizeof(void *));
    if (m->tensors != m->stored) mload__free(&a, m->tensors, (m->count + 1) * sizeof(mload_tensor), sizeof(void *));
    mload__free(&a, m->stored, (m->nstored + 1) * sizeof(mload_tensor), sizeof(void *));
    mload__free(&a, MLOAD__PCAST(void *, m->strides), m->nstored * sizeof(uint64_t *), sizeof(void *));
    mload__free(&a, m->recipe_of, (m->count + 1) * sizeof(size_t), sizeof(void *));
    mload__free(&a, m->index.slots, m->index.slots ? (m->index.mask + 1) * sizeof(uint64_t) : 0, sizeof(uint64_t));
    mload__recipes_free(&a, &m->rc);
    for (i = 0; i < m->nloras; ++i) mload_map_close(m->loras[i]);
    mload__free(&a, m->loras, m->nloras * sizeof(mload_map *), sizeof(void *));
    mload__free(&a, m->lora_info, m->nloras * sizeof(mload_lora_info), sizeof(void *));
    mload__free(&a, m, sizeof(*m), sizeof(void *));
}

static mload_result mload__map_build(mload_map *m, mload_error *err) {
    const mload_allocator *a = &m->alloc;
    mload__mref *refs;
    size_t total = 0, i, k;
    uint32_t fi;
    for (fi = 0; fi < m->nfiles; ++fi) total += m->files[fi]->count;
    refs = MLOAD__CAST(mload__mref *, mload__malloc(a, (total + 1) * sizeof(mload__mref), sizeof(void *)));
    if (!refs) return mload__oom(err);
    for (fi = 0, k = 0; fi < m->nfiles; ++fi) {
        for (i = 0; i < m->files[fi]->count; ++i, ++k) {
            refs[k].name = m->files[fi]->tensors[i].name;
            refs[k].name_len = m->files[fi]->tensors[i].name_len;
            refs[k].file = fi;
            refs[k].idx = i;
        }
    }
    qsort(refs, total, sizeof(mload__mref), mload__mref_cmp);
    /* duplicates across files: refused, or the last file wins */
    for (i = 1, k = 0; i <= total; ++i) {
        if (i < total && mload__name_cmp(refs[i].name, refs[i].name_len, refs[k].name, refs[k].name_len) == 0) {
            if (m->dup_policy != MLOAD_DUP_LAST_WINS) {
                mload_result r = mload__fail(err, MLOAD_ERR_DUPLICATE_KEY, MLOAD_NO_OFFSET, refs[i].name, refs[i].name_len,
                                             "tensor '%s' is in two files (%s and %s)", refs[i].name,
                                             m->paths[refs[k].file] ? m->paths[refs[k].file] : "a source",
                                             m->paths[refs[i].file] ? m->paths[refs[i].file] : "a source");
                if (err) err->file_index = refs[i].file;
                mload__free(a, refs, (total + 1) * sizeof(mload__mref), sizeof(void *));
                return r;
            }
            refs[k] = refs[i]; /* later file replaces */
            continue;
        }
        if (i < total) refs[++k] = refs[i];
    }
    m->nstored = total ? k + 1 : 0;
    m->stored = MLOAD__CAST(mload_tensor *, mload__malloc(a, (m->nstored + 1) * sizeof(mload_tensor), sizeof(void *)));
    if (!m->stored) {
        mload__free(a, refs, (total + 1) * sizeof(mload__mref), sizeof(void *));
        return mload__oom(err);
    }
    for (i = 0; i < m->nstored; ++i) {
        const mload_file *f = m->files[refs[i].file];
        m->stored[i] = f->tensors[refs[i].idx];
        m->stored[i].file_index = refs[i].file;
        if (f->stride_of && f->stride_of[refs[i].idx] != SIZE_MAX) { /* a non-contiguous view: read by gathering */
            if (!m->strides) {
                m->strides = MLOAD__CAST(const uint64_t **, mload__malloc(a, m->nstored * sizeof(uint64_t *), sizeof(void *)));
                if (!m->strides) {
                    mload__free(a, refs, (total + 1) * sizeof(mload__mref), sizeof(void *));
                    return mload__oom(err);
                }
                memset(MLOAD__PCAST(void *, m->strides), 0, m->nstored * sizeof(uint64_t *));
            }
            m->strides[i] = mload_file_strides(f, &f->tensors[refs[i].idx]);
        } else if (m->strides) {
            m->strides[i] = NULL;
        }
    }
    mload__free(a, refs, (total + 1) * sizeof(mload__mref), sizeof(void *));
    m->tensors = m->stored;
    m->count = m->nstored;
    if (!mload__recipes_stored(a, &m->rc, m->stored, m->nstored)) return mload__oom(err);
    return MLOAD_OK;
}

/* The name space served: the converted one, or the stored tensors. */
static mload_result mload__map_name_space(mload_map *m, const struct mload_converter *c, mload_error *err) {
    size_t i, dup;
#if !defined(MODELLOAD_NO_CONVERTER)
    if (c) {
        mload_result r = mload__converter_build(c, m->stored, m->nstored, &m->alloc, &m->rc, &m->tensors, &m->recipe_of,
                                                &m->count, err);
        if (r != MLOAD_OK) return r;
        for (i = 0; i < m->count && m->strides; ++i) { /* a strided view under its own name is not direct either */
            mload_tensor *t = &m->tensors[i];
            const mload__recipe *v = &m->rc.vts[m->recipe_of ? m->recipe_of[i] : i];
            if (t->file_index != UINT32_MAX && m->strides[m->rc.pieces[v->piece0].base]) {
                t->file_index = UINT32_MAX;
                t->offset = 0;
            }
        }
    }
#else
    if (c) return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, NULL, 0, "built with MODELLOAD_NO_CONVERTER");
#endif
    m->data_size = 0;
    for (i = 0; i < m->count; ++i) m->data_size += m->tensors[i].nbytes;
    m->index.seed = mload__hash(0x13198A2E03707344ull, MLOAD__PCAST(const char *, &m), sizeof(m));
    if (!mload__index_build(&m->alloc, &m->index, m->tensors, sizeof(mload_tensor), m->count, NULL, 0, &dup)) return mload__oom(err);
    return MLOAD_OK;
}

#if !defined(MODELLOAD_NO_FINGERPRINT)
static mload_result mload__fingerprint(const mload_allocator *a, const mload_tensor *ts, size_t count, uint32_t flags, char out[33],
                                       mload_error *err);
#endif

/* the converter: that of the first models entry matching the files'
   fingerprint, else the desc's own */
static mload_result mload__map_match(mload_map *m, const mload_map_desc *desc, const struct mload_converter **conv, mload_error *err) {
    *conv = desc->converter;
    m->model = UINT64_MAX;
    if (!desc->model_count) return MLOAD_OK;
    if (!desc->models) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "map: model_count without models");
#if defined(MODELLOAD_NO_FINGERPRINT)
    return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, NULL, 0, "models need module 9 (built with MODELLOAD_NO_FINGERPRINT)");
#else
    {
        char fp[2][33];
        int have[2] = {0, 0};
        uint64_t k;
        for (k = 0; k < desc->model_count; ++k) {
            const mload_model_entry *me = &desc->models[k];
            int v = (me->flags & MLOAD_FP_NO_SHAPES) != 0;
            mload_result r;
            if ((me->flags & ~MLOAD__CAST(uint32_t, MLOAD_FP_NO_SHAPES | MLOAD_FP_STORED_NAMES)) || !me->fingerprint)
                return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "models entry %U: unknown flags or no fingerprint", k);
            if (!have[v] && (r = mload__fingerprint(&m->alloc, m->stored, m->nstored, me->flags, fp[v], err)) != MLOAD_OK) return r;
            have[v] = 1;
            if (strncmp(me->fingerprint, fp[v], 33) == 0) {
                m->model = k;
                *conv = me->converter;
                return MLOAD_OK;
            }
        }
    }
    return MLOAD_OK;
#endif
}

#if !defined(MODELLOAD_NO_FINGERPRINT)
MODELLOAD_API uint64_t mload_map_model(const mload_map *m) { return m ? m->model : UINT64_MAX; }
#endif

/* ---- LoRA adapters: pairs recognised by name, matched to base tensors,
   merged on read (mload__read_merged) ---- */
enum { MLOAD__LORA_A, MLOAD__LORA_B, MLOAD__LORA_ALPHA };
enum { MLOAD__LORA_PEFT = 1, MLOAD__LORA_KOHYA, MLOAD__LORA_OLD };
typedef struct mload__lent { const char *module; size_t mlen; int layout, role; const mload_tensor *t; } mload__lent;
typedef struct mload__lpair { const char *module; size_t mlen; int layout; const mload_tensor *a, *b, *alpha; } mload__lpair;
typedef struct mload__lmatch { size_t base; mload__lterm term; size_t order; } mload__lmatch;

static int mload__lent_cmp(const void *x, const void *y) {
    const mload__lent *a = MLOAD__CAST(const mload__lent *, x), *b = MLOAD__CAST(const mload__lent *, y);
    int c = mload__name_cmp(a->module, a->mlen, b->module, b->mlen);
    return c ? c : (a->layout != b->layout ? (a->layout < b->layout ? -1 : 1) : (a->role < b->role ? -1 : a->role > b->role));
}
static int mload__lmatch_cmp(const void *x, const void *y) {
    const mload__lmatch *a = MLOAD__CAST(const mload__lmatch *, x), *b = MLOAD__CAST(const mload__lmatch *, y);
    if (a->base != b->base) return a->base < b->base ? -1 : 1;
    return a->order < b->order ? -1 : (a->order > b->order);
}

/* an adapter tensor's layout, role and module (its name less the suffix); 0 when none fits */
static int mload__lora_classify(const mload_tensor *t, mload__lent *e) {
    static const struct { const char *suffix; int layout, role; } kinds[] = {
        {".lora_A.weight", MLOAD__LORA_PEFT, MLOAD__LORA_A},     {".lora_B.weight", MLOAD__LORA_PEFT, MLOAD__LORA_B},
        {".lora_down.weight", MLOAD__LORA_KOHYA, MLOAD__LORA_A}, {".lora_up.weight", MLOAD__LORA_KOHYA, MLOAD__LORA_B},
        {".alpha", MLOAD__LORA_KOHYA, MLOAD__LORA_ALPHA},        {".lora.down.weight", MLOAD__LORA_OLD, MLOAD__LORA_A},
        {".lora.up.weight", MLOAD__LORA_OLD, MLOAD__LORA_B}};
    size_t i;
    for (i = 0; i < sizeof kinds / sizeof kinds[0]; ++i) {
        size_t k = strlen(kinds[i].suffix);
        if (t->name_len > k && memcmp(t->name + t->name_len - k, kinds[i].suffix, k) == 0) {
            e->module = t->name;
            e->mlen = t->name_len - k;
            e->layout = kinds[i].layout;
            e->role = kinds[i].role;
            e->t = t;
            return 1;
        }
    }
    return 0;
}

/* the base tensor name a pair targets, before rules: MODULE.weight; kohya:
   MODULE less lora_unet_ / lora_te_ / ... (underscores kept); old
   diffusers: X.processor.Y_lora -> X.Y. Written to out (room for the
   module + 8 bytes, NUL-terminated); returns its length. */
static size_t mload__lora_target(const mload__lpair *p, char *out) {
    static const char *const kohya[] = {"lora_unet_", "lora_te1_", "lora_te2_", "lora_te_", "lora_transformer_", "lora_"};
    const char *s = p->module;
    size_t n = p->mlen, i, k;
    if (p->layout == MLOAD__LORA_KOHYA)
        for (i = 0; i < sizeof kohya / sizeof kohya[0]; ++i) {
            k = strlen(kohya[i]);
            if (n > k && memcmp(s, kohya[i], k) == 0) { s += k; n -= k; break; }
        }
    memcpy(out, s, n);
    if (p->layout == MLOAD__LORA_OLD && n > 5 && memcmp(out + n - 5, "_lora", 5) == 0) {
        size_t j;
        for (j = 0; j + 11 <= n - 5; ++j)
            if (memcmp(out + j, ".processor.", 11) == 0) { /* X.processor.Y_lora -> X.Y */
                memmove(out + j + 1, out + j + 11, n - 5 - (j + 11));
                n = n - 5 - 10;
                break;
            }
    }
    memcpy(out + n, ".weight", 8);
    return n + 7;
}

/* the name with dots as underscores (kohya's spelling of base names) */
static void mload__underscored(const char *s, size_t n, char *out) {
    size_t i;
    for (i = 0; i < n; ++i) out[i] = s[i] == '.' ? '_' : s[i];
}

typedef struct mload__uref { const char *name; size_t len; size_t idx; } mload__uref; /* an underscored base name */
static int mload__uref_cmp(const void *x, const void *y) {
    const mload__uref *a = MLOAD__CAST(const mload__uref *, x), *b = MLOAD__CAST(const mload__uref *, y);
    return mload__name_cmp(a->name, a->len, b->name, b->len);
}

/* base tensor named `name` (exactly; kohya: by its underscored spelling):
   its index, SIZE_MAX when none, SIZE_MAX - 1 when several spell so */
static size_t mload__lora_base(const mload_map *m, const mload__uref *u, const char *name, size_t len, int kohya) {
    const mload_tensor *t = mload_map_find_n(m, name, len);
    size_t lo = 0, hi = m->count;
    if (t) return MLOAD__CAST(size_t, t - m->tensors);
    if (!kohya || !u) return SIZE_MAX;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mload__name_cmp(u[mid].name, u[mid].len, name, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo == m->count || mload__name_cmp(u[lo].name, u[lo].len, name, len) != 0) return SIZE_MAX;
    if (lo + 1 < m->count && mload__name_cmp(u[lo + 1].name, u[lo + 1].len, name, len) == 0) return SIZE_MAX - 1;
    return u[lo].idx;
}

/* a pair against its base tensor: shapes, ranks, dtypes */
static mload_result mload__lora_check(const mload__lpair *p, const mload_tensor *base, mload_error *err) {
    const mload_tensor *a = p->a, *b = p->b;
    uint32_t d;
    if (mload_dtype_kind(a->dtype) != MLOAD_KIND_FLOAT || mload_dtype_kind(b->dtype) != MLOAD_KIND_FLOAT ||
        mload_dtype_kind(base->dtype) != MLOAD_KIND_FLOAT)
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, a->name, a->name_len,
                           "LoRA '%S' or its base '%S' is not a floating-point tensor", a->name, a->name_len, base->name, base->name_len);
    if (a->rank < 2 || b->rank != a->rank || b->shape[1] != a->shape[0])
        return mload__fail(err, MLOAD_ERR_SHAPE_MISMATCH, MLOAD_NO_OFFSET, a->name, a->name_len,
                           "LoRA '%S' (rank %U) and '%S' (rank %U) do not make a pair", a->name, a->name_len,
                           a->rank ? a->shape[0] : 0, b->name, b->name_len, b->rank >= 2 ? b->shape[1] : 0);
    if ((base->rank != 2 && base->rank != 4) || base->rank != a->rank || b->shape[0] != base->shape[0])
        return mload__fail(err, MLOAD_ERR_SHAPE_MISMATCH, MLOAD_NO_OFFSET, a->name, a->name_len,
                           "LoRA '%S' x '%S' does not fit base tensor '%S'", b->name, b->name_len, a->name, a->name_len,
                           base->name, base->name_len);
    for (d = 1; d < base->rank; ++d)
        if (a->shape[d] != base->shape[d] || (d >= 2 && b->shape[d] != 1))
            return mload__fail(err, MLOAD_ERR_SHAPE_MISMATCH, MLOAD_NO_OFFSET, a->name, a->name_len,
                               "LoRA '%S' x '%S' does not fit base tensor '%S'", b->name, b->name_len, a->name, a->name_len,
                               base->name, base->name_len);
    return MLOAD_OK;
}

/* Adapter li: opened, its pairs found, named and checked; each match appended to *mt. */
static mload_result mload__lora_pairs(mload_map *m, const mload_lora *lo, uint64_t li, mload__lmatch **mt, size_t *nmt,
                                      size_t *mcap, const mload__uref *u, mload_error *err) {
    const mload_allocator *a = &m->alloc;
    mload_map_desc d;
    mload_map *am = NULL;
    mload__lent *ents = NULL;
    mload__lpair *pairs = NULL;
    mload_tensor *fake = NULL, *conv = NULL;
    size_t *conv_of = NULL, nconv = 0, ne = 0, np = 0, i, j;
    char *names = NULL, *un = NULL; /* the target names; one underscored name at a time */
    size_t names_cap = 1, names_n = 0, un_cap = 0;
    mload__recipes rc;
    mload_lora_info *info = &m->lora_info[li];
    int lenient = (lo->flags & MLOAD_LORA_LENIENT) != 0;
    mload_result r = MLOAD_OK;
    memset(&rc, 0, sizeof rc);
    memset(&d, 0, sizeof d);
    if (!lo->path) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "LoRA %U: no path", li);
    d.paths = &lo->path;
    d.path_count = 1;
    d.allocator = m->alloc;
    if ((r = mload_map_open(&d, &am, err)) != MLOAD_OK) return r;
    m->loras[li] = am;
    ents = MLOAD__CAST(mload__lent *, mload__malloc(a, (am->count + 1) * sizeof(mload__lent), sizeof(void *)));
    pairs = MLOAD__CAST(mload__lpair *, mload__malloc(a, (am->count + 1) * sizeof(mload__lpair), sizeof(void *)));
    if (!ents || !pairs) { r = mload__oom(err); goto done; }
#define MLOAD__LORA_LEFT(nm, nl, ...)                                                                              \
    do {                                                                                                           \
        if (!lenient) { r = mload__fail(err, __VA_ARGS__); goto done; }                                            \
        if (!info->unmatched++) info->first_unmatched = (nm);                                                      \
        (void)(nl);                                                                                                \
    } while (0)
    for (i = 0; i < am->count; ++i) {
        const mload_tensor *t = &am->tensors[i];
        if (mload__lora_classify(t, &ents[ne])) ne++;
        else MLOAD__LORA_LEFT(t->name, t->name_len, MLOAD_ERR_NOT_FOUND, MLOAD_NO_OFFSET, t->name, t->name_len,
                              "LoRA tensor '%S' is in no known layout (lora_A/lora_B, lora_down/lora_up/alpha, lora.down/lora.up)",
                              t->name, t->name_len);
    }
    qsort(ents, ne, sizeof(mload__lent), mload__lent_cmp);
    for (i = 0; i < ne; i = j) { /* a module's entries: A, B, alpha */
        mload__lpair *p = &pairs[np];
        memset(p, 0, sizeof *p);
        p->module = ents[i].module;
        p->mlen = ents[i].mlen;
        p->layout = ents[i].layout;
        for (j = i; j < ne && ents[j].layout == p->layout && mload__name_cmp(ents[j].module, ents[j].mlen, p->module, p->mlen) == 0; ++j) {
            const mload_tensor **slot = ents[j].role == MLOAD__LORA_A ? &p->a : ents[j].role == MLOAD__LORA_B ? &p->b : &p->alpha;
            *slot = ents[j].t;
        }
        if (p->a && p->b) { np++; continue; }
        MLOAD__LORA_LEFT(ents[i].t->name, ents[i].t->name_len, MLOAD_ERR_NOT_FOUND, MLOAD_NO_OFFSET, ents[i].t->name,
                         ents[i].t->name_len, "LoRA '%S' has no %s", ents[i].t->name, ents[i].t->name_len,
                         p->a ? "up (B) half" : "down (A) half");
    }
    /* target names, through the converter when given: fake tensors named MODULE.weight */
    for (i = 0; i < np; ++i) names_cap += pairs[i].mlen + 8u; /* a target is at most its module + ".weight" */
    fake = MLOAD__CAST(mload_tensor *, mload__malloc(a, (np + 1) * sizeof(mload_tensor), sizeof(void *)));
    names = MLOAD__CAST(char *, mload__malloc(a, names_cap, 1));
    if (!fake || !names) { r = mload__oom(err); goto done; }
    for (i = 0; i < np; ++i) {
        size_t n = mload__lora_target(&pairs[i], names + names_n);
        memset(&fake[i], 0, sizeof(mload_tensor));
        fake[i].name = names + names_n;
        fake[i].name_len = n;
        fake[i].dtype = MLOAD_DTYPE_F32;
        fake[i].shape = &pairs[i].a->numel;
        fake[i].rank = 1;
        fake[i].numel = pairs[i].a->numel;
        fake[i].nbytes = pairs[i].a->numel * 4u;
        fake[i].file_index = UINT32_MAX;
        names_n += n + 1;
    }
    conv = fake;
    nconv = np;
#if !defined(MODELLOAD_NO_CONVERTER)
    if (lo->converter && np) {
        if (!mload__recipes_stored(a, &rc, fake, np)) { r = mload__oom(err); goto done; }
        if ((r = mload__converter_build(lo->converter, fake, np, a, &rc, &conv, &conv_of, &nconv, err)) != MLOAD_OK) goto done;
    }
#else
    if (lo->converter) { r = mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, NULL, 0, "built with MODELLOAD_NO_CONVERTER"); goto done; }
#endif
    for (i = 0; i < nconv; ++i) { /* each target: its pair, its base tensor */
        size_t pi = i, bi;
        const mload__lpair *p;
        const mload_tensor *base;
        double alpha;
        float scale;
        if (conv != fake) {
            const mload__recipe *v = &rc.vts[conv_of ? conv_of[i] : i];
            if (v->transpose || v->npieces != 1 || rc.pieces[v->piece0].base == MLOAD__ZERO_PIECE) {
                r = mload__fail(err, MLOAD_ERR_INVALID_CONVERTER, MLOAD_NO_OFFSET, conv[i].name, conv[i].name_len,
                                "LoRA rules may only rename, not compute '%S'", conv[i].name, conv[i].name_len);
                goto done;
            }
            pi = rc.pieces[v->piece0].base;
        }
        p = &pairs[pi];
        {
            size_t ul = conv[i].name_len;
            if (!mload__reserve(a, MLOAD__PCAST(void **, &un), &un_cap, ul + 1, 1)) { r = mload__oom(err); goto done; }
            mload__underscored(conv[i].name, ul, un);
            bi = mload__lora_base(m, u, p->layout == MLOAD__LORA_KOHYA ? un : conv[i].name, ul, p->layout == MLOAD__LORA_KOHYA);
            if (bi >= SIZE_MAX - 1 && p->layout == MLOAD__LORA_KOHYA) { /* none or several spelled so: the name as it is */
                size_t exact = mload__lora_base(m, NULL, conv[i].name, ul, 0);
                if (exact != SIZE_MAX) bi = exact;
            }
        }
        if (bi == SIZE_MAX - 1) {
            r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, p->a->name, p->a->name_len,
                            "LoRA '%S' matches several base tensors", p->a->name, p->a->name_len);
            goto done;
        }
        if (bi == SIZE_MAX) {
            MLOAD__LORA_LEFT(p->a->name, p->a->name_len, MLOAD_ERR_NOT_FOUND, MLOAD_NO_OFFSET, p->a->name, p->a->name_len,
                             "LoRA '%S' matches no base tensor (looked for '%S')", p->a->name, p->a->name_len, conv[i].name,
                             conv[i].name_len);
            continue;
        }
        base = &m->tensors[bi];
        if ((r = mload__lora_check(p, base, err)) != MLOAD_OK) {
            if (!lenient) goto done;
            r = MLOAD_OK;
            if (!info->unmatched++) info->first_unmatched = p->a->name;
            continue;
        }
        alpha = lo->alpha > 0 ? lo->alpha : MLOAD__CAST(double, p->a->shape[0]);
        if (p->alpha) {
            float al = 0;
            if (p->alpha->numel != 1 || (r = mload_map_read(am, p->alpha, MLOAD_DTYPE_F32, &al, 4, err)) != MLOAD_OK) {
                if (r == MLOAD_OK)
                    r = mload__fail(err, MLOAD_ERR_SHAPE_MISMATCH, MLOAD_NO_OFFSET, p->alpha->name, p->alpha->name_len,
                                    "LoRA alpha '%S' is not a scalar", p->alpha->name, p->alpha->name_len);
                goto done;
            }
            alpha = al;
        }
        scale = MLOAD__CAST(float, lo->scale * alpha / MLOAD__CAST(double, p->a->shape[0]));
        if (!mload__reserve(a, MLOAD__PCAST(void **, mt), mcap, *nmt + 1, sizeof(mload__lmatch))) { r = mload__oom(err); goto done; }
        (*mt)[*nmt].base = bi;
        (*mt)[*nmt].order = *nmt;
        (*mt)[*nmt].term.am = am;
        (*mt)[*nmt].term.a = p->a;
        (*mt)[*nmt].term.b = p->b;
        (*mt)[*nmt].term.rank = p->a->shape[0];
        (*mt)[*nmt].term.scale = scale;
        (*nmt)++;
        info->pairs++;
    }
#undef MLOAD__LORA_LEFT
done:
    if (conv != fake) mload__free(a, conv, (nconv + 1) * sizeof(mload_tensor), sizeof(void *));
    mload__free(a, conv_of, (nconv + 1) * sizeof(size_t), sizeof(void *));
    mload__recipes_free(a, &rc);
    mload__free(a, fake, (np + 1) * sizeof(mload_tensor), sizeof(void *));
    mload__free(a, names, names_cap, 1);
    mload__free(a, un, un_cap, 1);
    mload__free(a, ents, (am->count + 1) * sizeof(mload__lent), sizeof(void *));
    mload__free(a, pairs, (am->count + 1) * sizeof(mload__lpair), sizeof(void *));
    return r;
}

/* The adapters: opened, matched, and each base tensor they touch becomes a
   merge recipe over its own (no longer direct). */
static mload_result mload__map_loras(mload_map *m, const mload_lora *loras, uint64_t n, mload_error *err) {
    const mload_allocator *a = &m->alloc;
    mload__lmatch *mt = NULL;
    mload__uref *u = NULL;
    char *ubuf = NULL;
    size_t nmt = 0, mcap = 0, i, j, ulen = 0;
    mload_result r = MLOAD_OK;
    if (!loras) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "lora_count without loras");
    m->loras = MLOAD__CAST(mload_map **, mload__malloc(a, MLOAD__CAST(size_t, n) * sizeof(mload_map *), sizeof(void *)));
    m->lora_info = MLOAD__CAST(mload_lora_info *, mload__malloc(a, MLOAD__CAST(size_t, n) * sizeof(mload_lora_info), sizeof(void *)));
    if (!m->loras || !m->lora_info) {
        mload__free(a, m->loras, MLOAD__CAST(size_t, n) * sizeof(mload_map *), sizeof(void *));
        mload__free(a, m->lora_info, MLOAD__CAST(size_t, n) * sizeof(mload_lora_info), sizeof(void *));
        m->loras = NULL;
        m->lora_info = NULL;
        return mload__oom(err);
    }
    memset(m->loras, 0, MLOAD__CAST(size_t, n) * sizeof(mload_map *));
    memset(m->lora_info, 0, MLOAD__CAST(size_t, n) * sizeof(mload_lora_info));
    m->nloras = n;
    /* the base names spelled with underscores, sorted (kohya) */
    for (i = 0; i < m->count; ++i) ulen += m->tensors[i].name_len;
    u = MLOAD__CAST(mload__uref *, mload__malloc(a, (m->count + 1) * sizeof(mload__uref), sizeof(void *)));
    ubuf = MLOAD__CAST(char *, mload__malloc(a, ulen + 1, 1));
    if (!u || !ubuf) { r = mload__oom(err); goto done; }
    for (i = 0, ulen = 0; i < m->count; ++i) {
        mload__underscored(m->tensors[i].name, m->tensors[i].name_len, ubuf + ulen);
        u[i].name = ubuf + ulen;
        u[i].len = m->tensors[i].name_len;
        u[i].idx = i;
        ulen += m->tensors[i].name_len;
    }
    qsort(u, m->count, sizeof(mload__uref), mload__uref_cmp);
    for (i = 0; i < n && r == MLOAD_OK; ++i) {
        r = mload__lora_pairs(m, &loras[i], i, &mt, &nmt, &mcap, u, err);
        if (r != MLOAD_OK && err) err->file_index = MLOAD__CAST(uint32_t, i);
    }
    if (r != MLOAD_OK || nmt == 0) goto done;
    if (m->tensors == m->stored) { /* the name space gets its own table: merged tensors are not direct */
        mload_tensor *t = MLOAD__CAST(mload_tensor *, mload__malloc(a, (m->count + 1) * sizeof(mload_tensor), sizeof(void *)));
        size_t *of = MLOAD__CAST(size_t *, mload__malloc(a, (m->count + 1) * sizeof(size_t), sizeof(void *)));
        if (!t || !of) {
            mload__free(a, t, (m->count + 1) * sizeof(mload_tensor), sizeof(void *));
            mload__free(a, of, (m->count + 1) * sizeof(size_t), sizeof(void *));
            r = mload__oom(err);
            goto done;
        }
        memcpy(t, m->stored, m->count * sizeof(mload_tensor));
        for (i = 0; i < m->count; ++i) of[i] = i;
        m->tensors = t;
        m->recipe_of = of;
    }
    qsort(mt, nmt, sizeof(mload__lmatch), mload__lmatch_cmp);
    for (i = 0; i < nmt && r == MLOAD_OK; i = j) { /* one merge recipe per base tensor */
        mload_tensor *t = &m->tensors[mt[i].base];
        mload__recipe v;
        size_t vi;
        for (j = i; j < nmt && mt[j].base == mt[i].base; ++j) {}
        if (!mload__reserve(a, MLOAD__PCAST(void **, &m->rc.terms), &m->rc.t_cap, m->rc.nt + (j - i), sizeof(mload__lterm))) {
            r = mload__oom(err);
            break;
        }
        v = m->rc.vts[m->recipe_of[mt[i].base]];
        v.child = m->recipe_of[mt[i].base];
        v.transpose = 0;
        v.npieces = 0;
        v.dtype = t->dtype;
        v.src_dtype = MLOAD_DTYPE_F32;
        v.term0 = m->rc.nt;
        v.nterms = j - i;
        for (; i < j; ++i) m->rc.terms[m->rc.nt++] = mt[i].term;
        if ((vi = mload__recipe_add(a, &m->rc, &v)) == SIZE_MAX) { r = mload__oom(err); break; }
        m->recipe_of[mt[j - 1].base] = vi;
        t->file_index = UINT32_MAX;
        t->offset = 0;
    }
done:
    mload__free(a, mt, mcap * sizeof(mload__lmatch), sizeof(void *));
    mload__free(a, u, (m->count + 1) * sizeof(mload__uref), sizeof(void *));
    mload__free(a, ubuf, ulen + 1, 1);
    return r;
}

MODELLOAD_API mload_result mload_map_lora_info(const mload_map *m, uint64_t i, mload_lora_info *out) {
    if (!m || !out || i >= m->nloras) return MLOAD_ERR_INVALID_ARGUMENT;
    *out = m->lora_info[i];
    return MLOAD_OK;
}

MODELLOAD_API mload_result mload_map_open(const mload_map_desc *desc, mload_map **out, mload_error *err) {
    mload_map *m;
    mload_result r = MLOAD_OK;
    const struct mload_converter *conv = NULL;
    uint32_t i;
    if (out) *out = NULL;
    if (!desc || !out || (desc->path_count && !desc->paths) || (desc->source_count && !desc->sources) ||
        !mload__allocator_ok(&desc->allocator) || desc->path_count + (uint64_t)desc->source_count == 0 ||
        MLOAD__CAST(uint32_t, desc->duplicates) > MLOAD_DUP_LAST_WINS || MLOAD__CAST(uint32_t, desc->f8_overflow) > 1u ||
        MLOAD__CAST(uint32_t, desc->cast_read) > MLOAD_CAST_READ_VIEW) {
        if (desc && desc->sources)
            for (i = 0; i < desc->source_count; ++i) { mload_source s = desc->sources[i]; mload_source_close(&s); }
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                           "map: give at least one path or source, a valid duplicates policy, f8_overflow, cast_read and allocator");
    }
    m = MLOAD__CAST(mload_map *, mload__malloc(&desc->allocator, sizeof(mload_map), sizeof(void *)));
    if (!m) {
        for (i = 0; i < desc->source_count; ++i) { mload_source s = desc->sources[i]; mload_source_close(&s); }
        return mload__oom(err);
    }
    memset(m, 0, sizeof(*m));
    m->alloc = desc->allocator;
    m->dup_policy = MLOAD__CAST(uint32_t, desc->duplicates);
    m->f8_overflow = MLOAD__CAST(uint32_t, desc->f8_overflow);
    m->cast_views = desc->cast_read == MLOAD_CAST_READ_VIEW;
    m->threads = desc->threads;
    for (i = 0; i < desc->path_count && r == MLOAD_OK; ++i) {
        if (!desc->paths[i]) r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL path");
        else r = mload__map_add_any(m, desc->paths[i], err);
    }
    for (i = 0; i < desc->source_count; ++i) {
        if (r == MLOAD_OK) {
            mload_file_desc d;
            mload_file *f = NULL;
            memset(&d, 0, sizeof d);
            d.source = &desc->sources[i];
            d.allocator = m->alloc;
            r = mload_file_open(&d, &f, err); /* closes the source on failure */
            if (r == MLOAD_OK) r = mload__map_push(m, f, NULL, err);
            else mload__map_fail_file(err, m->nfiles, r);
        } else {
            mload_source s = desc->sources[i];
            mload_source_close(&s);
        }
    }
    if (r == MLOAD_OK) r = mload__map_build(m, err);
    if (r == MLOAD_OK) r = mload__map_match(m, desc, &conv, err);
    if (r == MLOAD_OK) r = mload__map_name_space(m, conv, err);
    if (r == MLOAD_OK && desc->lora_count) r = mload__map_loras(m, desc->loras, desc->lora_count, err);
    if (r != MLOAD_OK) {
        mload__map_free(m);
        return r;
    }
    *out = m;
    return MLOAD_OK;
}

MODELLOAD_API void mload_map_close(mload_map *m) {
    if (m) mload__map_free(m);
}

MODELLOAD_API uint64_t mload_map_count(const mload_map *m) { return m ? m->count : 0; }
MODELLOAD_API const mload_tensor *mload_map_tensor(const mload_map *m, uint64_t i) { return m ? mload__table_at(m->tensors, m->count, i) : NULL; }
MODELLOAD_API const mload_tensor *mload_map_find_n(const mload_map *m, const char *name, size_t len) { return m ? mload__table_find(&m->index, m->tensors, name, len) : NULL; }
MODELLOAD_API const mload_tensor *mload_map_find(const mload_map *m, const char *name) { return name ? mload_map_find_n(m, name, strlen(name)) : NULL; }
MODELLOAD_API uint64_t mload_map_find_prefix(const mload_map *m, const char *prefix, uint64_t *first) {
    size_t lo = 0, hi, pl, start;
    if (!m || !prefix) { if (first) *first = m ? m->count : 0; return 0; }
    pl = strlen(prefix);
    hi = m->count;
    while (lo < hi) { /* first name >= prefix */
        size_t mid = lo + (hi - lo) / 2;
        if (mload__name_cmp(m->tensors[mid].name, m->tensors[mid].name_len, prefix, pl) < 0) lo = mid + 1;
        else hi = mid;
    }
    start = lo;
    hi = m->count;
    while (lo < hi) { /* first name not starting with prefix */
        size_t mid = lo + (hi - lo) / 2;
        const mload_tensor *t = &m->tensors[mid];
        if (t->name_len >= pl && memcmp(t->name, prefix, pl) == 0) lo = mid + 1;
        else hi = mid;
    }
    if (first) *first = lo > start ? start : m->count;
    return lo - start;
}
MODELLOAD_API uint64_t mload_map_file_count(const mload_map *m) { return m ? m->nfiles : 0; }
MODELLOAD_API const mload_file *mload_map_file(const mload_map *m, uint64_t i) {
    return (m && i < m->nfiles) ? m->files[i] : NULL;
}
MODELLOAD_API const char *mload_map_file_path(const mload_map *m, uint64_t i) {
    return (m && i < m->nfiles) ? m->paths[i] : NULL;
}
MODELLOAD_API mload_f8_overflow mload_map_f8_overflow(const mload_map *m) {
    return m && m->f8_overflow ? MLOAD_F8_OVERFLOW_NONSAT : MLOAD_F8_OVERFLOW_SATURATE;
}
MODELLOAD_API uint64_t mload_map_data_size(const mload_map *m) { return m ? m->data_size : 0; }
MODELLOAD_API uint64_t mload_map_declared_size(const mload_map *m) { return m && m->has_declared ? m->declared : UINT64_MAX; }
MODELLOAD_API int mload_map_has_declared_size(const mload_map *m) { return m ? m->has_declared : 0; }

/* ---- reads ---- */

static int mload__map_owns(const mload_map *m, const mload_tensor *t) {
    uintptr_t b = MLOAD__PCAST(uintptr_t, m->tensors), p = MLOAD__PCAST(uintptr_t, t);
    return m->count && p >= b && p < b + m->count * sizeof(mload_tensor) && (p - b) % sizeof(mload_tensor) == 0;
}

/* Checks a read of elements [first, first + count) of t as `as` into
   dst_size bytes; sets the resolved dtype and the byte sizes. */
static mload_result mload__map_check(const mload_map *m, const mload_tensor *t, uint64_t first, uint64_t count,
                                     mload_dtype *as, uint64_t dst_size, const void *dst, uint64_t *src_bytes,
                                     uint64_t *dst_bytes, mload_error *err) {
    uint64_t sb, db;
    if (!m || !t || !mload__map_owns(m, t))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL map or a tensor of another map");
    if (*as == MLOAD_DTYPE_INVALID) *as = t->dtype;
    if (!mload__dtype_valid(*as))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len, "invalid dtype");
    if (!mload_cast_supported(*as, t->dtype))
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s': no conversion from %s to %s", t->name, mload__dtypes[t->dtype].name,
                           mload__dtypes[*as].name);
    if (first > t->numel || count > t->numel - first)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s': elements [%U, +%U) are outside its %U", t->name, first, count, t->numel);
    sb = mload__dtypes[t->dtype].bits;
    db = mload__dtypes[*as].bits;
    /* numel * bits fits in 64 bits (checked at open), so these cannot overflow */
    if ((first * sb) % 8u || (count * sb) % 8u || (count * db) % 8u)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s': a range of a sub-byte dtype must start and end on whole bytes", t->name);
    *src_bytes = count * sb / 8u;
    *dst_bytes = db <= sb ? count * db / 8u : count * (db / 8u);
    if (db > sb && count && *dst_bytes / count != db / 8u)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len, "size overflow");
    if (dst_size < *dst_bytes || (!dst && *dst_bytes))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s': needs %U bytes as %s, the buffer has %U", t->name, *dst_bytes,
                           mload__dtypes[*as].name, dst_size);
    if (*dst_bytes > SIZE_MAX || *src_bytes > SIZE_MAX)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len, "range too large for this platform");
    return MLOAD_OK;
}

/* a reader of this map's recipes */
static mload__reader mload__map_reader(const mload_map *m, unsigned char *scratch, size_t scratch_size, mload_error *err) {
    mload__reader rd;
    rd.rc = &m->rc;
    rd.stored = m->stored;
    rd.files = m->files;
    rd.alloc = &m->alloc;
    rd.f8 = m->f8_overflow;
    rd.views = m->cast_views;
    rd.strides = m->strides;
    rd.scratch = scratch;
    rd.scratch_size = scratch_size;
    rd.err = err;
    return rd;
}

static size_t mload__map_recipe(const mload_map *m, const mload_tensor *t) {
    size_t i = MLOAD__CAST(size_t, t - m->tensors);
    return m->recipe_of ? m->recipe_of[i] : i;
}

/* elements [first, first + count) of map tensor t (checked) into dst as `as` */
static mload_result mload__map_read_elems(const mload_map *m, const mload_tensor *t, uint64_t first, uint64_t count,
                                          mload_dtype as, unsigned char *dst, unsigned char *scratch, size_t scratch_size,
                                          mload_error *err) {
    mload__reader rd = mload__map_reader(m, scratch, scratch_size, err);
    return mload__read_recipe(&rd, mload__map_recipe(m, t), first, count, as, dst, t);
}

/* tensors that can only be read whole (transposes) */
static int mload__whole_only(const mload_map *m, const mload_tensor *t) {
    return m->rc.vts[mload__map_recipe(m, t)].transpose != 0;
}

MODELLOAD_API int mload_map_is_direct(const mload_map *m, const mload_tensor *t) {
    if (!m || !t || !mload__map_owns(m, t)) return 0;
    if (m->strides && m->tensors == m->stored && m->strides[t - m->stored]) return 0; /* a PyTorch view: gathered */
    return t->file_index != UINT32_MAX;
}

#define MLOAD__SCRATCH MLOAD__CAST_STEP

MODELLOAD_API mload_result mload_map_read_range(const mload_map *m, const mload_tensor *t, uint64_t first, uint64_t count,
                                                mload_dtype as, void *dst, uint64_t dst_size, mload_error *err) {
    uint64_t sbytes = 0, dbytes = 0;
    unsigned char stack[4096], *scratch = stack;
    size_t ss = sizeof stack;
    mload_result r = mload__map_check(m, t, first, count, &as, dst_size, dst, &sbytes, &dbytes, err);
    if (r != MLOAD_OK || count == 0) return r;
    if (as != t->dtype && sbytes > sizeof stack) {
        ss = sbytes < MLOAD__SCRATCH ? MLOAD__CAST(size_t, sbytes) : MLOAD__SCRATCH;
        scratch = MLOAD__CAST(unsigned char *, mload__malloc(&m->alloc, ss, 64));
        if (!scratch) return mload__oom(err);
    }
    r = mload__map_read_elems(m, t, first, count, as, MLOAD__CAST(unsigned char *, dst), scratch, ss, err);
    if (scratch != stack) mload__free(&m->alloc, scratch, ss, 64);
    return r;
}

MODELLOAD_API mload_result mload_map_read(const mload_map *m, const mload_tensor *t, mload_dtype as, void *dst,
                                          uint64_t dst_size, mload_error *err) {
    return mload_map_read_range(m, t, 0, t ? t->numel : 0, as, dst, dst_size, err);
}

MODELLOAD_API mload_result mload_map_read_rows(const mload_map *m, const mload_tensor *t, uint64_t row_begin,
                                               uint64_t row_count, mload_dtype as, void *dst, uint64_t dst_size,
                                               mload_error *err) {
    uint64_t per_row;
    if (!t || t->rank == 0)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t ? t->name : NULL, t ? t->name_len : 0,
                           "row reads need a tensor of rank >= 1");
    if (row_begin > t->shape[0] || row_count > t->shape[0] - row_begin)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s': rows [%U, +%U) are outside its %U", t->name, row_begin, row_count, t->shape[0]);
    per_row = t->shape[0] ? t->numel / t->shape[0] : 0;
    return mload_map_read_range(m, t, row_begin * per_row, row_count * per_row, as, dst, dst_size, err);
}

MODELLOAD_API void mload_split_flat(uint64_t numel, uint64_t rank, uint64_t world, uint64_t *first, uint64_t *count,
                                    uint64_t *padded) {
    uint64_t per, f;
    if (world == 0) world = 1;
    per = numel / world + (numel % world ? 1u : 0u);
    f = rank < world ? rank * per : numel;
    if (f > numel) f = numel;
    if (first) *first = f;
    if (count) *count = numel - f < per ? numel - f : per;
    if (padded) *padded = rank < world ? per : 0;
}

MODELLOAD_API void mload_split_rows(uint64_t rows, uint64_t rank, uint64_t world, uint64_t *begin, uint64_t *count) {
    uint64_t base, rem, b, c;
    if (world == 0) world = 1;
    base = rows / world;
    rem = rows % world;
    if (rank >= world) { b = rows; c = 0; }
    else {
        c = base + (rank < rem ? 1u : 0u);
        b = rank * base + (rank < rem ? rank : rem);
    }
    if (begin) *begin = b;
    if (count) *count = c;
}

MODELLOAD_API mload_result mload_map_read_alloc(const mload_map *m, const mload_tensor *t, mload_dtype as, void **out,
                                                uint64_t *out_size, mload_error *err) {
    uint64_t sbytes = 0, dbytes = 0;
    void *p;
    mload_result r;
    if (out) *out = NULL;
    if (out_size) *out_size = 0;
    if (!out || !out_size) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL out");
    r = mload__map_check(m, t, 0, t ? t->numel : 0, &as, UINT64_MAX, out, &sbytes, &dbytes, err);
    if (r != MLOAD_OK) return r;
    p = mload__malloc(&m->alloc, MLOAD__CAST(size_t, dbytes ? dbytes : 1), 64);
    if (!p) return mload__oom(err);
    r = mload_map_read(m, t, as, p, dbytes, err);
    if (r != MLOAD_OK) {
        mload__free(&m->alloc, p, MLOAD__CAST(size_t, dbytes ? dbytes : 1), 64);
        return r;
    }
    *out = p;
    *out_size = dbytes;
    return MLOAD_OK;
}

MODELLOAD_API void mload_map_free_buffer(const mload_map *m, void *p, uint64_t size) {
    if (m && p) mload__free(&m->alloc, p, MLOAD__CAST(size_t, size ? size : 1), 64);
}

MODELLOAD_API mload_result mload_view_open(const mload_map *m, const mload_tensor *t, mload_view *out, mload_error *err) {
    const mload_source *src;
    mload_result r;
    if (out) memset(out, 0, sizeof(*out));
    if (!m || !t || !out || !mload__map_owns(m, t))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL argument or a tensor of another map");
    if (!mload_map_is_direct(m, t))
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s' is computed by the converter: read it instead", t->name);
    src = &m->files[t->file_index]->src;
    if (!src->view)
        return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, t->name, t->name_len,
                           "tensor '%s': its source offers no views", t->name);
    r = src->view(src->user, t->offset, t->nbytes, out);
    if (r != MLOAD_OK) {
        memset(out, 0, sizeof(*out));
        return mload__fail(err, r, t->offset, t->name, t->name_len, "tensor '%s': the source could not map it", t->name);
    }
    return MLOAD_OK;
}

MODELLOAD_API void mload_view_close(mload_view *v) {
    if (!v) return;
    if (v->release) v->release(v);
    memset(v, 0, sizeof(*v));
}

/* ==========================================================================
   8. BULK LOADS AND BINDING                                         >>bulk
   threaded loads with progress, cancel and O_DIRECT bounce buffers; binding a program's parameters
   ========================================================================== */

/* where a device load's chunks go: a device's upload and wait, its host
   memory for the staging (host_alloc NULL: the map's allocator) and its
   failure detail (module 11 fills it from an mload_device) */
typedef struct mload__put {
    mload_result (*upload)(void *user, void *dst, const void *src, uint64_t size, uint64_t *fence);
    mload_result (*wait)(void *user, uint64_t fence);
    mload_result (*host_alloc)(void *user, uint64_t size, void **ptr);
    void (*host_free)(void *user, void *ptr, uint64_t size);
    const char *(*detail)(void *user);
    void *user;
} mload__put;

typedef struct mload__job {
    const mload_map *m;
    mload_load_item *items;
    uint64_t n;
    uint64_t chunk_bytes;
    mload_io io;
    mload_progress_fn progress;
    void *progress_user;
    /* optional (device loads): each chunk is read into one of the thread's
       two staging buffers of stage_bytes, then handed to dev->upload, whose
       fence is waited for before that buffer is refilled */
    const struct mload__put *dev;
    uint64_t stage_bytes;
    /* shared state, under mu */
    uint64_t next_item, next_elem, done_bytes, total_bytes;
    int stop;
    mload_result result;
    mload_error err;
    mload__mutex mu;
} mload__job;

static uint64_t mload__item_count(const mload_load_item *it) { return it->count ? it->count : it->tensor->numel - it->first; }

/* O_DIRECT reads go through the source's read_direct capability
   (ctx: mload__direct_ctx); offsets are the file's. The aligned middle of a
   range is read straight into the destination: in place where the
   destination is aligned like the file (address = offset modulo
   MLOAD_DIRECT_ALIGN), else at the aligned address just below its place
   and moved up by less than a block (the copy a bounce buffer would cost,
   without its memory). Only the unaligned head and tail, and ranges
   without a whole block, pass through the small bounce buffer. */
typedef struct mload__direct_ctx { const mload_source *src; unsigned char *bounce; size_t bounce_size; } mload__direct_ctx;

/* the bounce buffer of one bulk-load thread (MLOAD_IO_DIRECT): a head or a
   tail (less than two blocks each) in one read */
#define MLOAD__BOUNCE (4u * MLOAD_DIRECT_ALIGN)

/* [off, off + size) through the bounce buffer */
static mload_result mload__direct_bounce(const mload__direct_ctx *c, uint64_t off, unsigned char *d, uint64_t size) {
    while (size) {
        uint64_t a0 = off - off % MLOAD_DIRECT_ALIGN, lead = off - a0, take;
        uint64_t alen = (lead + size + MLOAD_DIRECT_ALIGN - 1) / MLOAD_DIRECT_ALIGN * MLOAD_DIRECT_ALIGN;
        size_t got = 0;
        mload_result r;
        if (alen > c->bounce_size) alen = c->bounce_size;
        r = c->src->read_direct(c->src->user, a0, c->bounce, MLOAD__CAST(size_t, alen), &got);
        if (r != MLOAD_OK) return r;
        if (got <= lead) return MLOAD_ERR_IO;
        take = got - lead < size ? got - lead : size;
        memcpy(d, c->bounce + lead, MLOAD__CAST(size_t, take));
        d += take;
        off += take;
        size -= take;
    }
    return MLOAD_OK;
}

static mload_result mload__direct_raw(const void *ctx, uint64_t off, void *dst, uint64_t size) {
    const mload__direct_ctx *c = MLOAD__CAST(const mload__direct_ctx *, ctx);
    const uint64_t al = MLOAD_DIRECT_ALIGN;
    unsigned char *d = MLOAD__CAST(unsigned char *, dst), *m;
    uint64_t f0 = (off + al - 1) / al * al, f1 = (off + size) / al * al, shift, len;
    size_t got = 0;
    mload_result r;
    if (f1 < f0 + al) return mload__direct_bounce(c, off, d, size);
    /* the middle [f0, f1) goes to m, aligned, at most a block below its place */
    m = d + (f0 - off);
    shift = MLOAD__PCAST(uintptr_t, m) % al;
    m -= shift;
    if (m < d) { /* no room below: start a block later */
        m += al;
        f0 += al;
        if (f1 < f0 + al) return mload__direct_bounce(c, off, d, size);
    }
    len = f1 - f0 < (MLOAD__CAST(uint64_t, 1) << 30) ? f1 - f0 : MLOAD__CAST(uint64_t, 1) << 30;
    r = c->src->read_direct(c->src->user, f0, m, MLOAD__CAST(size_t, len), &got);
    if (r != MLOAD_OK) return r;
    if (got == 0) return MLOAD_ERR_IO;
    if (shift) memmove(m + shift, m, got);
    /* then the head (which the read may have overwritten), then the rest */
    if ((r = mload__direct_bounce(c, off, d, f0 - off)) != MLOAD_OK) return r;
    return mload__direct_raw(ctx, f0 + got, d + (f0 - off) + got, off + size - f0 - got);
}

/* one thread of a bulk load, with its own scratch and bounce buffers, and
   staging buffers for device loads */
typedef struct mload__bulk_thread {
    mload__job *job;
    unsigned char *scratch, *bounce, *stage[2];
    size_t scratch_size, bounce_size;
    uint64_t fence[2];
    int pending[2], turn;
} mload__bulk_thread;

/* elements [e0, e0 + k) of item it into dst (host memory) */
static mload_result mload__job_read(mload__job *j, const mload__bulk_thread *w, const mload_load_item *it, uint64_t e0, uint64_t k,
                                    unsigned char *dst, mload_error *err) {
    const mload_tensor *t = it->tensor;
    uint64_t sb = mload__dtypes[t->dtype].bits;
    if (j->io == MLOAD_IO_DIRECT && w->bounce && mload_map_is_direct(j->m, t) && j->m->files[t->file_index]->src.read_direct) {
        mload__direct_ctx c;
        mload_result r;
        c.src = &j->m->files[t->file_index]->src;
        c.bounce = w->bounce;
        c.bounce_size = w->bounce_size;
        r = mload__read_cast(mload__direct_raw, &c, t->offset + e0 * sb / 8u, t->dtype, k, it->as, dst, w->scratch, w->scratch_size,
                             j->m->f8_overflow);
        if (r == MLOAD_OK) return MLOAD_OK;
        if (r != MLOAD_ERR_UNSUPPORTED) { /* refused: the plain path below */
            mload__fail(err, MLOAD_ERR_IO, t->offset + e0 * sb / 8u, t->name, t->name_len, "tensor '%s': direct read failed", t->name);
            if (err) err->file_index = t->file_index;
            return MLOAD_ERR_IO;
        }
    }
    return mload__map_read_elems(j->m, t, e0, k, it->as, dst, w->scratch, w->scratch_size, err);
}

/* a staging buffer's copy to the device is complete */
static mload_result mload__job_settle(mload__job *j, mload__bulk_thread *w, int slot, mload_error *err) {
    if (!w->pending[slot]) return MLOAD_OK;
    w->pending[slot] = 0;
    if (j->dev->wait(j->dev->user, w->fence[slot]) == MLOAD_OK) return MLOAD_OK;
    return mload__with_detail(err, j->dev->detail, j->dev->user,
                              mload__fail(err, MLOAD_ERR_DEVICE, MLOAD_NO_OFFSET, NULL, 0, "waiting for a copy to the device failed"));
}

/* one chunk: elements [e0, e0 + k) of item it, straight into its dst, or
   through a staging buffer to the device */
static mload_result mload__job_chunk(mload__job *j, mload__bulk_thread *w, mload_load_item *it, uint64_t e0, uint64_t k,
                                     mload_error *err) {
    const mload_tensor *t = it->tensor;
    uint64_t db = mload__dtypes[it->as].bits;
    unsigned char *dst = MLOAD__CAST(unsigned char *, it->dst) + (e0 - it->first) * db / 8u;
    int slot = w->turn;
    mload_result r;
    if (!j->dev) return mload__job_read(j, w, it, e0, k, dst, err);
    w->turn ^= 1;
    if ((r = mload__job_settle(j, w, slot, err)) != MLOAD_OK) return r;
    if ((r = mload__job_read(j, w, it, e0, k, w->stage[slot], err)) != MLOAD_OK) return r;
    if (j->dev->upload(j->dev->user, dst, w->stage[slot], k * db / 8u, &w->fence[slot]) != MLOAD_OK)
        return mload__with_detail(err, j->dev->detail, j->dev->user,
                                  mload__fail(err, MLOAD_ERR_DEVICE, MLOAD_NO_OFFSET, t->name, t->name_len,
                                              "tensor '%s': the copy of %U bytes to the device failed", t->name, k * db / 8u));
    w->pending[slot] = 1;
    return MLOAD_OK;
}

/* the first error of the load, or cancellation, stops it (j->mu held) */
static void mload__job_failed(mload__job *j, mload_result r, const mload_error *e) {
    if (j->result == MLOAD_OK) { j->result = r; j->err = *e; }
    j->stop = 1;
}

/* elements per chunk of item it (UINT64_MAX: read whole) */
static uint64_t mload__chunk_elems(const mload__job *j, const mload_load_item *it) {
    uint64_t per = j->chunk_bytes * 8u / mload__dtypes[it->tensor->dtype].bits;
    if (mload__whole_only(j->m, it->tensor)) return UINT64_MAX;
    return per < 8u ? 8u : per - per % 8u; /* whole bytes, even for sub-byte dtypes */
}

static void mload__job_run(mload__job *j, mload__bulk_thread *w) {
    mload_error e;
    mload_result r;
    int slot;
    for (;;) {
        mload_load_item *it;
        uint64_t e0, k, per, bytes;
        mload__lock(&j->mu);
        while (!j->stop && j->next_item < j->n && mload__item_count(&j->items[j->next_item]) <= j->next_elem - j->items[j->next_item].first) {
            j->next_item++;
            if (j->next_item < j->n) j->next_elem = j->items[j->next_item].first;
        }
        if (j->stop || j->next_item >= j->n) { mload__unlock(&j->mu); break; }
        it = &j->items[j->next_item];
        e0 = j->next_elem;
        per = mload__chunk_elems(j, it);
        k = it->first + mload__item_count(it) - e0;
        if (k > per) k = per;
        j->next_elem = e0 + k;
        mload__unlock(&j->mu);

        r = mload__job_chunk(j, w, it, e0, k, &e);
        bytes = k * mload__dtypes[it->tensor->dtype].bits / 8u;
        mload__lock(&j->mu);
        if (r != MLOAD_OK) {
            mload__job_failed(j, r, &e);
        } else {
            j->done_bytes += bytes;
            if (j->progress && !j->stop && j->progress(j->progress_user, j->done_bytes, j->total_bytes)) {
                mload__fail(&e, MLOAD_ERR_CANCELLED, MLOAD_NO_OFFSET, NULL, 0, "cancelled by the progress callback");
                mload__job_failed(j, MLOAD_ERR_CANCELLED, &e);
            }
        }
        mload__unlock(&j->mu);
    }
    for (slot = 0; j->dev && slot < 2; ++slot) /* this thread's copies in flight: complete before the load returns */
        if ((r = mload__job_settle(j, w, slot, &e)) != MLOAD_OK) {
            mload__lock(&j->mu);
            mload__job_failed(j, r, &e);
            mload__unlock(&j->mu);
        }
}

/* the pool's job k: the load's loop with thread k's buffers (pool mutex
   held on entry and exit) */
typedef struct mload__bulk_pool { mload__worker pool; mload__bulk_thread *t; } mload__bulk_pool;

static void mload__bulk_run(void *owner, void *job) {
    mload__bulk_pool *bp = MLOAD__CAST(mload__bulk_pool *, owner);
    uint32_t k;
    memcpy(&k, job, sizeof k);
    mload__unlock(&bp->pool.mu);
    mload__job_run(bp->t[k].job, &bp->t[k]);
    mload__lock(&bp->pool.mu);
}


/* checks every item before anything is read; counts bytes and chunks */
static mload_result mload__job_check(mload__job *j, uint64_t *chunks, mload_error *err) {
    uint64_t k;
    *chunks = 0;
    for (k = 0; k < j->n; ++k) {
        uint64_t sbytes, dbytes, cnt;
        mload_load_item *it = &j->items[k];
        mload_result r;
        if (!it->tensor || !mload__map_owns(j->m, it->tensor))
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "item %U: NULL tensor or a tensor of another map", k);
        if (it->first > it->tensor->numel)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, it->tensor->name, it->tensor->name_len,
                               "tensor '%s': first element %U is outside it", it->tensor->name, it->first);
        cnt = mload__item_count(it);
        if ((r = mload__map_check(j->m, it->tensor, it->first, cnt, &it->as, it->dst_size, it->dst, &sbytes, &dbytes, err)) != MLOAD_OK)
            return r;
        j->total_bytes += sbytes;
        *chunks += cnt / (j->chunk_bytes * 8u / mload__dtypes[it->tensor->dtype].bits + 1u) + 1u;
    }
    return MLOAD_OK;
}

/* a device load's staging buffer: the device's host memory, else the map's */
static unsigned char *mload__stage_take(const mload_allocator *a, const mload__job *j) {
    void *p = NULL;
    if (!j->dev->host_alloc) return MLOAD__CAST(unsigned char *, mload__malloc(a, MLOAD__CAST(size_t, j->stage_bytes), 64));
    return j->dev->host_alloc(j->dev->user, j->stage_bytes, &p) == MLOAD_OK ? MLOAD__CAST(unsigned char *, p) : NULL;
}
static void mload__stage_release(const mload_allocator *a, const mload__job *j, unsigned char *p) {
    if (!p) return;
    if (j->dev->host_alloc) j->dev->host_free(j->dev->user, p, j->stage_bytes);
    else mload__free(a, p, MLOAD__CAST(size_t, j->stage_bytes), 64);
}

static void mload__bulk_free(const mload_allocator *a, mload__bulk_thread *w, uint32_t n) {
    uint32_t i;
    if (!w) return;
    for (i = 0; i < n; ++i) {
        mload__free(a, w[i].scratch, w[i].scratch_size, 64);
        mload__free(a, w[i].bounce, w[i].bounce_size, MLOAD_DIRECT_ALIGN);
        mload__stage_release(a, w[i].job, w[i].stage[0]);
        mload__stage_release(a, w[i].job, w[i].stage[1]);
    }
    mload__free(a, w, n * sizeof(mload__bulk_thread), sizeof(void *));
}

/* n threads' buffers: scratch, a bounce buffer for direct reads, staging for device loads */
static mload__bulk_thread *mload__bulk_alloc(const mload_allocator *a, mload__job *j, uint32_t n, size_t scratch_size) {
    mload__bulk_thread *w = MLOAD__CAST(mload__bulk_thread *, mload__malloc(a, n * sizeof(mload__bulk_thread), sizeof(void *)));
    uint32_t i;
    if (!w) return NULL;
    memset(w, 0, n * sizeof(mload__bulk_thread));
    for (i = 0; i < n; ++i) w[i].job = j; /* before any allocation: mload__bulk_free reads it */
    for (i = 0; i < n; ++i) {
        w[i].scratch_size = scratch_size;
        w[i].scratch = MLOAD__CAST(unsigned char *, mload__malloc(a, scratch_size, 64));
        if (!w[i].scratch) break;
        if (j->io == MLOAD_IO_DIRECT) {
            w[i].bounce_size = MLOAD__BOUNCE;
            w[i].bounce = MLOAD__CAST(unsigned char *, mload__malloc(a, w[i].bounce_size, MLOAD_DIRECT_ALIGN));
            if (!w[i].bounce) break;
        }
        if (j->dev) {
            w[i].stage[0] = mload__stage_take(a, j);
            w[i].stage[1] = mload__stage_take(a, j);
            if (!w[i].stage[0] || !w[i].stage[1]) break;
        }
    }
    if (i < n) {
        mload__bulk_free(a, w, n);
        return NULL;
    }
    return w;
}

/* the staging buffer a device load needs: its largest chunk, cast */
static uint64_t mload__stage_need(const mload__job *j) {
    uint64_t k, need = 64;
    for (k = 0; k < j->n; ++k) {
        const mload_load_item *it = &j->items[k];
        uint64_t per = mload__chunk_elems(j, it), cnt = mload__item_count(it);
        if (per > cnt) per = cnt;
        if (per * mload__dtypes[it->as].bits / 8u > need) need = per * mload__dtypes[it->as].bits / 8u;
    }
    return need;
}

/* mload_map_load, and with put the load into device memory */
static mload_result mload__load_run(const mload_map *m, mload_load_item *items, uint64_t n, const mload_load_opts *opts,
                                    const mload__put *put, mload_error *err) {
    mload__job j;
    mload__bulk_thread *w;
    mload__bulk_pool bp;
    uint32_t nthreads, i;
    uint64_t chunks = 0;
    size_t scratch_size = 4u << 20;
    mload_result r;
    if (!m || (n && !items)) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL map or items");
    memset(&j, 0, sizeof j);
    j.m = m;
    j.items = items;
    j.n = n;
    j.chunk_bytes = (opts && opts->chunk_bytes) ? opts->chunk_bytes : (MLOAD__CAST(uint64_t, 8) << 20);
    if (j.chunk_bytes > (MLOAD__CAST(uint64_t, 1) << 30)) j.chunk_bytes = MLOAD__CAST(uint64_t, 1) << 30;
    j.io = opts ? opts->io : MLOAD_IO_DEFAULT;
    j.progress = opts ? opts->progress : NULL;
    j.progress_user = opts ? opts->progress_user : NULL;
    if ((r = mload__job_check(&j, &chunks, err)) != MLOAD_OK) return r;
    if (put) {
        j.dev = put;
        j.stage_bytes = mload__stage_need(&j);
        if (j.stage_bytes > SIZE_MAX / 2u)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "device load: staging of %U bytes is too large", j.stage_bytes);
    }
    if (j.chunk_bytes < scratch_size) scratch_size = MLOAD__CAST(size_t, j.chunk_bytes < 65536u ? 65536u : j.chunk_bytes);
    nthreads = (opts && opts->threads) ? opts->threads : (m->threads ? m->threads : mload__default_threads());
    if (nthreads > 64) nthreads = 64;
    if (nthreads > chunks) nthreads = chunks ? MLOAD__CAST(uint32_t, chunks) : 1u;
    if (!MLOAD__HAVE_THREADS) nthreads = 1;
    w = mload__bulk_alloc(&m->alloc, &j, nthreads, scratch_size);
    if (!w) return mload__oom(err);
    j.next_item = 0;
    j.next_elem = n ? items[0].first : 0;
    mload__mutex_init(&j.mu);
    /* nthreads - 1 pool threads and the caller share the chunks */
    bp.t = w;
    mload__worker_init(&bp.pool, &m->alloc, sizeof(uint32_t), mload__bulk_run, &bp, nthreads - 1);
    mload__lock(&bp.pool.mu);
    for (i = 1; i <= bp.pool.started && mload__worker_push(&bp.pool, &i); ++i) {}
    mload__unlock(&bp.pool.mu);
    mload__job_run(&j, &w[0]);
    mload__worker_destroy(&bp.pool);
    mload__mutex_destroy(&j.mu);
    r = j.result;
    if (r != MLOAD_OK && err) *err = j.err;
    mload__bulk_free(&m->alloc, w, nthreads);
    return r;
}

MODELLOAD_API mload_result mload_map_load(const mload_map *m, mload_load_item *items, uint64_t n,
                                          const mload_load_opts *opts, mload_error *err) {
    return mload__load_run(m, items, n, opts, NULL, err);
}

MODELLOAD_API mload_result mload_map_load_arena(const mload_map *m, mload_load_item *items, uint64_t n,
                                                const mload_load_opts *opts, void **arena, uint64_t *arena_size,
                                                mload_error *err) {
    uint64_t k, total = 0;
    unsigned char *base;
    mload_result r;
    if (arena) *arena = NULL;
    if (arena_size) *arena_size = 0;
    if (!m || !arena || !arena_size || (n && !items))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "NULL argument");
    for (k = 0; k < n; ++k) {
        uint64_t sbytes = 0, dbytes = 0;
        mload_load_item *it = &items[k];
        if (!it->tensor || it->first > it->tensor->numel)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "item %U: bad tensor or range", k);
        r = mload__map_check(m, it->tensor, it->first, mload__item_count(it), &it->as, UINT64_MAX, arena, &sbytes, &dbytes, err);
        if (r != MLOAD_OK) return r;
        it->dst_size = dbytes;
        dbytes = (dbytes + 63u) & ~MLOAD__CAST(uint64_t, 63);
        if (total > UINT64_MAX - dbytes || total + dbytes > SIZE_MAX)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "arena too large");
        total += dbytes;
    }
    base = MLOAD__CAST(unsigned char *, mload__malloc(&m->alloc, MLOAD__CAST(size_t, total ? total : 1), 64));
    if (!base) return mload__oom(err);
    for (k = 0, total = 0; k < n; ++k) {
        items[k].dst = base + total;
        total += (items[k].dst_size + 63u) & ~MLOAD__CAST(uint64_t, 63);
    }
    r = mload_map_load(m, items, n, opts, err);
    if (r != MLOAD_OK) {
        mload__free(&m->alloc, base, MLOAD__CAST(size_t, total ? total : 1), 64);
        for (k = 0; k < n; ++k) items[k].dst = NULL;
        return r;
    }
    *arena = base;
    *arena_size = total ? total : 1;
    return MLOAD_OK;
}

/* ---- binding ---- */

/* matches binding bi to its tensor (marked in used) and checks it: its
   result, and the load item when it is OK */
static mload_result mload__bind_match(const mload_map *m, const mload_binding *bi, mload_bind_result *res,
                                      mload_load_item *item, unsigned char *used) {
    const mload_tensor *t = bi->name ? mload_map_find(m, bi->name) : NULL;
    uint64_t first = 0, cnt, rows_b = 0, rows_c = 0, need, per_row, sbytes, padded = 0;
    mload_dtype as = bi->dtype ? bi->dtype : (t ? t->dtype : MLOAD_DTYPE_INVALID);
    memset(res, 0, sizeof(*res));
    res->tensor = t;
    res->dst = bi->dst;
    res->dst_size = bi->dst ? bi->dst_size : 0;
    if (!t) return res->status = MLOAD_ERR_NOT_FOUND;
    used[t - m->tensors] = 1;
    cnt = t->numel;
    if (bi->shard_world > 1 && bi->shard_mode == MLOAD_SHARD_FLAT) {
        mload_split_flat(t->numel, bi->shard_rank, bi->shard_world, &first, &cnt, &padded);
        if (bi->shape && (bi->rank != 1 || bi->shape[0] != padded)) return res->status = MLOAD_ERR_SHAPE_MISMATCH;
    } else if (bi->shard_world > 1) {
        if (t->rank == 0) return res->status = MLOAD_ERR_SHAPE_MISMATCH;
        mload_split_rows(t->shape[0], bi->shard_rank, bi->shard_world, &rows_b, &rows_c);
        per_row = t->shape[0] ? t->numel / t->shape[0] : 0;
        first = rows_b * per_row;
        cnt = rows_c * per_row;
    }
    if (bi->shape && !(bi->shard_world > 1 && bi->shard_mode == MLOAD_SHARD_FLAT)) {
        uint32_t d;
        int ok = bi->rank == t->rank;
        for (d = 0; ok && d < t->rank; ++d) ok = bi->shape[d] == ((d == 0 && bi->shard_world > 1) ? rows_c : t->shape[d]);
        if (!ok) return res->status = MLOAD_ERR_SHAPE_MISMATCH;
    }
    res->status = mload__map_check(m, t, first, cnt, &as, bi->dst ? bi->dst_size : UINT64_MAX,
                                   bi->dst ? bi->dst : MLOAD__CAST(const void *, m), &sbytes, &need, NULL);
    if (res->status != MLOAD_OK) return res->status;
    if (padded) { /* the flat buffer: padded elements, the tail zeroed after the load */
        uint64_t eb = mload_dtype_bits(as) / 8u;
        if (mload_dtype_bits(as) % 8u || (bi->dst && bi->dst_size / (eb ? eb : 1) < padded)) return res->status = MLOAD_ERR_INVALID_ARGUMENT;
        need = padded * eb;
    }
    item->tensor = t;
    item->as = as;
    item->dst = bi->dst;
    item->dst_size = bi->dst ? bi->dst_size : need;
    item->first = cnt == 0 ? t->numel : first; /* an empty slice */
    item->count = cnt;
    return MLOAD_OK;
}

/* allocates where asked, then one bulk load of the ni matched items; on
   failure what was allocated is freed */
static mload_result mload__bind_fill(const mload_map *m, const mload_binding *b, uint64_t n, mload_bind_result *res,
                                     mload_load_item *items, uint64_t ni, const mload_load_opts *load, mload_error *err) {
    uint64_t k, i;
    mload_result r = MLOAD_OK;
    for (k = 0, i = 0; k < n && r == MLOAD_OK; ++k) {
        if (res[k].status != MLOAD_OK) continue;
        if (!items[i].dst) {
            void *p = mload__malloc(&m->alloc, MLOAD__CAST(size_t, items[i].dst_size ? items[i].dst_size : 1), 64);
            if (!p) { r = mload__oom(err); break; }
            res[k].dst = items[i].dst = p;
            res[k].dst_size = items[i].dst_size;
            res[k].allocated = 1;
        }
        i++;
    }
    if (r == MLOAD_OK) r = mload_map_load(m, items, ni, load, err);
    for (k = 0, i = 0; k < n && r == MLOAD_OK; ++k) { /* flat shards: the padding zeroed */
        if (res[k].status != MLOAD_OK) continue;
        if (b[k].shard_world > 1 && b[k].shard_mode == MLOAD_SHARD_FLAT) {
            uint64_t eb = mload_dtype_bits(items[i].as) / 8u, padded, data = items[i].count * eb;
            mload_split_flat(res[k].tensor->numel, b[k].shard_rank, b[k].shard_world, NULL, NULL, &padded);
            if (padded * eb > data) memset(MLOAD__CAST(unsigned char *, items[i].dst) + data, 0, MLOAD__CAST(size_t, padded * eb - data));
        }
        i++;
    }
    for (k = 0; k < n && r != MLOAD_OK; ++k) {
        if (!res[k].allocated) continue;
        mload_map_free_buffer(m, res[k].dst, res[k].dst_size);
        res[k].dst = NULL;
        res[k].dst_size = 0;
        res[k].allocated = 0;
    }
    return r;
}

MODELLOAD_API mload_result mload_map_bind(const mload_map *m, const mload_binding *b, uint64_t n, const mload_bind_opts *opts,
                                          mload_bind_result *results, mload_bind_report *report, mload_error *err) {
    mload_bind_report rep;
    mload_bind_opts bo;
    mload_bind_result *res = results;
    unsigned char *used = NULL;
    mload_load_item *items = NULL;
    uint64_t k, ni = 0;
    mload_result r = MLOAD_OK;
    int allocating = 0;
    if (opts) bo = *opts;
    else memset(&bo, 0, sizeof bo);
    if (report) memset(report, 0, sizeof(*report));
    for (k = 0; b && k < n; ++k) allocating |= b[k].dst == NULL;
    if (!m || (n && !b) || MLOAD__CAST(uint32_t, bo.mode) > MLOAD_BIND_LENIENT || (bo.unexpected_cap && !bo.unexpected) ||
        (allocating && !results))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                           "NULL map or bindings, bad mode, unexpected_cap without an array, or an allocating binding without results");
    memset(&rep, 0, sizeof rep);
    if (!res) res = MLOAD__CAST(mload_bind_result *, mload__malloc(&m->alloc, MLOAD__CAST(size_t, n + 1) * sizeof(mload_bind_result), sizeof(void *)));
    used = MLOAD__CAST(unsigned char *, mload__malloc(&m->alloc, MLOAD__CAST(size_t, m->count + 1), 1));
    items = MLOAD__CAST(mload_load_item *, mload__malloc(&m->alloc, MLOAD__CAST(size_t, n + 1) * sizeof(mload_load_item), sizeof(void *)));
    if (!res || !used || !items) { r = mload__oom(err); goto out; }
    memset(used, 0, MLOAD__CAST(size_t, m->count + 1));
    for (k = 0; k < n; ++k) { /* 1. match and check everything; nothing is written yet */
        mload_result st = mload__bind_match(m, &b[k], &res[k], &items[ni], used);
        if (st == MLOAD_ERR_NOT_FOUND) rep.missing++;
        else if (st != MLOAD_OK) rep.mismatched++;
        else ni++;
    }
    for (k = 0; k < m->count; ++k) {
        if (used[k]) continue;
        if (rep.unexpected < bo.unexpected_cap) bo.unexpected[rep.unexpected] = &m->tensors[k];
        rep.unexpected++;
    }
    if (bo.mode == MLOAD_BIND_STRICT && (rep.missing || rep.mismatched || rep.unexpected))
        r = mload__fail(err, MLOAD_ERR_BIND_MISMATCH, MLOAD_NO_OFFSET, NULL, 0,
                        "strict bind: %U missing, %U mismatched, %U unexpected; nothing was loaded", rep.missing,
                        rep.mismatched, rep.unexpected);
    else if ((r = mload__bind_fill(m, b, n, res, items, ni, &bo.load, err)) == MLOAD_OK) /* 2. allocate, load */
        rep.loaded = ni;
out:
    if (report) *report = rep;
    if (res != results) mload__free(&m->alloc, res, MLOAD__CAST(size_t, n + 1) * sizeof(mload_bind_result), sizeof(void *));
    mload__free(&m->alloc, used, MLOAD__CAST(size_t, m->count + 1), 1);
    mload__free(&m->alloc, items, MLOAD__CAST(size_t, n + 1) * sizeof(mload_load_item), sizeof(void *));
    return r;
}

/* ==========================================================================
   9. FINGERPRINT                                             >>fingerprint
   MD5 and the model fingerprint
   ========================================================================== */

#if !defined(MODELLOAD_NO_FINGERPRINT)

typedef struct mload__md5 {
    uint32_t h[4];
    uint64_t len;
    unsigned char buf[64];
    size_t fill;
} mload__md5;

static uint32_t mload__rotl(uint32_t x, unsigned c) { return (x << c) | (x >> (32u - c)); }

static void mload__md5_block(uint32_t h[4], const unsigned char *p) {
    static const uint32_t K[64] = {
        0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu, 0xf57c0fafu, 0x4787c62au, 0xa8304613u, 0xfd469501u,
        0x698098d8u, 0x8b44f7afu, 0xffff5bb1u, 0x895cd7beu, 0x6b901122u, 0xfd987193u, 0xa679438eu, 0x49b40821u,
        0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau, 0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u,
        0x21e1cde6u, 0xc33707d6u, 0xf4d50d87u, 0x455a14edu, 0xa9e3e905u, 0xfcefa3f8u, 0x676f02d9u, 0x8d2a4c8au,
        0xfffa3942u, 0x8771f681u, 0x6d9d6122u, 0xfde5380cu, 0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
        0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u, 0xd9d4d039u, 0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u,
        0xf4292244u, 0x432aff97u, 0xab9423a7u, 0xfc93a039u, 0x655b59c3u, 0x8f0ccc92u, 0xffeff47du, 0x85845dd1u,
        0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u, 0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u};
    static const unsigned char S[16] = {7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21};
    uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3];
    unsigned i;
    for (i = 0; i < 16; ++i)
        w[i] = MLOAD__CAST(uint32_t, p[4 * i]) | MLOAD__CAST(uint32_t, p[4 * i + 1]) << 8 |
               MLOAD__CAST(uint32_t, p[4 * i + 2]) << 16 | MLOAD__CAST(uint32_t, p[4 * i + 3]) << 24;
    for (i = 0; i < 64; ++i) {
        uint32_t f, tmp;
        unsigned g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5u * i + 1u) & 15u; }
        else if (i < 48) { f = b ^ c ^ d; g = (3u * i + 5u) & 15u; }
        else { f = c ^ (b | ~d); g = (7u * i) & 15u; }
        tmp = d;
        d = c;
        c = b;
        b = b + mload__rotl(a + f + K[i] + w[g], S[(i / 16u) * 4u + (i & 3u)]);
        a = tmp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

static void mload__md5_init(mload__md5 *s) {
    s->h[0] = 0x67452301u;
    s->h[1] = 0xefcdab89u;
    s->h[2] = 0x98badcfeu;
    s->h[3] = 0x10325476u;
    s->len = 0;
    s->fill = 0;
}

static void mload__md5_update(mload__md5 *s, const void *data, size_t n) {
    const unsigned char *p = MLOAD__CAST(const unsigned char *, data);
    s->len += n;
    while (n) {
        size_t k = 64 - s->fill < n ? 64 - s->fill : n;
        memcpy(s->buf + s->fill, p, k);
        s->fill += k;
        p += k;
        n -= k;
        if (s->fill == 64) { mload__md5_block(s->h, s->buf); s->fill = 0; }
    }
}

static void mload__md5_hex(mload__md5 *s, char out[33]) {
    static const char hex[] = "0123456789abcdef";
    uint64_t bits = s->len * 8u;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    unsigned i;
    mload__md5_update(s, &pad, 1);
    while (s->fill != 56) mload__md5_update(s, &zero, 1);
    for (i = 0; i < 8; ++i) lenb[i] = MLOAD__CAST(unsigned char, bits >> (8u * i));
    mload__md5_update(s, lenb, 8);
    for (i = 0; i < 16; ++i) {
        unsigned char byte = MLOAD__CAST(unsigned char, s->h[i / 4u] >> (8u * (i % 4u)));
        out[2 * i] = hex[byte >> 4];
        out[2 * i + 1] = hex[byte & 15u];
    }
    out[32] = '\0';
}

typedef struct mload__fpent { const char *s; size_t n; } mload__fpent;

static int mload__fpent_cmp(const void *x, const void *y) {
    const mload__fpent *a = MLOAD__CAST(const mload__fpent *, x), *b = MLOAD__CAST(const mload__fpent *, y);
    return mload__name_cmp(a->s, a->n, b->s, b->n);
}

/* the fingerprint of the tensors ts[0..count): with shapes unless flags has MLOAD_FP_NO_SHAPES */
static mload_result mload__fingerprint(const mload_allocator *a, const mload_tensor *ts, size_t count, uint32_t flags, char out[33],
                                       mload_error *err) {
    mload__fpent *ents;
    char *text, *w;
    size_t i, bytes = 0, ne, per = (flags & MLOAD_FP_NO_SHAPES) ? 1u : 2u;
    mload__md5 md;
    for (i = 0; i < count; ++i) bytes += ts[i].name_len + 1u + 21u * (ts[i].rank + 1u);
    ne = per * count;
    ents = MLOAD__CAST(mload__fpent *, mload__malloc(a, (ne + 1) * sizeof(mload__fpent), sizeof(void *)));
    text = MLOAD__CAST(char *, mload__malloc(a, bytes + 1, 1));
    if (!ents || !text) {
        mload__free(a, ents, (ne + 1) * sizeof(mload__fpent), sizeof(void *));
        mload__free(a, text, bytes + 1, 1);
        return mload__oom(err);
    }
    for (i = 0, w = text; i < count; ++i) {
        const mload_tensor *t = &ts[i];
        uint32_t d;
        ents[per * i].s = t->name;
        ents[per * i].n = t->name_len;
        if (per == 1) continue;
        ents[2 * i + 1].s = w;
        memcpy(w, t->name, t->name_len);
        w += t->name_len;
        *w++ = ':';
        for (d = 0; d < t->rank; ++d) {
            char tmp[24];
            size_t k = 0;
            uint64_t v = t->shape[d];
            if (d) *w++ = '_';
            do { tmp[k++] = MLOAD__CAST(char, '0' + MLOAD__CAST(int, v % 10u)); v /= 10u; } while (v);
            while (k) *w++ = tmp[--k];
        }
        ents[2 * i + 1].n = MLOAD__CAST(size_t, w - ents[2 * i + 1].s);
    }
    qsort(ents, ne, sizeof(mload__fpent), mload__fpent_cmp);
    mload__md5_init(&md);
    for (i = 0; i < ne; ++i) {
        if (i) mload__md5_update(&md, ",", 1);
        mload__md5_update(&md, ents[i].s, ents[i].n);
    }
    mload__md5_hex(&md, out);
    mload__free(a, ents, (ne + 1) * sizeof(mload__fpent), sizeof(void *));
    mload__free(a, text, bytes + 1, 1);
    return MLOAD_OK;
}

MODELLOAD_API mload_result mload_map_fingerprint_ex(const mload_map *m, uint32_t flags, char out[33], mload_error *err) {
    if (!m || !out || (flags & ~MLOAD__CAST(uint32_t, MLOAD_FP_NO_SHAPES | MLOAD_FP_STORED_NAMES)))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "fingerprint: NULL argument or unknown flags");
    if (flags & MLOAD_FP_STORED_NAMES) return mload__fingerprint(&m->alloc, m->stored, m->nstored, flags, out, err);
    return mload__fingerprint(&m->alloc, m->tensors, m->count, flags, out, err);
}

MODELLOAD_API mload_result mload_map_fingerprint(const mload_map *m, char out[33], mload_error *err) {
    return mload_map_fingerprint_ex(m, 0, out, err);
}

#endif /* !MODELLOAD_NO_FINGERPRINT */

/* ==========================================================================
   10. WRITER                                                      >>writer
   safetensors files and sharded checkpoints with index.json, all-or-nothing for readers (the index is the commit)
   ========================================================================== */

#if !defined(MODELLOAD_NO_WRITER)

#if defined(MLOAD__POSIX)
typedef struct mload__wbuf { char *p; size_t n, cap; const mload_allocator *a; int oom; } mload__wbuf;

static void mload__wb_put(mload__wbuf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        void *np = mload__grow(b->a, b->p, &b->cap, b->n + n + 1, 1);
        if (!np) { b->oom = 1; return; }
        b->p = MLOAD__CAST(char *, np);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void mload__wb_str(mload__wbuf *b, const char *s) { mload__wb_put(b, s, strlen(s)); }
static void mload__wb_u64(mload__wbuf *b, uint64_t v) {
    char tmp[24], out[24];
    size_t k = 0, i;
    do { tmp[k++] = MLOAD__CAST(char, '0' + MLOAD__CAST(int, v % 10u)); v /= 10u; } while (v);
    for (i = 0; i < k; ++i) out[i] = tmp[k - 1 - i];
    mload__wb_put(b, out, k);
}
/* a JSON string: quotes, backslashes and control bytes escaped, UTF-8 kept */
static void mload__wb_json(mload__wbuf *b, const char *s, size_t n) {
    size_t i;
    mload__wb_put(b, "\"", 1);
    for (i = 0; i < n; ++i) {
        unsigned char c = MLOAD__CAST(unsigned char, s[i]);
        if (c == '"' || c == '\\') {
            char e[2];
            e[0] = '\\';
            e[1] = MLOAD__CAST(char, c);
            mload__wb_put(b, e, 2);
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            char e[6] = {'\\', 'u', '0', '0', 0, 0};
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15u];
            mload__wb_put(b, e, 6);
        } else {
            mload__wb_put(b, s + i, 1);
        }
    }
    mload__wb_put(b, "\"", 1);
}

static int mload__write_all(int fd, const void *p, size_t n) {
    const unsigned char *c = MLOAD__CAST(const unsigned char *, p);
    while (n) {
        ssize_t r = write(fd, c, n);
        if (r < 0) { if (errno == EINTR) continue; return 0; }
        c += r;
        n -= MLOAD__CAST(size_t, r);
    }
    return 1;
}

typedef struct mload__wt {
    const char *name; /* first: the name index reads these two */
    size_t name_len;
    const mload_write_tensor *w;
    mload_dtype dtype;
    uint32_t rank;
    const uint64_t *shape;
    uint64_t numel, nbytes;
} mload__wt;

static int mload__wt_cmp(const void *x, const void *y) {
    const mload__wt *a = MLOAD__CAST(const mload__wt *, x), *b = MLOAD__CAST(const mload__wt *, y);
    uint32_t ab = mload__dtypes[a->dtype].bits, bb = mload__dtypes[b->dtype].bits;
    if (ab != bb) return ab > bb ? -1 : 1;
    return mload__name_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* UTF-8 check of n bytes that need not be NUL-terminated (caller strings) */
static int mload__valid_utf8_str(const char *s, size_t n) {
    const unsigned char *u = MLOAD__PCAST(const unsigned char *, s);
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t need, k;
        unsigned char tmp[4] = {0, 0, 0, 0};
        if (c < 0x80) { ++i; continue; }
        need = c >= 0xF0 ? 4u : c >= 0xE0 ? 3u : 2u;
        if (n - i < need) return 0;
        memcpy(tmp, u + i, need); /* mload__utf8_seq may look at up to 4 bytes */
        k = mload__utf8_seq(tmp);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

/* Test hooks: the tests route these through fault injectors. */
#ifndef MLOAD__RENAME
#define MLOAD__RENAME(from, to) rename(from, to)
#endif
#ifndef MLOAD__FSYNC
#define MLOAD__FSYNC(fd) fsync(fd)
#endif

enum { MLOAD__TMP_OOM = -2, MLOAD__TMP_LINK = -3, MLOAD__TMP_READONLY = -4 };

/* Creates a new temporary file next to `path` (O_EXCL, no symlink
   followed), named "PATH.tmp-" + the process id and a random number in
   hex (8 digits each), so that a later write can tell a dead writer's
   leftovers; *tmp receives the name (release with mload__strfree). When
   `path` exists the temporary gets its mode; a symlink or a read-only file
   at `path` is not replaced (MLOAD__TMP_LINK, MLOAD__TMP_READONLY). -1 when
   no file could be created (errno says why), MLOAD__TMP_OOM. */
static int mload__create_tmp(const mload_allocator *a, const char *path, char **tmp) {
    static const char hex[] = "0123456789abcdef";
    size_t pl = strlen(path), cap = pl + 23;
    uint32_t pid = MLOAD__CAST(uint32_t, getpid());
    uint64_t seed = (MLOAD__CAST(uint64_t, pid) * 0x9E3779B97F4A7C15ull) ^ mload__now_ns() ^ MLOAD__CAST(uint64_t, MLOAD__PCAST(uintptr_t, tmp));
    int attempt, k, fd = -1, flags = O_WRONLY | O_CREAT | O_EXCL, have = 0;
    struct stat st;
#ifdef O_NOFOLLOW
    flags |= O_NOFOLLOW;
#endif
#ifdef O_CLOEXEC
    flags |= O_CLOEXEC;
#endif
    *tmp = NULL;
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) return MLOAD__TMP_LINK;
        if (S_ISREG(st.st_mode) && (st.st_mode & 0222) == 0) return MLOAD__TMP_READONLY;
        have = S_ISREG(st.st_mode);
    }
    if (!(*tmp = MLOAD__CAST(char *, mload__malloc(a, cap, 1)))) return MLOAD__TMP_OOM;
    memcpy(*tmp, path, pl);
    memcpy(*tmp + pl, ".tmp-", 5);
    for (k = 0; k < 8; ++k) (*tmp)[pl + 5 + MLOAD__CAST(size_t, k)] = hex[(pid >> (28 - 4 * k)) & 15u];
    (*tmp)[pl + 13] = '-';
    for (attempt = 0; attempt < 64 && fd < 0; ++attempt) {
        uint32_t v;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        v = MLOAD__CAST(uint32_t, (seed ^ (seed >> 29)) >> 16);
        for (k = 0; k < 8; ++k) (*tmp)[pl + 14 + MLOAD__CAST(size_t, k)] = hex[(v >> (28 - 4 * k)) & 15u];
        (*tmp)[pl + 22] = '\0';
        do { fd = open(*tmp, flags, 0644); } while (fd < 0 && errno == EINTR);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        mload__free(a, *tmp, cap, 1);
        *tmp = NULL;
        errno = e;
        return -1;
    }
    if (have) (void)fchmod(fd, st.st_mode & 07777); /* a rewrite keeps the file's mode */
    return fd;
}

/* the error of a failed mload__create_tmp for `path` */
static mload_result mload__tmp_fail(int code, const char *path, mload_error *err) {
    if (code == MLOAD__TMP_OOM) return mload__oom(err);
    if (code == MLOAD__TMP_LINK)
        return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "'%s' is a symbolic link: not replaced", path);
    if (code == MLOAD__TMP_READONLY)
        return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "'%s' is read-only: not replaced", path);
    return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "cannot create a temporary file next to '%s': %s", path,
                       mload__sys_reason(errno));
}

/* Flushes and closes fd; 0 on failure */
static int mload__finish_tmp(int fd) {
    int ok = MLOAD__FSYNC(fd) == 0;
    return (close(fd) == 0) && ok;
}

/* the folder of `path` made durable (its entries: renames, removals) */
static mload_result mload__sync_dir(const mload_allocator *a, const char *path, mload_error *err) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? mload__strndup(a, path, slash == path ? 1u : MLOAD__CAST(size_t, slash - path)) : mload__strndup(a, ".", 1);
    int fd, ok, e;
    if (!dir) return mload__oom(err);
    do { fd = open(dir, O_RDONLY); } while (fd < 0 && errno == EINTR);
    ok = fd >= 0 && (MLOAD__FSYNC(fd) == 0 || errno == EINVAL); /* some file systems cannot sync a folder */
    e = errno;
    if (fd >= 0) close(fd);
    if (!ok) {
        mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, NULL, 0, "cannot sync the folder '%s': %s", dir, mload__sys_reason(e));
        mload__strfree(a, dir);
        return MLOAD_ERR_IO;
    }
    mload__strfree(a, dir);
    return MLOAD_OK;
}

/* text written to `path` through a temporary file, synced, renamed in */
static mload_result mload__put_text(const mload_allocator *a, const char *path, const char *text, size_t n, mload_error *err) {
    char *tmp = NULL;
    int fd = mload__create_tmp(a, path, &tmp);
    mload_result r = MLOAD_OK;
    if (fd < 0) return mload__tmp_fail(fd, path, err);
    if (!mload__write_all(fd, text, n)) {
        r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, NULL, 0, "writing '%s' failed: %s", tmp, mload__sys_reason(errno));
        close(fd);
    } else if (!mload__finish_tmp(fd) || MLOAD__RENAME(tmp, path) != 0) {
        r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, NULL, 0, "cannot complete '%s' (sync, close or rename failed): %s", path,
                        mload__sys_reason(errno));
    }
    if (r != MLOAD_OK) unlink(tmp);
    mload__strfree(a, tmp);
    return r;
}

/* a map tensor that can only be read whole, written through one buffer of its size */
static mload_result mload__write_whole(int fd, const mload_map *m, const mload_tensor *t, mload_dtype as, uint64_t nbytes,
                                       const mload_allocator *a, const char *tmp, mload_error *err) {
    unsigned char *big;
    mload_result r;
    if (nbytes > SIZE_MAX || !(big = MLOAD__CAST(unsigned char *, mload__malloc(a, MLOAD__CAST(size_t, nbytes ? nbytes : 1), 64))))
        return mload__oom(err);
    r = mload_map_read(m, t, as, big, nbytes, err);
    if (r == MLOAD_OK && !mload__write_all(fd, big, MLOAD__CAST(size_t, nbytes)))
        r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, t->name, t->name_len, "writing '%s' failed: %s", tmp, mload__sys_reason(errno));
    mload__free(a, big, MLOAD__CAST(size_t, nbytes ? nbytes : 1), 64);
    return r;
}

/* writes tensors wt[0..n) as one file at `path` through a temporary name:
   renamed into place when keep_tmp is NULL, else left complete (synced,
   closed) under the temporary name, which *keep_tmp receives */
static mload_result mload__write_file(const char *path, const mload__wt *wt, size_t n, const mload_write_opts *o,
                                      const mload_allocator *a, unsigned char *buf, size_t buf_size, char **keep_tmp,
                                      mload_error *err) {
    mload__wbuf h;
    char *tmp = NULL;
    size_t i;
    uint64_t off = 0, k;
    unsigned char len8[8];
    int fd = -1;
    mload_result r = MLOAD_OK;
    memset(&h, 0, sizeof h);
    h.a = a;
    mload__wb_str(&h, "{");
    if (o && o->metadata_count) {
        mload__wb_str(&h, "\"__metadata__\":{");
        for (k = 0; k < o->metadata_count; ++k) {
            if (k) mload__wb_str(&h, ",");
            mload__wb_json(&h, o->metadata[k].key, o->metadata[k].key_len);
            mload__wb_str(&h, ":");
            mload__wb_json(&h, o->metadata[k].value, o->metadata[k].value_len);
        }
        mload__wb_str(&h, "}");
    }
    for (i = 0; i < n; ++i) {
        uint32_t d;
        if (i || (o && o->metadata_count)) mload__wb_str(&h, ",");
        mload__wb_json(&h, wt[i].name, wt[i].name_len);
        mload__wb_str(&h, ":{\"dtype\":\"");
        mload__wb_str(&h, mload__dtypes[wt[i].dtype].name);
        mload__wb_str(&h, "\",\"shape\":[");
        for (d = 0; d < wt[i].rank; ++d) {
            if (d) mload__wb_str(&h, ",");
            mload__wb_u64(&h, wt[i].shape[d]);
        }
        mload__wb_str(&h, "],\"data_offsets\":[");
        mload__wb_u64(&h, off);
        mload__wb_str(&h, ",");
        off += wt[i].nbytes;
        mload__wb_u64(&h, off);
        mload__wb_str(&h, "]}");
    }
    mload__wb_str(&h, "}");
    while (!h.oom && h.n % 8u) mload__wb_str(&h, " ");
    if (h.oom) { r = mload__oom(err); goto out; }
    if (h.n > MLOAD__MAX_HEADER) {
        r = mload__fail(err, MLOAD_ERR_HEADER_TOO_LARGE, MLOAD_NO_OFFSET, NULL, 0, "the header would exceed 100000000 bytes");
        goto out;
    }
    if ((fd = mload__create_tmp(a, path, &tmp)) < 0) {
        r = mload__tmp_fail(fd, path, err);
        goto out;
    }
    for (k = 0; k < 8; ++k) len8[k] = MLOAD__CAST(unsigned char, MLOAD__CAST(uint64_t, h.n) >> (8u * k));
    if (!mload__write_all(fd, len8, 8) || !mload__write_all(fd, h.p, h.n)) {
        r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, NULL, 0, "writing '%s' failed: %s", tmp, mload__sys_reason(errno));
        goto out;
    }
    for (i = 0; i < n && r == MLOAD_OK; ++i) {
        const mload_write_tensor *w = wt[i].w;
        if (!w->src) { /* caller memory (NULL for an empty tensor) */
            if (wt[i].nbytes && !mload__write_all(fd, w->data, MLOAD__CAST(size_t, wt[i].nbytes)))
                r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, wt[i].name, wt[i].name_len, "writing '%s' failed: %s", tmp,
                                mload__sys_reason(errno));
        } else if (mload__whole_only(w->map, w->src)) { /* e.g. a transpose: read whole */
            r = mload__write_whole(fd, w->map, w->src, wt[i].dtype, wt[i].nbytes, a, tmp, err);
        } else {
            uint64_t db = mload__dtypes[wt[i].dtype].bits, per = buf_size * 8u / (db > mload__dtypes[w->src->dtype].bits ? db : mload__dtypes[w->src->dtype].bits), e;
            per -= per % 8u;
            if (per == 0) per = 8;
            for (e = 0; e < wt[i].numel && r == MLOAD_OK; e += per) {
                uint64_t cnt = wt[i].numel - e < per ? wt[i].numel - e : per, bytes = cnt * db / 8u;
                r = mload_map_read_range(w->map, w->src, e, cnt, wt[i].dtype, buf, buf_size, err);
                if (r == MLOAD_OK && !mload__write_all(fd, buf, MLOAD__CAST(size_t, bytes)))
                    r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, wt[i].name, wt[i].name_len, "writing '%s' failed: %s", tmp,
                                mload__sys_reason(errno));
            }
        }
    }
    if (r == MLOAD_OK) {
        int ok = mload__finish_tmp(fd);
        fd = -1;
        if (ok && keep_tmp) {
            *keep_tmp = tmp;
            tmp = NULL;
        } else if (!ok || MLOAD__RENAME(tmp, path) != 0) {
            r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, NULL, 0, "cannot complete '%s' (sync, close or rename failed): %s", path,
                            mload__sys_reason(errno));
        }
    }
out:
    if (fd >= 0) close(fd);
    if (r != MLOAD_OK && tmp) unlink(tmp);
    mload__strfree(a, tmp);
    mload__free(a, h.p, h.cap, 1);
    return r;
}

/* the reader refuses repeated or non-UTF-8 metadata keys: so does the writer */
static mload_result mload__write_check_meta(const mload_write_opts *opts, const mload_allocator *a, mload_error *err) {
    mload__index mi;
    size_t mdup;
    uint64_t k;
    if (!opts || !opts->metadata_count) return MLOAD_OK;
    for (k = 0; k < opts->metadata_count; ++k)
        if (!opts->metadata[k].key || !opts->metadata[k].value ||
            !mload__valid_utf8_str(opts->metadata[k].key, opts->metadata[k].key_len) ||
            !mload__valid_utf8_str(opts->metadata[k].value, opts->metadata[k].value_len))
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "metadata entry %U is not valid UTF-8", k);
    memset(&mi, 0, sizeof mi);
    mi.seed = 0x13198A2E03707344ull;
    if (!mload__index_build(a, &mi, opts->metadata, sizeof(mload_kv), MLOAD__CAST(size_t, opts->metadata_count), NULL, 0, &mdup))
        return mload__oom(err);
    mload__free(a, mi.slots, (mi.mask + 1) * sizeof(uint64_t), sizeof(uint64_t));
    if (mdup != SIZE_MAX)
        return mload__fail(err, MLOAD_ERR_DUPLICATE_KEY, MLOAD_NO_OFFSET, opts->metadata[mdup].key, opts->metadata[mdup].key_len,
                           "metadata key '%S' is given twice", opts->metadata[mdup].key, opts->metadata[mdup].key_len);
    return MLOAD_OK;
}

/* checks tensor w and fills its record x */
static mload_result mload__wt_init(const mload_write_tensor *w, uint64_t i, mload__wt *x, mload_error *err) {
    uint64_t bits;
    uint32_t d;
    x->w = w;
    x->name = w->name;
    x->name_len = w->name ? (w->name_len ? w->name_len : strlen(w->name)) : 0;
    if (!w->name || !mload__valid_utf8_str(w->name, x->name_len) || (x->name_len == 12 && memcmp(w->name, "__metadata__", 12) == 0))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, w->name, x->name_len, "tensor %U: missing, reserved or non-UTF-8 name", i);
    if (w->src) {
        if (!w->map || !mload__map_owns(w->map, w->src) || w->data)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, x->name, x->name_len, "tensor '%S': give data, or map and src", x->name, x->name_len);
        x->dtype = w->dtype ? w->dtype : w->src->dtype;
        x->rank = w->src->rank;
        x->shape = w->src->shape;
        if (!mload__dtype_valid(x->dtype) || !mload_cast_supported(x->dtype, w->src->dtype))
            return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, x->name, x->name_len, "tensor '%S': unsupported conversion", x->name, x->name_len);
    } else {
        x->dtype = w->dtype;
        x->rank = w->rank;
        x->shape = w->shape;
        if (!mload__dtype_valid(x->dtype) || (w->rank && !w->shape))
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, x->name, x->name_len, "tensor '%S': bad dtype or shape", x->name, x->name_len);
    }
    x->numel = 1;
    for (d = 0; d < x->rank; ++d)
        if (!mload__mul_u64(x->numel, x->shape[d], &x->numel)) break;
    if (d < x->rank || !mload__mul_u64(x->numel, mload__dtypes[x->dtype].bits, &bits) || bits % 8u)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, x->name, x->name_len, "tensor '%S': size overflows or is not whole bytes", x->name, x->name_len);
    x->nbytes = bits / 8u;
    if (!w->src && x->nbytes && !w->data)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, x->name, x->name_len, "tensor '%S': no data", x->name, x->name_len);
    if (x->nbytes > SIZE_MAX) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, x->name, x->name_len, "too large");
    return MLOAD_OK;
}

/* shards: consecutive runs of the sorted order, each <= shard_bytes unless one tensor is larger */
static size_t mload__write_plan(const mload__wt *wt, size_t n, uint64_t shard_bytes, size_t *shard_of, size_t *shard_start) {
    size_t i, nshards = 0;
    uint64_t cur = 0;
    for (i = 0; i < n; ++i) {
        if (i == 0 || (shard_bytes && cur && cur + wt[i].nbytes > shard_bytes)) {
            shard_start[nshards++] = i;
            cur = 0;
        }
        cur += wt[i].nbytes;
        shard_of[i] = nshards - 1;
    }
    if (nshards == 0) shard_start[nshards++] = 0;
    shard_start[nshards] = n;
    return nshards;
}

static void mload__wb_num5(mload__wbuf *b, size_t v) {
    char num[5];
    size_t q;
    for (q = 0; q < 5; ++q, v /= 10) num[4 - q] = MLOAD__CAST(char, '0' + MLOAD__CAST(int, v % 10));
    mload__wb_put(b, num, 5);
}

/* "DIR/NAME-0000i-of-0000N.safetensors" for path "DIR/NAME.safetensors"
   ("...-b.safetensors" for variant 1), or NULL */
static char *mload__shard_name(const mload_allocator *a, const char *path, size_t i, size_t nshards, int variant) {
    mload__wbuf nb;
    char *name = NULL;
    size_t pl = strlen(path);
    memset(&nb, 0, sizeof nb);
    nb.a = a;
    mload__wb_put(&nb, path, pl > 12 ? pl - 12 : 0); /* less ".safetensors" (checked by the caller) */
    mload__wb_str(&nb, "-");
    mload__wb_num5(&nb, i + 1);
    mload__wb_str(&nb, "-of-");
    mload__wb_num5(&nb, nshards);
    mload__wb_str(&nb, variant ? "-b.safetensors" : ".safetensors");
    mload__wb_put(&nb, "", 1);
    if (!nb.oom) name = mload__strndup(a, nb.p, strlen(nb.p));
    mload__free(a, nb.p, nb.cap, 1);
    return name;
}

/* the index.json text (tensors in name order) into ib */
static mload_result mload__index_text(const mload_allocator *a, const mload__wt *wt, size_t n, const size_t *shard_of,
                                      char *const *names, uint64_t total, mload__wbuf *ib, mload_error *err) {
    mload__mref *order = MLOAD__CAST(mload__mref *, mload__malloc(a, (n + 1) * sizeof(mload__mref), sizeof(void *)));
    size_t i;
    if (!order) return mload__oom(err);
    for (i = 0; i < n; ++i) {
        order[i].name = wt[i].name;
        order[i].name_len = wt[i].name_len;
        order[i].file = MLOAD__CAST(uint32_t, shard_of[i]);
        order[i].idx = i;
    }
    qsort(order, n, sizeof(mload__mref), mload__mref_cmp);
    memset(ib, 0, sizeof(*ib));
    ib->a = a;
    mload__wb_str(ib, "{\n  \"metadata\": {\n    \"total_size\": ");
    mload__wb_u64(ib, total);
    mload__wb_str(ib, "\n  },\n  \"weight_map\": {");
    for (i = 0; i < n; ++i) {
        const char *base = strrchr(names[order[i].file], '/');
        base = base ? base + 1 : names[order[i].file];
        mload__wb_str(ib, i ? ",\n    " : "\n    ");
        mload__wb_json(ib, order[i].name, order[i].name_len);
        mload__wb_str(ib, ": ");
        mload__wb_json(ib, base, strlen(base));
    }
    mload__wb_str(ib, "\n  }\n}\n");
    mload__free(a, order, (n + 1) * sizeof(mload__mref), sizeof(void *));
    if (ib->oom) {
        mload__free(a, ib->p, ib->cap, 1);
        return mload__oom(err);
    }
    return MLOAD_OK;
}

/* A checkpoint DIR/STEM.safetensors on disk before a write: its index
   (DIR/STEM.safetensors.index.json), its single file, and the files the
   current index names (the old set). */
typedef struct mload__ckpt {
    const mload_allocator *a;
    const char *single;
    char *index;
    char **old; /* full paths */
    size_t nold, old_cap;
    int has_index, index_ok, has_single;
    int loose; /* no index, and shard-named files that the folder reader reads */
} mload__ckpt;

static void mload__ckpt_free(mload__ckpt *c) {
    size_t i;
    for (i = 0; i < c->nold; ++i) mload__strfree(c->a, c->old[i]);
    mload__free(c->a, c->old, c->old_cap * sizeof(char *), sizeof(void *));
    mload__strfree(c->a, c->index);
    memset(c, 0, sizeof(*c));
}

static int mload__ckpt_names(const mload__ckpt *c, const char *full) {
    size_t i;
    for (i = 0; i < c->nold; ++i)
        if (strcmp(c->old[i], full) == 0) return 1;
    return 0;
}

static size_t mload__dir_len(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? MLOAD__CAST(size_t, slash - path) + 1 : 0;
}

/* A file the write will replace or remove, looked at before anything
   changes: *yes = whether it exists; a symlink or a read-only file is
   refused (as mload__create_tmp refuses them), and so is any error other
   than "absent". */
static mload_result mload__inspect_dest(const char *path, int *yes, mload_error *err) {
    struct stat st;
    *yes = lstat(path, &st) == 0;
    if (!*yes && errno != ENOENT)
        return mload__fail(err, MLOAD_ERR_CANNOT_OPEN, MLOAD_NO_OFFSET, NULL, 0, "cannot inspect '%s': %s", path, mload__sys_reason(errno));
    if (*yes && S_ISLNK(st.st_mode)) return mload__tmp_fail(MLOAD__TMP_LINK, path, err);
    if (*yes && S_ISREG(st.st_mode) && (st.st_mode & 0222) == 0) return mload__tmp_fail(MLOAD__TMP_READONLY, path, err);
    return MLOAD_OK;
}

/* "STEM-#####-of-#####.safetensors" or "...-b.safetensors": a shard name this writer gives */
static int mload__shard_like(const char *name, size_t nl, const char *stem, size_t sl) {
    const char *p = name + sl;
    size_t k, rest = nl - sl;
    if (nl <= sl || memcmp(name, stem, sl) != 0) return 0;
    if (rest != 27 && rest != 29) return 0; /* "-00001-of-00002" + ".safetensors" or "-b.safetensors" */
    if (p[0] != '-' || memcmp(p + 6, "-of-", 4) != 0) return 0;
    for (k = 0; k < 5; ++k)
        if (p[1 + k] < '0' || p[1 + k] > '9' || p[10 + k] < '0' || p[10 + k] > '9') return 0;
    return memcmp(p + 15, rest == 27 ? ".safetensors" : "-b.safetensors", rest - 15) == 0;
}

/* the stem of the checkpoint's single file: its name less ".safetensors" */
static const char *mload__ckpt_stem(const char *single, size_t *sl) {
    size_t dl = mload__dir_len(single);
    *sl = strlen(single) - dl;
    if (*sl > 12 && mload__ends_with(single, ".safetensors")) *sl -= 12;
    return single + dl;
}

/* The folder of path, open for a scan: *dh NULL when it cannot be opened
   (the caller's scan finds nothing); MLOAD_ERR_OUT_OF_MEMORY. */
static mload_result mload__opendir_of(const mload_allocator *a, const char *path, DIR **dh, mload_error *err) {
    size_t dl = mload__dir_len(path);
    char *dir = dl ? mload__strndup(a, path, dl) : mload__strndup(a, ".", 1);
    *dh = dir ? opendir(dir) : NULL;
    mload__strfree(a, dir);
    return dir ? MLOAD_OK : mload__oom(err);
}

/* Without an index, the folder reader reads every file: shard-named files
   of this checkpoint there are live (the old set; c->loose). */
static mload_result mload__ckpt_loose(mload__ckpt *c, mload_error *err) {
    size_t dl = mload__dir_len(c->single), sl;
    const char *stem = mload__ckpt_stem(c->single, &sl);
    DIR *dh;
    struct dirent *de;
    mload_result r = mload__opendir_of(c->a, c->single, &dh, err);
    while (r == MLOAD_OK && dh && (de = readdir(dh)) != NULL) {
        size_t nl = strlen(de->d_name);
        char *full;
        if (!mload__shard_like(de->d_name, nl, stem, sl)) continue;
        full = mload__path_join(c->a, c->single, dl, de->d_name, nl);
        if (!full || !mload__reserve(c->a, MLOAD__PCAST(void **, &c->old), &c->old_cap, c->nold + 1, sizeof(char *))) {
            mload__strfree(c->a, full);
            r = mload__oom(err);
        } else {
            c->old[c->nold++] = full;
            c->loose = 1;
        }
    }
    if (dh) closedir(dh);
    return r;
}

/* what is there now: the index's shard files when it parses */
static mload_result mload__ckpt_open(const mload_allocator *a, const char *path, mload__ckpt *c, mload_error *err) {
    mload__idx x;
    mload_error e1;
    mload_result r;
    size_t i, pl = strlen(path);
    memset(c, 0, sizeof(*c));
    c->a = a;
    c->single = path;
    if (!(c->index = MLOAD__CAST(char *, mload__malloc(a, pl + 12, 1)))) return mload__oom(err);
    memcpy(c->index, path, pl);
    memcpy(c->index + pl, ".index.json", 12);
    if ((r = mload__inspect_dest(path, &c->has_single, err)) != MLOAD_OK || (r = mload__inspect_dest(c->index, &c->has_index, err)) != MLOAD_OK)
        return r;
    if (!c->has_index) return mload__ckpt_loose(c, err);
    memset(&x, 0, sizeof x);
    /* an index that does not parse is no checkpoint (readers refuse it); any other failure stops the write */
    if ((r = mload__idx_load(a, c->index, &x, &e1)) == MLOAD_OK && (r = mload__idx_parse(a, &x, &e1)) == MLOAD_OK)
        r = mload__idx_check_names(&x, &e1);
    if (r != MLOAD_OK && r != MLOAD_ERR_INVALID_INDEX) {
        mload__idx_free(a, &x);
        if (err) *err = e1;
        return r;
    }
    if (r == MLOAD_OK) {
        c->index_ok = 1;
        for (i = 0; i < x.nwm; ++i) {
            char *full = mload__path_join(a, path, mload__dir_len(path), x.wm[i].file, x.wm[i].file_len);
            if (!full || !mload__reserve(a, MLOAD__PCAST(void **, &c->old), &c->old_cap, c->nold + 1, sizeof(char *))) {
                mload__strfree(a, full);
                mload__idx_free(a, &x);
                return mload__oom(err);
            }
            if (mload__ckpt_names(c, full)) mload__strfree(a, full);
            else c->old[c->nold++] = full;
        }
    }
    mload__idx_free(a, &x);
    return MLOAD_OK;
}

/* "STEM.tmp-PPPPPPPP-RRRRRRRR" left by a writer that is no longer running: its process id, else 0 */
static uint32_t mload__dead_tmp(const char *name, size_t nl) {
    uint32_t pid = 0;
    size_t k;
    if (nl < 22 || memcmp(name + nl - 22, ".tmp-", 5) != 0 || name[nl - 9] != '-') return 0;
    for (k = nl - 17; k < nl; ++k) {
        char ch = name[k];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (k == nl - 9) continue;
        if (d < 0) return 0;
        if (k < nl - 9) pid = pid * 16u + MLOAD__CAST(uint32_t, d);
    }
    if (pid == 0 || pid == MLOAD__CAST(uint32_t, getpid()) || kill(MLOAD__CAST(pid_t, pid), 0) == 0 || errno != ESRCH) return 0;
    return pid;
}


/* Removes what earlier writes of this checkpoint left: temporaries of
   writers no longer running, and (when the index parses) shard files it
   does not name. */
static void mload__ckpt_sweep(const mload__ckpt *c) {
    size_t dl = mload__dir_len(c->single), sl, bl = strlen(c->single) - dl;
    const char *stem = mload__ckpt_stem(c->single, &sl), *base = c->single + dl;
    DIR *dh;
    struct dirent *de;
    (void)mload__opendir_of(c->a, c->single, &dh, NULL); /* out of memory: nothing swept */
    while (dh && (de = readdir(dh)) != NULL) {
        size_t nl = strlen(de->d_name), tl = nl > 22 ? nl - 22 : 0; /* the name a temporary stands for */
        char *full;
        /* a temporary of this checkpoint's file, index or shards, left by a writer no longer running */
        int tmp = tl && (mload__shard_like(de->d_name, tl, stem, sl) || (tl == bl && memcmp(de->d_name, base, bl) == 0) ||
                         (tl == bl + 11 && memcmp(de->d_name, base, bl) == 0 && memcmp(de->d_name + bl, ".index.json", 11) == 0)) &&
                  mload__dead_tmp(de->d_name, nl) != 0;
        if (!tmp && !(c->index_ok && mload__shard_like(de->d_name, nl, stem, sl))) continue;
        if (!(full = mload__path_join(c->a, c->single, dl, de->d_name, nl))) break;
        if (tmp || !mload__ckpt_names(c, full)) unlink(full);
        mload__strfree(c->a, full);
    }
    if (dh) closedir(dh);
}

/* An index naming every tensor of the single file `single` (the guard of
   a single file about to become shards), or, without one (or when it is
   not a safetensors file: readers fail on it already), an index naming
   nothing (readers refuse it: no partial set is ever visible). A failure
   to read the file (memory, I/O) stops the write. */
static mload_result mload__guard_text(const mload_allocator *a, const mload__ckpt *c, mload__wbuf *ib, mload_error *err) {
    mload_file_desc d;
    mload_file *f = NULL;
    const char *base = c->single + mload__dir_len(c->single);
    uint64_t i;
    mload_result r;
    memset(ib, 0, sizeof(*ib));
    ib->a = a;
    memset(&d, 0, sizeof d);
    d.path = c->single;
    d.allocator = *a;
    if (c->has_single && (r = mload_file_open(&d, &f, err)) != MLOAD_OK) {
        if (r == MLOAD_ERR_OUT_OF_MEMORY || r == MLOAD_ERR_CANNOT_OPEN || r == MLOAD_ERR_IO) return r;
        f = NULL;
    }
    mload__wb_str(ib, "{\n  \"metadata\": {\n    \"total_size\": ");
    mload__wb_u64(ib, f ? mload_file_size(f) - mload_file_data_offset(f) : 0);
    mload__wb_str(ib, "\n  },\n  \"weight_map\": {");
    for (i = 0; f && i < mload_file_count(f); ++i) {
        const mload_tensor *t = mload_file_tensor(f, i);
        mload__wb_str(ib, i ? ",\n    " : "\n    ");
        mload__wb_json(ib, t->name, t->name_len);
        mload__wb_str(ib, ": ");
        mload__wb_json(ib, base, strlen(base));
    }
    mload__wb_str(ib, "\n  }\n}\n");
    mload_file_close(f);
    if (ib->oom) {
        mload__free(a, ib->p, ib->cap, 1);
        return mload__oom(err);
    }
    return MLOAD_OK;
}

static mload_result mload__put_wbuf(const mload_allocator *a, const char *path, mload__wbuf *b, mload_error *err) {
    mload_result r = mload__put_text(a, path, b->p, b->n, err);
    mload__free(a, b->p, b->cap, 1);
    return r;
}

/* after the commit: the old set's files the new set does not name, then
   the folder synced */
static mload_result mload__ckpt_retire(const mload__ckpt *c, char *const *keep, size_t nkeep, int drop_single, mload_error *err) {
    size_t i, k;
    for (i = 0; i < c->nold; ++i) {
        int kept = 0;
        for (k = 0; k < nkeep; ++k) kept |= strcmp(c->old[i], keep[k]) == 0;
        if (!kept) unlink(c->old[i]);
    }
    if (drop_single && c->has_single) unlink(c->single);
    return mload__sync_dir(c->a, c->single, err);
}

/* A sharded write, all-or-nothing for readers of the index and of the
   folder (which opens through its index.json):
   1. leftovers of earlier writes are removed (mload__ckpt_sweep);
   2. without an index, one is made first that describes what is there
      (the single file's tensors, or nothing);
   3. the shards are written under names no file has and the current
      index does not use (standard names, else their "-b" variants), each
      through a synced temporary file and renamed in: readers still see
      the old set;
   4. the new index is renamed over the old one: the commit;
   5. the old set's files are removed, the folder synced.
   A failure before 4 removes what 2 and 3 added; a crash leaves files
   no reader picks up, removed by the next write. */
static mload_result mload__commit_sharded(const char *path, const mload__wt *wt, size_t n, const size_t *shard_of,
                                          const size_t *shard_start, size_t nshards, uint64_t total, const mload_write_opts *opts,
                                          const mload_allocator *a, unsigned char *buf, size_t buf_size, mload_error *err) {
    char **names = MLOAD__CAST(char **, mload__malloc(a, (nshards + 1) * sizeof(char *), sizeof(void *)));
    mload__ckpt c;
    mload__wbuf ib;
    size_t i, placed = 0;
    int variant, clash = 1, guarded = 0;
    mload_result r = mload__ckpt_open(a, path, &c, err);
    struct stat st;
    if (names) memset(names, 0, (nshards + 1) * sizeof(char *));
    if (r == MLOAD_OK && !names) r = mload__oom(err);
    if (r == MLOAD_OK) mload__ckpt_sweep(&c);
    for (variant = 0; variant < 2 && clash && r == MLOAD_OK; ++variant) {
        for (i = 0, clash = 0; i < nshards && r == MLOAD_OK; ++i) {
            mload__strfree(a, names[i]);
            if (!(names[i] = mload__shard_name(a, path, i, nshards, variant))) r = mload__oom(err);
            else clash |= mload__ckpt_names(&c, names[i]) || lstat(names[i], &st) == 0 || errno != ENOENT;
        }
    }
    if (r == MLOAD_OK && clash)
        r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                        "files of both shard name sets of '%s' exist (or the index names them)", path);
    if (r == MLOAD_OK && !c.has_index) { /* 2 */
        if ((r = mload__guard_text(a, &c, &ib, err)) == MLOAD_OK && (r = mload__put_wbuf(a, c.index, &ib, err)) == MLOAD_OK)
            guarded = 1;
    }
    for (i = 0; i < nshards && r == MLOAD_OK; ++i, ++placed) /* 3: fresh names, so a failed one may be removed too */
        r = mload__write_file(names[i], wt + shard_start[i], shard_start[i + 1] - shard_start[i], opts, a, buf, buf_size, NULL, err);
    if (r == MLOAD_OK && (r = mload__index_text(a, wt, n, shard_of, names, total, &ib, err)) == MLOAD_OK)
        r = mload__put_wbuf(a, c.index, &ib, err); /* 4 */
    if (r == MLOAD_OK) r = mload__ckpt_retire(&c, names, nshards, 1, err); /* 5 */
    else {
        for (i = 0; i < placed; ++i) unlink(names[i]);
        if (guarded) unlink(c.index);
    }
    for (i = 0; names && i < nshards; ++i) mload__strfree(a, names[i]);
    mload__free(a, names, (nshards + 1) * sizeof(char *), sizeof(void *));
    mload__ckpt_free(&c);
    return r;
}

/* 1 when no other *.safetensors file than path is in its folder (the folder
   reader, without an index, reads them all) */
static int mload__alone(const mload_allocator *a, const char *path) {
    size_t dl = mload__dir_len(path);
    DIR *dh;
    struct dirent *de;
    int alone;
    (void)mload__opendir_of(a, path, &dh, NULL);
    alone = dh != NULL; /* cannot tell: not alone (the index stays) */
    while (alone && (de = readdir(dh)) != NULL)
        alone = !mload__ends_with(de->d_name, ".safetensors") || strcmp(de->d_name, path + dl) == 0;
    if (dh) closedir(dh);
    return alone;
}

/* A single-file write. Without an index: the file renamed over the old one
   (atomic). Over a sharded checkpoint: the file is placed, an index naming
   only it is renamed over the old index (the commit), then the old shards
   and that index are removed. */
static mload_result mload__commit_single(const char *path, const mload__wt *wt, size_t n, uint64_t total,
                                         const mload_write_opts *opts, const mload_allocator *a, unsigned char *buf,
                                         size_t buf_size, mload_error *err) {
    mload__ckpt c;
    mload__wbuf ib;
    size_t *zeros = NULL;
    char *one[1];
    mload_result r = mload__ckpt_open(a, path, &c, err);
    int only_self; /* an index that names only this file (an interrupted single write) */
    if (r == MLOAD_OK && c.loose)
        r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                        "the folder of '%s' holds its shard files without an index: remove them, or write shards", path);
    if (r == MLOAD_OK) mload__ckpt_sweep(&c);
    only_self = c.nold == 1 && mload__ckpt_names(&c, path);
    if (r == MLOAD_OK && !only_self && mload__ckpt_names(&c, path))
        r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "the index of '%s' names that file and others", path);
    if (r == MLOAD_OK && only_self) { /* the index goes first: readers see the old file, then the new one */
        if (unlink(c.index) != 0 && errno != ENOENT)
            r = mload__fail(err, MLOAD_ERR_IO, MLOAD_NO_OFFSET, NULL, 0, "cannot remove '%s': %s", c.index, mload__sys_reason(errno));
        if (r == MLOAD_OK) r = mload__sync_dir(a, path, err);
    }
    if (r == MLOAD_OK) r = mload__write_file(path, wt, n, opts, a, buf, buf_size, NULL, err);
    if (r == MLOAD_OK && (only_self || !c.has_index)) r = mload__sync_dir(a, path, err);
    else if (r == MLOAD_OK) {
        zeros = MLOAD__CAST(size_t *, mload__malloc(a, (n + 1) * sizeof(size_t), sizeof(size_t)));
        one[0] = MLOAD__CCAST(char *, path);
        if (!zeros) r = mload__oom(err);
        else memset(zeros, 0, (n + 1) * sizeof(size_t));
        if (r == MLOAD_OK && (r = mload__index_text(a, wt, n, zeros, one, total, &ib, err)) == MLOAD_OK)
            r = mload__put_wbuf(a, c.index, &ib, err); /* the commit */
        if (r != MLOAD_OK) {
            if (!c.has_single) unlink(path); /* not committed: the placed file goes */
        } else if ((r = mload__ckpt_retire(&c, one, 1, 0, err)) == MLOAD_OK && mload__alone(a, path)) {
            unlink(c.index); /* the folder is now the single file */
            r = mload__sync_dir(a, path, err);
        } /* else other checkpoint files remain (a killed write's, ...): the index naming only this file stays */
        mload__free(a, zeros, (n + 1) * sizeof(size_t), sizeof(size_t));
    }
    mload__ckpt_free(&c);
    return r;
}

MODELLOAD_API mload_result mload_write(const char *path, const mload_write_tensor *tensors, uint64_t n,
                                       const mload_write_opts *opts, mload_error *err) {
    mload_allocator none;
    const mload_allocator *a;
    mload__wt *wt = NULL;
    mload__index ix;
    unsigned char *buf = NULL;
    size_t i, dup, buf_size = 4u << 20, nshards = 0, pl;
    uint64_t total = 0;
    mload_result r;
    size_t *shard_of = NULL, *shard_start = NULL;
    memset(&none, 0, sizeof none);
    memset(&ix, 0, sizeof ix);
    a = opts ? &opts->allocator : &none;
    if (!path || (n && !tensors) || !mload__allocator_ok(a) || (opts && opts->metadata_count && !opts->metadata))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "write: NULL path or tensors");
    pl = strlen(path);
    if ((r = mload__write_check_meta(opts, a, err)) != MLOAD_OK) return r;
    wt = MLOAD__CAST(mload__wt *, mload__malloc(a, MLOAD__CAST(size_t, n + 1) * sizeof(mload__wt), sizeof(void *)));
    if (!wt) return mload__oom(err);
    for (i = 0; i < n && r == MLOAD_OK; ++i) {
        r = mload__wt_init(&tensors[i], i, &wt[i], err);
        if (r == MLOAD_OK && !mload__add_u64(total, wt[i].nbytes, &total))
            r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, wt[i].name, wt[i].name_len, "too large");
    }
    ix.seed = 0x452821E638D01377ull;
    if (r == MLOAD_OK && !mload__index_build(a, &ix, wt, sizeof(mload__wt), MLOAD__CAST(size_t, n), NULL, 0, &dup)) r = mload__oom(err);
    else if (r == MLOAD_OK && dup != SIZE_MAX)
        r = mload__fail(err, MLOAD_ERR_DUPLICATE_KEY, MLOAD_NO_OFFSET, wt[dup].name, wt[dup].name_len, "tensor '%S' is given twice", wt[dup].name, wt[dup].name_len);
    if (r == MLOAD_OK) {
        qsort(wt, MLOAD__CAST(size_t, n), sizeof(mload__wt), mload__wt_cmp);
        buf = MLOAD__CAST(unsigned char *, mload__malloc(a, buf_size, 64));
        shard_of = MLOAD__CAST(size_t *, mload__malloc(a, MLOAD__CAST(size_t, n + 1) * sizeof(size_t), sizeof(size_t)));
        shard_start = MLOAD__CAST(size_t *, mload__malloc(a, MLOAD__CAST(size_t, n + 2) * sizeof(size_t), sizeof(size_t)));
        if (!buf || !shard_of || !shard_start) r = mload__oom(err);
    }
    if (r == MLOAD_OK) nshards = mload__write_plan(wt, MLOAD__CAST(size_t, n), opts ? opts->shard_bytes : 0, shard_of, shard_start);
    if (r == MLOAD_OK && nshards == 1) {
        r = mload__commit_single(path, wt, MLOAD__CAST(size_t, n), total, opts, a, buf, buf_size, err);
    } else if (r == MLOAD_OK && (pl <= 12 || !mload__ends_with(path, ".safetensors"))) {
        r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "a sharded output path must end in .safetensors");
    } else if (r == MLOAD_OK && nshards > 99999) {
        r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "more than 99999 shards: raise shard_bytes");
    } else if (r == MLOAD_OK) {
        r = mload__commit_sharded(path, wt, MLOAD__CAST(size_t, n), shard_of, shard_start, nshards, total, opts, a, buf, buf_size, err);
    }
    mload__free(a, ix.slots, ix.slots ? (ix.mask + 1) * sizeof(uint64_t) : 0, sizeof(uint64_t));
    mload__free(a, buf, buf_size, 64);
    mload__free(a, shard_of, MLOAD__CAST(size_t, n + 1) * sizeof(size_t), sizeof(size_t));
    mload__free(a, shard_start, MLOAD__CAST(size_t, n + 2) * sizeof(size_t), sizeof(size_t));
    mload__free(a, wt, MLOAD__CAST(size_t, n + 1) * sizeof(mload__wt), sizeof(void *));
    return r;
}
#else /* no POSIX file access */
MODELLOAD_API mload_result mload_write(const char *path, const mload_write_tensor *tensors, uint64_t n,
                                       const mload_write_opts *opts, mload_error *err) {
    (void)path; (void)tensors; (void)n; (void)opts;
    return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, NULL, 0, "the writer needs POSIX file access");
}
#endif

#endif /* !MODELLOAD_NO_WRITER */

/* ==========================================================================
   11. DEVICES                                                    >>devices
   the host device and the simulated device
   ========================================================================== */

#if !defined(MODELLOAD_NO_OFFLOAD)

typedef struct mload__hostdev { mload_allocator a; } mload__hostdev;

static mload_result mload__hd_alloc(void *user, uint64_t size, uint64_t align, void **ptr) {
    mload__hostdev *h = MLOAD__CAST(mload__hostdev *, user);
    if (size > SIZE_MAX) return MLOAD_ERR_OUT_OF_MEMORY;
    *ptr = mload__malloc(&h->a, MLOAD__CAST(size_t, size ? size : 1), MLOAD__CAST(size_t, align < 64 ? 64 : align));
    return *ptr ? MLOAD_OK : MLOAD_ERR_OUT_OF_MEMORY;
}
static void mload__hd_free(void *user, void *ptr, uint64_t size) {
    mload__hostdev *h = MLOAD__CAST(mload__hostdev *, user);
    mload__free(&h->a, ptr, MLOAD__CAST(size_t, size ? size : 1), 64);
}
static mload_result mload__hd_copy(void *user, void *dst, const void *src, uint64_t size, uint64_t *fence) {
    (void)user;
    if (size) memcpy(dst, src, MLOAD__CAST(size_t, size));
    if (fence) *fence = 0;
    return MLOAD_OK;
}
static mload_result mload__hd_wait(void *user, uint64_t fence) { (void)user; (void)fence; return MLOAD_OK; }
static mload_result mload__hd_convert(void *user, void *dst, mload_dtype dt, const void *src, mload_dtype st, uint64_t count) {
    (void)user;
    return mload_cast(dst, dt, src, st, count, MLOAD_F8_OVERFLOW_SATURATE, NULL);
}
static mload_result mload__hd_convert_async(void *user, void *dst, mload_dtype dt, const void *src, mload_dtype st, uint64_t count,
                                            uint32_t flags, uint64_t *fence) {
    (void)user;
    if (fence) *fence = 0;
    return mload_cast(dst, dt, src, st, count, flags & MLOAD_F8_OVERFLOW_NONSAT ? MLOAD_F8_OVERFLOW_NONSAT : MLOAD_F8_OVERFLOW_SATURATE, NULL);
}
/* host work is synchronous: every event has passed when it is recorded */
static mload_result mload__hd_record(void *user, void *stream, uint64_t *event) {
    (void)user;
    (void)stream;
    *event = 0;
    return MLOAD_OK;
}
static mload_result mload__hd_event_wait(void *user, uint64_t event) { (void)user; (void)event; return MLOAD_OK; }
static mload_result mload__hd_stream_wait(void *user, void *stream, uint64_t fence) { (void)user; (void)stream; (void)fence; return MLOAD_OK; }
static void mload__hd_destroy(void *user) {
    mload__hostdev *h = MLOAD__CAST(mload__hostdev *, user);
    mload_allocator a = h->a;
    mload__free(&a, h, sizeof(*h), sizeof(void *));
}

/* a built-in device: its zeroed state of `size` bytes (default allocator)
   behind a copy of `table` in *out */
static void *mload__device_new(const mload_device *table, size_t size, mload_device *out, mload_error *err) {
    void *state;
    if (!out) {
        mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "device: NULL out");
        return NULL;
    }
    memset(out, 0, sizeof(*out));
    if (!(state = mload__malloc(NULL, size, sizeof(void *)))) {
        mload__oom(err);
        return NULL;
    }
    memset(state, 0, size);
    *out = *table;
    out->user = state;
    return state;
}

static const mload_device mload__host_table = {"host", mload__hd_alloc, mload__hd_free, mload__hd_copy, mload__hd_copy,
                                               mload__hd_wait, mload__hd_convert, NULL, mload__hd_destroy, NULL,
                                               NULL, NULL, mload__hd_convert_async, NULL,
                                               mload__hd_record, mload__hd_event_wait, mload__hd_stream_wait};

MODELLOAD_API mload_result mload_device_create_host(mload_device *out, mload_error *err) {
    if (!mload__device_new(&mload__host_table, sizeof(mload__hostdev), out, err))
        return out ? MLOAD_ERR_OUT_OF_MEMORY : MLOAD_ERR_INVALID_ARGUMENT;
    return MLOAD_OK;
}

/* The simulated device: host memory under a capacity, copies run in order
   by a worker (throttled to bytes_per_second), so transfer time is real. */
/* a copy of size bytes, or (cast) a cast of size elements from st to dt
   with F8 overflow mode ov (fits a worker queue's 48-byte entries) */
typedef struct mload__simjob {
    void *dst;
    const void *src;
    uint64_t size, fence;
    uint8_t cast, dt, st, ov;
} mload__simjob;
/* A stream of the simulated device: its own thread runs its work in order
   (jobs: fn(arg), then a wait for a copy fence, then a mark); an event is
   (stream number + 1) << 56 | mark, or a copy fence for the default stream. */
#define MLOAD__SIM_STREAMS 8u
struct mload__sim;
typedef struct mload__simstream {
    struct mload__sim *sim;
    mload__worker w;   /* its mutex guards marks and done */
    uint64_t marks, done;
} mload__simstream;
typedef struct mload__simsjob { void (*fn)(void *); void *arg; uint64_t fence, mark; } mload__simsjob;

typedef struct mload__sim {
    mload__hostdev base;
    uint64_t capacity, used, bps;
    uint64_t submitted, completed; /* fences */
    mload__simstream *streams[MLOAD__SIM_STREAMS];
    uint32_t nstreams;
    char detail[96];               /* the last refused allocation */
    mload__worker w;               /* its mutex guards the fields above */
} mload__sim;


/* (when system headers came before this file without feature macros,
   glibc hides the POSIX clocks: timings then read 0 and the simulated
   device is not throttled) */
static void mload__sleep_ns(uint64_t ns) {
#if defined(MLOAD__POSIX) && defined(CLOCK_MONOTONIC)
    struct timespec ts;
    ts.tv_sec = MLOAD__CAST(time_t, ns / 1000000000u);
    ts.tv_nsec = MLOAD__CAST(long, ns % 1000000000u);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
#else
    (void)ns;
#endif
}

static void mload__sim_do(mload__sim *s, const mload__simjob *j) {
    uint64_t t0 = mload__now_ns();
    if (j->cast) { /* checked by the caller: cannot fail */
        (void)mload_cast(j->dst, MLOAD__CAST(mload_dtype, j->dt), j->src, MLOAD__CAST(mload_dtype, j->st), j->size,
                         MLOAD__CAST(mload_f8_overflow, j->ov), NULL);
        return;
    }
    if (s->bps) { /* the transfer takes size / bps, the copy's own time included: the bytes land at its end */
        uint64_t want = j->size / s->bps * 1000000000u + j->size % s->bps * 1000000000u / s->bps, spent;
        if (j->size) memcpy(j->dst, j->src, MLOAD__CAST(size_t, j->size) / 2); /* half of it, to time the rest */
        spent = mload__now_ns() - t0;
        if (want > 2 * spent) mload__sleep_ns(want - 2 * spent);
        if (j->size) memcpy(MLOAD__CAST(unsigned char *, j->dst) + j->size / 2, MLOAD__CAST(const unsigned char *, j->src) + j->size / 2,
                            MLOAD__CAST(size_t, j->size - j->size / 2));
        return;
    }
    if (j->size) memcpy(j->dst, j->src, MLOAD__CAST(size_t, j->size));
}

/* the worker's job (mutex held on entry and exit) */
static void mload__sim_run(void *owner, void *job) {
    mload__sim *s = MLOAD__CAST(mload__sim *, owner);
    mload__simjob j;
    memcpy(&j, job, sizeof j);
    mload__unlock(&s->w.mu);
    mload__sim_do(s, &j);
    mload__lock(&s->w.mu);
    s->completed = j.fence;
}

static mload_result mload__sim_alloc(void *user, uint64_t size, uint64_t align, void **ptr) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    mload_result r;
    uint64_t sz = size ? size : 1;
    mload__lock(&s->w.mu);
    if (sz > s->capacity - s->used) {
        r = MLOAD_ERR_DEVICE;
        mload__sfmt(s->detail, sizeof s->detail, "sim: %U bytes asked, %U of %U free", sz, s->capacity - s->used, s->capacity);
    } else if ((r = mload__hd_alloc(&s->base, size, align, ptr)) == MLOAD_OK) {
        s->used += sz;
    }
    mload__unlock(&s->w.mu);
    if (r != MLOAD_OK) *ptr = NULL;
    return r;
}
static mload_result mload__sim_wait(void *user, uint64_t fence);
static void mload__sim_free(void *user, void *ptr, uint64_t size) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    uint64_t last;
    if (!ptr) return;
    mload__lock(&s->w.mu);
    last = s->submitted;
    mload__unlock(&s->w.mu);
    (void)mload__sim_wait(user, last); /* after the copies queued before it, as a stream-ordered free */
    mload__hd_free(&s->base, ptr, size);
    mload__lock(&s->w.mu);
    s->used -= size ? size : 1;
    mload__unlock(&s->w.mu);
}
/* queues j (in order with everything before it) and gives its fence */
static mload_result mload__sim_queue(mload__sim *s, mload__simjob *j, uint64_t *fence);

static mload_result mload__sim_copy(void *user, void *dst, const void *src, uint64_t size, uint64_t *fence) {
    mload__simjob j;
    memset(&j, 0, sizeof j);
    j.dst = dst;
    j.src = src;
    j.size = size;
    return mload__sim_queue(MLOAD__CAST(mload__sim *, user), &j, fence);
}
static mload_result mload__sim_convert_async(void *user, void *dst, mload_dtype dt, const void *src, mload_dtype st, uint64_t count,
                                             uint32_t flags, uint64_t *fence) {
    mload__simjob j;
    if (!mload_cast_supported(dt, st)) return MLOAD_ERR_UNSUPPORTED;
    memset(&j, 0, sizeof j);
    j.dst = dst;
    j.src = src;
    j.size = count;
    j.cast = 1;
    j.dt = MLOAD__CAST(uint8_t, dt);
    j.st = MLOAD__CAST(uint8_t, st);
    j.ov = MLOAD__CAST(uint8_t, flags & MLOAD_F8_OVERFLOW_NONSAT ? MLOAD_F8_OVERFLOW_NONSAT : MLOAD_F8_OVERFLOW_SATURATE);
    if (!count) { if (fence) *fence = 0; return MLOAD_OK; }
    return mload__sim_queue(MLOAD__CAST(mload__sim *, user), &j, fence);
}
static mload_result mload__sim_queue(mload__sim *s, mload__simjob *jp, uint64_t *fence) {
    mload__simjob j = *jp;
    mload_result r = MLOAD_OK;
    mload__lock(&s->w.mu);
    j.fence = ++s->submitted;
    if (!s->w.started) { /* no thread: the copy happens now */
        mload__sim_do(s, &j);
        s->completed = j.fence;
    } else if (!mload__worker_push(&s->w, &j)) {
        s->submitted--;
        r = MLOAD_ERR_OUT_OF_MEMORY;
    }
    mload__unlock(&s->w.mu);
    if (fence && r == MLOAD_OK) *fence = j.fence;
    return r;
}
static mload_result mload__sim_wait(void *user, uint64_t fence) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    mload__lock(&s->w.mu);
    while (s->completed < fence) mload__cond_wait(&s->w.done, &s->w.mu);
    mload__unlock(&s->w.mu);
    return MLOAD_OK;
}
static mload_result mload__sim_convert(void *user, void *dst, mload_dtype dt, const void *src, mload_dtype st, uint64_t count) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    uint64_t last;
    mload__lock(&s->w.mu);
    last = s->submitted;
    mload__unlock(&s->w.mu);
    mload__sim_wait(user, last); /* stream order: after the copies before it */
    return mload_cast(dst, dt, src, st, count, MLOAD_F8_OVERFLOW_SATURATE, NULL);
}
static mload_result mload__sim_mem(void *user, uint64_t *free_bytes, uint64_t *total) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    mload__lock(&s->w.mu);
    if (free_bytes) *free_bytes = s->capacity - s->used;
    if (total) *total = s->capacity;
    mload__unlock(&s->w.mu);
    return MLOAD_OK;
}
static void mload__sim_destroy(void *user) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    mload_allocator a = s->base.a;
    uint32_t i;
    for (i = 0; i < s->nstreams; ++i) { /* their queued work runs first */
        mload__worker_destroy(&s->streams[i]->w);
        mload__free(&a, s->streams[i], sizeof(mload__simstream), sizeof(void *));
    }
    mload__worker_destroy(&s->w);
    mload__free(&a, s, sizeof(*s), sizeof(void *));
}

/* the worker of a simulated stream (its mutex held on entry and exit) */
static void mload__simstream_run(void *owner, void *job) {
    mload__simstream *st = MLOAD__CAST(mload__simstream *, owner);
    mload__simsjob j;
    memcpy(&j, job, sizeof j);
    mload__unlock(&st->w.mu);
    if (j.fn) j.fn(j.arg);
    if (j.fence) (void)mload__sim_wait(st->sim, j.fence);
    mload__lock(&st->w.mu);
    if (j.mark) st->done = j.mark;
}

/* the number of stream `stream` of s, or -1 (s->w.mu held) */
static int mload__sim_stream_no(const mload__sim *s, const void *stream) {
    uint32_t i;
    for (i = 0; i < s->nstreams; ++i)
        if (s->streams[i] == stream) return MLOAD__CAST(int, i);
    return -1;
}

/* queues j on stream (or runs it now without a thread); j.mark is set to
   the next mark when `mark` */
static mload_result mload__sim_stream_push(mload__sim *s, void *stream, mload__simsjob *j, int mark, uint64_t *event) {
    mload__simstream *st;
    int no;
    mload__lock(&s->w.mu);
    no = mload__sim_stream_no(s, stream);
    mload__unlock(&s->w.mu);
    if (no < 0) return MLOAD_ERR_INVALID_ARGUMENT;
    st = s->streams[no];
    mload__lock(&st->w.mu);
    if (mark) j->mark = ++st->marks;
    if (!st->w.started) {
        mload__unlock(&st->w.mu);
        if (j->fn) j->fn(j->arg);
        if (j->fence) (void)mload__sim_wait(s, j->fence);
        mload__lock(&st->w.mu);
        if (j->mark) st->done = j->mark;
    } else if (!mload__worker_push(&st->w, j)) {
        if (mark) st->marks--;
        mload__unlock(&st->w.mu);
        return MLOAD_ERR_OUT_OF_MEMORY;
    }
    mload__unlock(&st->w.mu);
    if (event) *event = (MLOAD__CAST(uint64_t, no) + 1u) << 56 | j->mark;
    return MLOAD_OK;
}

static mload_result mload__sim_record(void *user, void *stream, uint64_t *event) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    mload__simsjob j;
    if (!stream) { /* the default stream: the copies queued so far */
        mload__lock(&s->w.mu);
        *event = s->submitted;
        mload__unlock(&s->w.mu);
        return MLOAD_OK;
    }
    memset(&j, 0, sizeof j);
    return mload__sim_stream_push(s, stream, &j, 1, event);
}

static mload_result mload__sim_event_wait(void *user, uint64_t event) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    uint64_t no = event >> 56, mark = event & ((MLOAD__CAST(uint64_t, 1) << 56) - 1u);
    mload__simstream *st;
    if (no == 0) return mload__sim_wait(user, event);
    mload__lock(&s->w.mu);
    st = no <= s->nstreams ? s->streams[no - 1u] : NULL;
    mload__unlock(&s->w.mu);
    if (!st) return MLOAD_ERR_INVALID_ARGUMENT;
    mload__lock(&st->w.mu);
    while (st->done < mark) mload__cond_wait(&st->w.done, &st->w.mu);
    mload__unlock(&st->w.mu);
    return MLOAD_OK;
}

static mload_result mload__sim_stream_wait(void *user, void *stream, uint64_t fence) {
    mload__simsjob j;
    if (!stream) return MLOAD_OK; /* the default stream is the copies' own order */
    memset(&j, 0, sizeof j);
    j.fence = fence;
    return mload__sim_stream_push(MLOAD__CAST(mload__sim *, user), stream, &j, 0, NULL);
}

static const char *mload__sim_detail(void *user) {
    mload__sim *s = MLOAD__CAST(mload__sim *, user);
    return s->detail[0] ? s->detail : NULL;
}

static mload_result mload__sim_host_alloc(void *user, uint64_t size, void **ptr) {
    return mload__hd_alloc(&MLOAD__CAST(mload__sim *, user)->base, size, 64, ptr);
}
static void mload__sim_host_free(void *user, void *ptr, uint64_t size) {
    mload__hd_free(&MLOAD__CAST(mload__sim *, user)->base, ptr, size);
}

static const mload_device mload__sim_table = {"sim", mload__sim_alloc, mload__sim_free, mload__sim_copy, mload__sim_copy,
                                              mload__sim_wait, mload__sim_convert, mload__sim_mem, mload__sim_destroy, NULL,
                                              mload__sim_host_alloc, mload__sim_host_free, mload__sim_convert_async, mload__sim_detail,
                                              mload__sim_record, mload__sim_event_wait, mload__sim_stream_wait};

MODELLOAD_API mload_result mload_device_create_sim(uint64_t capacity, uint64_t bytes_per_second, mload_device *out,
                                                   mload_error *err) {
    mload__sim *s = MLOAD__CAST(mload__sim *, mload__device_new(&mload__sim_table, sizeof(mload__sim), out, err));
    if (!s) return out ? MLOAD_ERR_OUT_OF_MEMORY : MLOAD_ERR_INVALID_ARGUMENT;
    s->capacity = capacity;
    s->bps = bytes_per_second;
    mload__worker_init(&s->w, NULL, sizeof(mload__simjob), mload__sim_run, s, 1);
    return MLOAD_OK;
}

MODELLOAD_API void *mload_device_sim_stream(const mload_device *sim) {
    mload__sim *s;
    mload__simstream *st;
    if (!sim || sim->record != mload__sim_record || !sim->user) return NULL; /* a simulated device's table */
    s = MLOAD__CAST(mload__sim *, sim->user);
    st = MLOAD__CAST(mload__simstream *, mload__malloc(&s->base.a, sizeof(*st), sizeof(void *)));
    if (!st) return NULL;
    memset(st, 0, sizeof(*st));
    st->sim = s;
    mload__lock(&s->w.mu);
    if (s->nstreams == MLOAD__SIM_STREAMS) {
        mload__unlock(&s->w.mu);
        mload__free(&s->base.a, st, sizeof(*st), sizeof(void *));
        return NULL;
    }
    mload__worker_init(&st->w, &s->base.a, sizeof(mload__simsjob), mload__simstream_run, st, 1);
    s->streams[s->nstreams++] = st;
    mload__unlock(&s->w.mu);
    return st;
}

MODELLOAD_API mload_result mload_device_sim_launch(const mload_device *sim, void *stream, void (*fn)(void *arg), void *arg) {
    mload__simsjob j;
    if (!sim || sim->record != mload__sim_record || !sim->user || !fn) return MLOAD_ERR_INVALID_ARGUMENT;
    memset(&j, 0, sizeof j);
    j.fn = fn;
    j.arg = arg;
    return mload__sim_stream_push(MLOAD__CAST(mload__sim *, sim->user), stream, &j, 0, NULL);
}

#if defined(MODELLOAD_CUDA)
/* ---- the CUDA back end (MODELLOAD_CUDA; link with -lcudart) ----
   One copy stream per device carries every upload, download, conversion
   and free, in order; a fence is the number of an event recorded after its
   work, kept in a ring of MLOAD__CU_RING (a fence that old is waited for
   before its slot is reused). Device memory comes from the stream-ordered
   pool (cudaMallocAsync / cudaFreeAsync on the copy stream): no device-wide
   cudaFree. Conversions run the PTX kernel embedded below (tests/gpu/
   cast_kernel.cu), loaded at create with cudaLibraryLoadData; when it
   cannot be loaded (an old driver, CUDA < 12) convert_async is absent and
   the manager converts on the host. Host staging is page-locked up to
   MLOAD__CU_PINNED bytes, pageable beyond (slower copies, no failure).
   Every callback selects the device first: the prefetch worker and bulk
   load threads call in too. */

#define MLOAD__CU_RING 64u
#define MLOAD__CU_PINNED (MLOAD__CAST(uint64_t, 512) << 20)

/* >>ptx (generated by tests/gpu/embed_ptx.sh from tests/gpu/cast_kernel.cu; do not edit) */
static const char *const mload__cast_ptx[] = {
    "//\n",
    "// Generated by NVIDIA NVVM Compiler\n",
    "//\n",
    "// Compiler Build ID: CL-36424714\n",
    "// Cuda compilation tools, release 13.0, V13.0.88\n",
    "// Based on NVVM 7.0.1\n",
    "//\n",
    "\n",
    ".version 6.0\n",
    ".target sm_70\n",
    ".address_size 64\n",
    "\n",
    "	// .globl	mload_cast_kernel\n",
    "\n",
    ".visible .entry mload_cast_kernel(\n",
    "	.param .u64 mload_cast_kernel_param_0,\n",
    "	.param .u32 mload_cast_kernel_param_1,\n",
    "	.param .u64 mload_cast_kernel_param_2,\n",
    "	.param .u32 mload_cast_kernel_param_3,\n",
    "	.param .u64 mload_cast_kernel_param_4,\n",
    "	.param .u32 mload_cast_kernel_param_5\n",
    ")\n",
    "{\n",
    "	.reg .pred 	%p<75>;\n",
    "	.reg .b16 	%rs<7>;\n",
    "	.reg .b32 	%r<258>;\n",
    "	.reg .b64 	%rd<24>;\n",
    "\n",
    "\n",
    "	ld.param.u64 	%rd15, [mload_cast_kernel_param_0];\n",
    "	ld.param.u32 	%r87, [mload_cast_kernel_param_1];\n",
    "	ld.param.u64 	%rd16, [mload_cast_kernel_param_2];\n",
    "	ld.param.u32 	%r88, [mload_cast_kernel_param_3];\n",
    "	ld.param.u64 	%rd14, [mload_cast_kernel_param_4];\n",
    "	ld.param.u32 	%r89, [mload_cast_kernel_param_5];\n",
    "	cvta.to.global.u64 	%rd1, %rd15;\n",
    "	cvta.to.global.u64 	%rd2, %rd16;\n",
    "	mov.u32 	%r90, %ctaid.x;\n",
    "	mov.u32 	%r91, %ntid.x;\n",
    "	cvt.u64.u32 	%rd3, %r91;\n",
    "	mul.wide.u32 	%rd17, %r90, %r91;\n",
    "	mov.u32 	%r92, %tid.x;\n",
    "	cvt.u64.u32 	%rd18, %r92;\n",
    "	add.s64 	%rd23, %rd17, %rd18;\n",
    "	setp.ge.u64 	%p3, %rd23, %rd14;\n",
    "	@%p3 bra 	$L__BB0_93;\n",
    "\n",
    "	setp.eq.s32 	%p4, %r88, 7;\n",
    "	setp.eq.s32 	%p5, %r87, 14;\n",
    "	and.pred  	%p1, %p5, %p4;\n",
    "	setp.eq.s32 	%p6, %r87, 15;\n",
    "	and.pred  	%p2, %p6, %p4;\n",
    "	or.b32  	%r1, %r88, 1;\n",
    "	and.b32  	%r2, %r89, 1;\n",
    "	mov.u32 	%r93, %nctaid.x;\n",
    "	cvt.u64.u32 	%rd19, %r93;\n",
    "	mul.lo.s64 	%rd5, %rd19, %rd3;\n",
    "	bra.uni 	$L__BB0_2;\n",
    "\n",
    "$L__BB0_16:\n",
    "	setp.eq.s32 	%p9, %r88, 15;\n",
    "	@%p9 bra 	$L__BB0_19;\n",
    "\n",
    "	setp.ne.s32 	%p10, %r88, 18;\n",
    "	@%p10 bra 	$L__BB0_28;\n",
    "\n",
    "	ld.global.u32 	%r249, [%rd9];\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_77:\n",
    "	ld.global.u8 	%rs2, [%rd7];\n",
    "	st.global.u8 	[%rd12], %rs2;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_22:\n",
    "	ld.global.u8 	%r109, [%rd7];\n",
    "	shl.b32 	%r110, %r109, 24;\n",
    "	and.b32  	%r249, %r110, -2147483648;\n",
    "	and.b32  	%r19, %r109, 127;\n",
    "	setp.eq.s32 	%p18, %r19, 127;\n",
    "	@%p18 bra 	$L__BB0_27;\n",
    "	bra.uni 	$L__BB0_23;\n",
    "\n",
    "$L__BB0_27:\n",
    "	or.b32  	%r249, %r249, 2143289344;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_19:\n",
    "	ld.global.u16 	%r94, [%rd10];\n",
    "	shl.b32 	%r249, %r94, 16;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_28:\n",
    "	ld.global.u8 	%rs1, [%rd7];\n",
    "	cvt.u32.u16 	%r23, %rs1;\n",
    "	mul.wide.u16 	%r122, %rs1, 256;\n",
    "	shl.b32 	%r123, %r23, 24;\n",
    "	and.b32  	%r249, %r123, -2147483648;\n",
    "	and.b32  	%r247, %r122, 32512;\n",
    "	setp.gt.u32 	%p23, %r247, 31743;\n",
    "	@%p23 bra 	$L__BB0_37;\n",
    "	bra.uni 	$L__BB0_29;\n",
    "\n",
    "$L__BB0_37:\n",
    "	shl.b32 	%r135, %r23, 21;\n",
    "	or.b32  	%r136, %r249, %r135;\n",
    "	or.b32  	%r249, %r136, 2139095040;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_9:\n",
    "	setp.gt.u32 	%p14, %r243, 1023;\n",
    "	@%p14 bra 	$L__BB0_20;\n",
    "	bra.uni 	$L__BB0_10;\n",
    "\n",
    "$L__BB0_20:\n",
    "	shl.b32 	%r105, %r243, 13;\n",
    "	add.s32 	%r106, %r105, 939524096;\n",
    "	or.b32  	%r249, %r106, %r249;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_23:\n",
    "	setp.gt.u32 	%p19, %r19, 7;\n",
    "	@%p19 bra 	$L__BB0_26;\n",
    "	bra.uni 	$L__BB0_24;\n",
    "\n",
    "$L__BB0_26:\n",
    "	shl.b32 	%r120, %r19, 20;\n",
    "	add.s32 	%r121, %r120, 1006632960;\n",
    "	or.b32  	%r249, %r121, %r249;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_29:\n",
    "	setp.gt.u32 	%p24, %r247, 1023;\n",
    "	@%p24 bra 	$L__BB0_36;\n",
    "	bra.uni 	$L__BB0_30;\n",
    "\n",
    "$L__BB0_36:\n",
    "	shl.b32 	%r133, %r247, 13;\n",
    "	add.s32 	%r134, %r133, 939524096;\n",
    "	or.b32  	%r249, %r134, %r249;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_10:\n",
    "	setp.eq.s32 	%p15, %r243, 0;\n",
    "	@%p15 bra 	$L__BB0_38;\n",
    "\n",
    "	and.b32  	%r97, %r5, 1024;\n",
    "	setp.ne.s32 	%p16, %r97, 0;\n",
    "	mov.u32 	%r244, 947912704;\n",
    "	@%p16 bra 	$L__BB0_15;\n",
    "\n",
    "	mov.u32 	%r241, 0;\n",
    "\n",
    "$L__BB0_13:\n",
    "	shl.b32 	%r10, %r243, 1;\n",
    "	add.s32 	%r241, %r241, 1;\n",
    "	and.b32  	%r99, %r243, 512;\n",
    "	setp.eq.s32 	%p17, %r99, 0;\n",
    "	mov.u32 	%r243, %r10;\n",
    "	@%p17 bra 	$L__BB0_13;\n",
    "\n",
    "	shl.b32 	%r100, %r241, 23;\n",
    "	mov.u32 	%r101, 947912704;\n",
    "	sub.s32 	%r244, %r101, %r100;\n",
    "	mov.u32 	%r243, %r10;\n",
    "\n",
    "$L__BB0_15:\n",
    "	shl.b32 	%r102, %r243, 13;\n",
    "	and.b32  	%r103, %r102, 8380416;\n",
    "	or.b32  	%r104, %r244, %r249;\n",
    "	or.b32  	%r249, %r104, %r103;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_24:\n",
    "	setp.eq.s32 	%p20, %r19, 0;\n",
    "	@%p20 bra 	$L__BB0_38;\n",
    "\n",
    "	setp.gt.u32 	%p21, %r19, 3;\n",
    "	setp.ne.s32 	%p22, %r19, 1;\n",
    "	selp.u32 	%r111, 1, 0, %p22;\n",
    "	selp.b32 	%r112, 2, %r111, %p21;\n",
    "	shl.b32 	%r113, %r112, 23;\n",
    "	mov.u32 	%r114, 23;\n",
    "	add.s32 	%r115, %r113, 989855744;\n",
    "	or.b32  	%r116, %r115, %r249;\n",
    "	sub.s32 	%r117, %r114, %r112;\n",
    "	shl.b32 	%r118, %r19, %r117;\n",
    "	and.b32  	%r119, %r118, 8388607;\n",
    "	or.b32  	%r249, %r116, %r119;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_30:\n",
    "	setp.eq.s32 	%p25, %r247, 0;\n",
    "	@%p25 bra 	$L__BB0_38;\n",
    "\n",
    "	and.b32  	%r125, %r23, 4;\n",
    "	setp.ne.s32 	%p26, %r125, 0;\n",
    "	mov.u32 	%r248, 947912704;\n",
    "	@%p26 bra 	$L__BB0_35;\n",
    "\n",
    "	mov.u32 	%r245, 0;\n",
    "\n",
    "$L__BB0_33:\n",
    "	shl.b32 	%r28, %r247, 1;\n",
    "	add.s32 	%r245, %r245, 1;\n",
    "	and.b32  	%r127, %r247, 512;\n",
    "	setp.eq.s32 	%p27, %r127, 0;\n",
    "	mov.u32 	%r247, %r28;\n",
    "	@%p27 bra 	$L__BB0_33;\n",
    "\n",
    "	shl.b32 	%r128, %r245, 23;\n",
    "	mov.u32 	%r129, 947912704;\n",
    "	sub.s32 	%r248, %r129, %r128;\n",
    "	mov.u32 	%r247, %r28;\n",
    "\n",
    "$L__BB0_35:\n",
    "	shl.b32 	%r130, %r247, 13;\n",
    "	and.b32  	%r131, %r130, 8372224;\n",
    "	or.b32  	%r132, %r248, %r249;\n",
    "	or.b32  	%r249, %r132, %r131;\n",
    "\n",
    "$L__BB0_38:\n",
    "	setp.gt.s32 	%p28, %r87, 14;\n",
    "	@%p28 bra 	$L__BB0_44;\n",
    "\n",
    "	setp.eq.s32 	%p31, %r87, 8;\n",
    "	@%p31 bra 	$L__BB0_55;\n",
    "\n",
    "	@%p5 bra 	$L__BB0_41;\n",
    "	bra.uni 	$L__BB0_65;\n",
    "\n",
    "$L__BB0_41:\n",
    "	shr.u32 	%r144, %r249, 16;\n",
    "	and.b32  	%r40, %r144, 32768;\n",
    "	and.b32  	%r41, %r249, 2147483647;\n",
    "	setp.gt.u32 	%p34, %r41, 2139095040;\n",
    "	@%p34 bra 	$L__BB0_54;\n",
    "	bra.uni 	$L__BB0_42;\n",
    "\n",
    "$L__BB0_54:\n",
    "	or.b32  	%r48, %r40, 32256;\n",
    "	st.global.u16 	[%rd8], %r48;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_44:\n",
    "	@%p6 bra 	$L__BB0_47;\n",
    "\n",
    "	setp.ne.s32 	%p30, %r87, 18;\n",
    "	@%p30 bra 	$L__BB0_65;\n",
    "\n",
    "	st.global.u32 	[%rd11], %r249;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_55:\n",
    "	shr.u32 	%r50, %r249, 24;\n",
    "	and.b32  	%r51, %r50, 128;\n",
    "	and.b32  	%r52, %r249, 2147483647;\n",
    "	setp.gt.u32 	%p43, %r52, 2139095040;\n",
    "	@%p43 bra 	$L__BB0_64;\n",
    "	bra.uni 	$L__BB0_56;\n",
    "\n",
    "$L__BB0_64:\n",
    "	or.b32  	%r60, %r50, 127;\n",
    "	st.global.u8 	[%rd12], %r60;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_47:\n",
    "	and.b32  	%r137, %r249, 2147483647;\n",
    "	setp.gt.u32 	%p33, %r137, 2139095040;\n",
    "	@%p33 bra 	$L__BB0_49;\n",
    "	bra.uni 	$L__BB0_48;\n",
    "\n",
    "$L__BB0_49:\n",
    "	shr.u32 	%r142, %r249, 16;\n",
    "	and.b32  	%r143, %r142, 32768;\n",
    "	or.b32  	%r38, %r143, 32704;\n",
    "	st.global.u16 	[%rd8], %r38;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_65:\n",
    "	shr.u32 	%r188, %r249, 24;\n",
    "	and.b32  	%r62, %r188, 128;\n",
    "	and.b32  	%r63, %r249, 2147483647;\n",
    "	setp.gt.u32 	%p55, %r63, 2139095040;\n",
    "	@%p55 bra 	$L__BB0_74;\n",
    "	bra.uni 	$L__BB0_66;\n",
    "\n",
    "$L__BB0_74:\n",
    "	or.b32  	%r71, %r62, 126;\n",
    "	st.global.u8 	[%rd12], %r71;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_42:\n",
    "	setp.lt.u32 	%p35, %r41, 947912704;\n",
    "	@%p35 bra 	$L__BB0_50;\n",
    "	bra.uni 	$L__BB0_43;\n",
    "\n",
    "$L__BB0_50:\n",
    "	shr.u32 	%r43, %r41, 23;\n",
    "	setp.eq.s32 	%p36, %r43, 0;\n",
    "	mov.u32 	%r250, 0;\n",
    "	@%p36 bra 	$L__BB0_53;\n",
    "\n",
    "	mov.u32 	%r153, 126;\n",
    "	sub.s32 	%r44, %r153, %r43;\n",
    "	setp.gt.u32 	%p37, %r44, 31;\n",
    "	@%p37 bra 	$L__BB0_53;\n",
    "\n",
    "	and.b32  	%r154, %r249, 8388607;\n",
    "	or.b32  	%r155, %r154, 8388608;\n",
    "	shr.u32 	%r156, %r155, %r44;\n",
    "	mov.u32 	%r157, -1;\n",
    "	shl.b32 	%r158, %r157, %r44;\n",
    "	not.b32 	%r159, %r158;\n",
    "	and.b32  	%r160, %r155, %r159;\n",
    "	add.s32 	%r161, %r44, -1;\n",
    "	mov.u32 	%r162, 1;\n",
    "	shl.b32 	%r163, %r162, %r161;\n",
    "	setp.gt.u32 	%p38, %r160, %r163;\n",
    "	setp.eq.s32 	%p39, %r160, %r163;\n",
    "	and.b32  	%r164, %r156, 1;\n",
    "	setp.eq.b32 	%p40, %r164, 1;\n",
    "	and.pred  	%p41, %p39, %p40;\n",
    "	or.pred  	%p42, %p38, %p41;\n",
    "	selp.u32 	%r165, 1, 0, %p42;\n",
    "	add.s32 	%r250, %r156, %r165;\n",
    "\n",
    "$L__BB0_53:\n",
    "	or.b32  	%r47, %r250, %r40;\n",
    "	st.global.u16 	[%rd8], %r47;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_56:\n",
    "	setp.ne.s32 	%p44, %r2, 0;\n",
    "	setp.gt.u32 	%p45, %r52, 1139277824;\n",
    "	and.pred  	%p46, %p44, %p45;\n",
    "	@%p46 bra 	$L__BB0_63;\n",
    "	bra.uni 	$L__BB0_57;\n",
    "\n",
    "$L__BB0_63:\n",
    "	or.b32  	%r59, %r50, 127;\n",
    "	st.global.u8 	[%rd12], %r59;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_48:\n",
    "	shr.u32 	%r138, %r249, 16;\n",
    "	and.b32  	%r139, %r138, 1;\n",
    "	add.s32 	%r140, %r249, %r139;\n",
    "	add.s32 	%r141, %r140, 32767;\n",
    "	shr.u32 	%r37, %r141, 16;\n",
    "	st.global.u16 	[%rd8], %r37;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_66:\n",
    "	setp.ne.s32 	%p56, %r2, 0;\n",
    "	setp.gt.u32 	%p57, %r63, 1198522367;\n",
    "	and.pred  	%p58, %p56, %p57;\n",
    "	@%p58 bra 	$L__BB0_73;\n",
    "	bra.uni 	$L__BB0_67;\n",
    "\n",
    "$L__BB0_73:\n",
    "	or.b32  	%r70, %r62, 124;\n",
    "	st.global.u8 	[%rd12], %r70;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_43:\n",
    "	min.u32 	%r145, %r41, 1199566848;\n",
    "	shr.u32 	%r146, %r145, 13;\n",
    "	and.b32  	%r147, %r146, 1;\n",
    "	add.s32 	%r148, %r145, %r147;\n",
    "	add.s32 	%r149, %r148, -939520001;\n",
    "	shr.u32 	%r150, %r149, 13;\n",
    "	or.b32  	%r42, %r150, %r40;\n",
    "	st.global.u16 	[%rd8], %r42;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_57:\n",
    "	setp.lt.u32 	%p47, %r52, 1015021568;\n",
    "	@%p47 bra 	$L__BB0_59;\n",
    "	bra.uni 	$L__BB0_58;\n",
    "\n",
    "$L__BB0_59:\n",
    "	shr.u32 	%r54, %r52, 23;\n",
    "	setp.eq.s32 	%p48, %r54, 0;\n",
    "	mov.u32 	%r251, 0;\n",
    "	@%p48 bra 	$L__BB0_62;\n",
    "\n",
    "	mov.u32 	%r175, 141;\n",
    "	sub.s32 	%r55, %r175, %r54;\n",
    "	setp.gt.u32 	%p49, %r55, 31;\n",
    "	@%p49 bra 	$L__BB0_62;\n",
    "\n",
    "	and.b32  	%r176, %r249, 8388607;\n",
    "	or.b32  	%r177, %r176, 8388608;\n",
    "	shr.u32 	%r178, %r177, %r55;\n",
    "	mov.u32 	%r179, -1;\n",
    "	shl.b32 	%r180, %r179, %r55;\n",
    "	not.b32 	%r181, %r180;\n",
    "	and.b32  	%r182, %r177, %r181;\n",
    "	add.s32 	%r183, %r55, -1;\n",
    "	mov.u32 	%r184, 1;\n",
    "	shl.b32 	%r185, %r184, %r183;\n",
    "	setp.gt.u32 	%p50, %r182, %r185;\n",
    "	setp.eq.s32 	%p51, %r182, %r185;\n",
    "	and.b32  	%r186, %r178, 1;\n",
    "	setp.eq.b32 	%p52, %r186, 1;\n",
    "	and.pred  	%p53, %p51, %p52;\n",
    "	or.pred  	%p54, %p50, %p53;\n",
    "	selp.u32 	%r187, 1, 0, %p54;\n",
    "	add.s32 	%r251, %r178, %r187;\n",
    "\n",
    "$L__BB0_62:\n",
    "	or.b32  	%r58, %r251, %r51;\n",
    "	st.global.u8 	[%rd12], %r58;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_67:\n",
    "	setp.lt.u32 	%p59, %r63, 947912704;\n",
    "	@%p59 bra 	$L__BB0_69;\n",
    "	bra.uni 	$L__BB0_68;\n",
    "\n",
    "$L__BB0_69:\n",
    "	shr.u32 	%r65, %r63, 23;\n",
    "	setp.eq.s32 	%p60, %r65, 0;\n",
    "	mov.u32 	%r252, 0;\n",
    "	@%p60 bra 	$L__BB0_72;\n",
    "\n",
    "	mov.u32 	%r198, 134;\n",
    "	sub.s32 	%r66, %r198, %r65;\n",
    "	setp.gt.u32 	%p61, %r66, 31;\n",
    "	@%p61 bra 	$L__BB0_72;\n",
    "\n",
    "	and.b32  	%r199, %r249, 8388607;\n",
    "	or.b32  	%r200, %r199, 8388608;\n",
    "	shr.u32 	%r201, %r200, %r66;\n",
    "	mov.u32 	%r202, -1;\n",
    "	shl.b32 	%r203, %r202, %r66;\n",
    "	not.b32 	%r204, %r203;\n",
    "	and.b32  	%r205, %r200, %r204;\n",
    "	add.s32 	%r206, %r66, -1;\n",
    "	mov.u32 	%r207, 1;\n",
    "	shl.b32 	%r208, %r207, %r206;\n",
    "	setp.gt.u32 	%p62, %r205, %r208;\n",
    "	setp.eq.s32 	%p63, %r205, %r208;\n",
    "	and.b32  	%r209, %r201, 1;\n",
    "	setp.eq.b32 	%p64, %r209, 1;\n",
    "	and.pred  	%p65, %p63, %p64;\n",
    "	or.pred  	%p66, %p62, %p65;\n",
    "	selp.u32 	%r210, 1, 0, %p66;\n",
    "	add.s32 	%r252, %r201, %r210;\n",
    "\n",
    "$L__BB0_72:\n",
    "	or.b32  	%r69, %r252, %r62;\n",
    "	st.global.u8 	[%rd12], %r69;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_58:\n",
    "	min.u32 	%r166, %r52, 1139277824;\n",
    "	shr.u32 	%r167, %r166, 20;\n",
    "	and.b32  	%r168, %r167, 1;\n",
    "	add.s32 	%r169, %r166, %r168;\n",
    "	add.s32 	%r170, %r169, 524287;\n",
    "	shr.u32 	%r171, %r170, 20;\n",
    "	add.s32 	%r172, %r171, -960;\n",
    "	or.b32  	%r53, %r172, %r51;\n",
    "	st.global.u8 	[%rd12], %r53;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_68:\n",
    "	min.u32 	%r189, %r63, 1198522367;\n",
    "	shr.u32 	%r190, %r189, 21;\n",
    "	and.b32  	%r191, %r190, 1;\n",
    "	add.s32 	%r192, %r189, %r191;\n",
    "	add.s32 	%r193, %r192, 1048575;\n",
    "	shr.u32 	%r194, %r193, 21;\n",
    "	add.s32 	%r195, %r194, -448;\n",
    "	or.b32  	%r64, %r195, %r62;\n",
    "	st.global.u8 	[%rd12], %r64;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_2:\n",
    "	add.s64 	%rd7, %rd2, %rd23;\n",
    "	shl.b64 	%rd20, %rd23, 1;\n",
    "	add.s64 	%rd8, %rd1, %rd20;\n",
    "	@%p1 bra 	$L__BB0_91;\n",
    "	bra.uni 	$L__BB0_3;\n",
    "\n",
    "$L__BB0_91:\n",
    "	ld.global.u8 	%rs5, [%rd7];\n",
    "	shl.b16 	%rs6, %rs5, 8;\n",
    "	st.global.u16 	[%rd8], %rs6;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_3:\n",
    "	@%p2 bra 	$L__BB0_80;\n",
    "	bra.uni 	$L__BB0_4;\n",
    "\n",
    "$L__BB0_80:\n",
    "	ld.global.u8 	%rs4, [%rd7];\n",
    "	cvt.u32.u16 	%r73, %rs4;\n",
    "	mul.wide.u16 	%r212, %rs4, 256;\n",
    "	shl.b32 	%r213, %r73, 24;\n",
    "	and.b32  	%r257, %r213, -2147483648;\n",
    "	and.b32  	%r255, %r212, 32512;\n",
    "	setp.gt.u32 	%p69, %r255, 31743;\n",
    "	@%p69 bra 	$L__BB0_89;\n",
    "	bra.uni 	$L__BB0_81;\n",
    "\n",
    "$L__BB0_89:\n",
    "	shl.b32 	%r225, %r73, 21;\n",
    "	or.b32  	%r226, %r257, %r225;\n",
    "	or.b32  	%r257, %r226, 2139095040;\n",
    "	bra.uni 	$L__BB0_90;\n",
    "\n",
    "$L__BB0_4:\n",
    "	setp.eq.s32 	%p7, %r88, %r87;\n",
    "	shl.b64 	%rd21, %rd23, 2;\n",
    "	add.s64 	%rd9, %rd2, %rd21;\n",
    "	add.s64 	%rd10, %rd2, %rd20;\n",
    "	add.s64 	%rd11, %rd1, %rd21;\n",
    "	add.s64 	%rd12, %rd1, %rd23;\n",
    "	@%p7 bra 	$L__BB0_75;\n",
    "	bra.uni 	$L__BB0_5;\n",
    "\n",
    "$L__BB0_75:\n",
    "	setp.eq.s32 	%p67, %r88, 18;\n",
    "	@%p67 bra 	$L__BB0_79;\n",
    "	bra.uni 	$L__BB0_76;\n",
    "\n",
    "$L__BB0_79:\n",
    "	ld.global.u32 	%r211, [%rd9];\n",
    "	st.global.u32 	[%rd11], %r211;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_81:\n",
    "	setp.gt.u32 	%p70, %r255, 1023;\n",
    "	@%p70 bra 	$L__BB0_88;\n",
    "	bra.uni 	$L__BB0_82;\n",
    "\n",
    "$L__BB0_88:\n",
    "	shl.b32 	%r223, %r255, 13;\n",
    "	add.s32 	%r224, %r223, 939524096;\n",
    "	or.b32  	%r257, %r224, %r257;\n",
    "	bra.uni 	$L__BB0_90;\n",
    "\n",
    "$L__BB0_5:\n",
    "	setp.gt.s32 	%p8, %r88, 14;\n",
    "	@%p8 bra 	$L__BB0_16;\n",
    "\n",
    "	setp.eq.s32 	%p11, %r88, 8;\n",
    "	@%p11 bra 	$L__BB0_22;\n",
    "\n",
    "	setp.eq.s32 	%p12, %r88, 14;\n",
    "	@%p12 bra 	$L__BB0_8;\n",
    "	bra.uni 	$L__BB0_28;\n",
    "\n",
    "$L__BB0_8:\n",
    "	ld.global.u16 	%r5, [%rd10];\n",
    "	shl.b32 	%r95, %r5, 16;\n",
    "	and.b32  	%r249, %r95, -2147483648;\n",
    "	and.b32  	%r243, %r5, 32767;\n",
    "	setp.gt.u32 	%p13, %r243, 31743;\n",
    "	@%p13 bra 	$L__BB0_21;\n",
    "	bra.uni 	$L__BB0_9;\n",
    "\n",
    "$L__BB0_21:\n",
    "	shl.b32 	%r107, %r5, 13;\n",
    "	or.b32  	%r108, %r249, %r107;\n",
    "	or.b32  	%r249, %r108, 2139095040;\n",
    "	bra.uni 	$L__BB0_38;\n",
    "\n",
    "$L__BB0_76:\n",
    "	setp.eq.s32 	%p68, %r1, 15;\n",
    "	@%p68 bra 	$L__BB0_78;\n",
    "	bra.uni 	$L__BB0_77;\n",
    "\n",
    "$L__BB0_78:\n",
    "	ld.global.u16 	%rs3, [%rd10];\n",
    "	st.global.u16 	[%rd8], %rs3;\n",
    "	bra.uni 	$L__BB0_92;\n",
    "\n",
    "$L__BB0_82:\n",
    "	setp.eq.s32 	%p71, %r255, 0;\n",
    "	@%p71 bra 	$L__BB0_90;\n",
    "\n",
    "	and.b32  	%r215, %r73, 4;\n",
    "	setp.ne.s32 	%p72, %r215, 0;\n",
    "	mov.u32 	%r256, 947912704;\n",
    "	@%p72 bra 	$L__BB0_87;\n",
    "\n",
    "	mov.u32 	%r253, 0;\n",
    "\n",
    "$L__BB0_85:\n",
    "	shl.b32 	%r78, %r255, 1;\n",
    "	add.s32 	%r253, %r253, 1;\n",
    "	and.b32  	%r217, %r255, 512;\n",
    "	setp.eq.s32 	%p73, %r217, 0;\n",
    "	mov.u32 	%r255, %r78;\n",
    "	@%p73 bra 	$L__BB0_85;\n",
    "\n",
    "	shl.b32 	%r218, %r253, 23;\n",
    "	mov.u32 	%r219, 947912704;\n",
    "	sub.s32 	%r256, %r219, %r218;\n",
    "	mov.u32 	%r255, %r78;\n",
    "\n",
    "$L__BB0_87:\n",
    "	shl.b32 	%r220, %r255, 13;\n",
    "	and.b32  	%r221, %r220, 8372224;\n",
    "	or.b32  	%r222, %r256, %r257;\n",
    "	or.b32  	%r257, %r222, %r221;\n",
    "\n",
    "$L__BB0_90:\n",
    "	shr.u32 	%r227, %r257, 16;\n",
    "	st.global.u16 	[%rd8], %r227;\n",
    "\n",
    "$L__BB0_92:\n",
    "	add.s64 	%rd23, %rd23, %rd5;\n",
    "	setp.lt.u64 	%p74, %rd23, %rd14;\n",
    "	@%p74 bra 	$L__BB0_2;\n",
    "\n",
    "$L__BB0_93:\n",
    "	ret;\n",
    "\n",
    "}\n",
    "\n",
};
/* <<ptx */

typedef struct mload__cuda {
    int ordinal;
    cudaStream_t copy;
    cudaEvent_t ring[MLOAD__CU_RING]; /* fence f: ring[f % MLOAD__CU_RING] */
    uint64_t fences, settled;         /* fences given; all up to settled have passed */
    cudaEvent_t rec[MLOAD__CU_RING];  /* events recorded on callers' streams, the same way */
    uint64_t recs, rec_settled;
#if CUDART_VERSION >= 12000
    cudaLibrary_t lib;
    cudaKernel_t kern;
#endif
    int has_kernel;
    uint64_t pinned;                  /* page-locked host bytes held */
    char detail[200];                 /* the last failure: "cudaErrorX: text (while ...)" */
    mload__mutex mu;                  /* guards everything above */
} mload__cuda;

/* a failed CUDA call: its name and text kept for error_detail; the result (mu held or not) */
static mload_result mload__cu_fail(mload__cuda *c, cudaError_t e, const char *what) {
    const char *name = cudaGetErrorName(e), *text = cudaGetErrorString(e);
    (void)cudaGetLastError(); /* clear it */
    mload__sfmt(c->detail, sizeof c->detail, "%s: %s while %s", name ? name : "?", text ? text : "?", what);
    return e == cudaErrorMemoryAllocation ? MLOAD_ERR_OUT_OF_MEMORY : MLOAD_ERR_DEVICE;
}

static mload_result mload__cu_set(mload__cuda *c) {
    cudaError_t e = cudaSetDevice(c->ordinal);
    return e == cudaSuccess ? MLOAD_OK : mload__cu_fail(c, e, "selecting the device");
}

/* an event after the work queued on stream so far, in ring (mu held) */
static mload_result mload__cu_mark(mload__cuda *c, cudaEvent_t *ring, uint64_t *count, uint64_t *settled, cudaStream_t stream,
                                   uint64_t *out) {
    uint64_t f = *count + 1u;
    cudaEvent_t ev = ring[f % MLOAD__CU_RING];
    cudaError_t e;
    if (f > MLOAD__CU_RING && *settled < f - MLOAD__CU_RING) { /* the slot's last event must have passed */
        if ((e = cudaEventSynchronize(ev)) != cudaSuccess) return mload__cu_fail(c, e, "waiting for an old event");
        *settled = f - MLOAD__CU_RING;
    }
    if ((e = cudaEventRecord(ev, stream)) != cudaSuccess) return mload__cu_fail(c, e, "recording an event");
    *count = f;
    *out = f;
    return MLOAD_OK;
}

/* waits for event n of ring (mu not held) */
static mload_result mload__cu_await(mload__cuda *c, cudaEvent_t *ring, const uint64_t *count, uint64_t *settled, uint64_t n) {
    cudaEvent_t ev;
    cudaError_t e;
    mload_result r = MLOAD_OK;
    mload__lock(&c->mu);
    if (n == 0 || n <= *settled || n + MLOAD__CU_RING <= *count) { /* passed, or older than the ring: waited before reuse */
        mload__unlock(&c->mu);
        return MLOAD_OK;
    }
    if (n > *count) {
        mload__unlock(&c->mu);
        return MLOAD_ERR_INVALID_ARGUMENT;
    }
    ev = ring[n % MLOAD__CU_RING];
    mload__unlock(&c->mu);
    if ((r = mload__cu_set(c)) != MLOAD_OK) return r;
    /* a slot re-recorded meanwhile only makes this wait for later work too */
    if ((e = cudaEventSynchronize(ev)) != cudaSuccess) return mload__cu_fail(c, e, "waiting for an event");
    mload__lock(&c->mu);
    if (*settled < n) *settled = n;
    mload__unlock(&c->mu);
    return r;
}

static mload_result mload__cu_alloc(void *user, uint64_t size, uint64_t align, void **ptr) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    cudaError_t e;
    mload_result r;
    *ptr = NULL;
    if (align > 256u || size > SIZE_MAX) return MLOAD_ERR_INVALID_ARGUMENT; /* the pool aligns to 256 */
    if ((r = mload__cu_set(c)) != MLOAD_OK) return r;
    e = cudaMallocAsync(ptr, MLOAD__CAST(size_t, size ? size : 1), c->copy);
    if (e != cudaSuccess) { *ptr = NULL; return mload__cu_fail(c, e, "allocating device memory"); }
    return MLOAD_OK;
}
static void mload__cu_free(void *user, void *ptr, uint64_t size) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    cudaError_t e;
    (void)size;
    if (!ptr || mload__cu_set(c) != MLOAD_OK) return;
    if ((e = cudaFreeAsync(ptr, c->copy)) != cudaSuccess) (void)mload__cu_fail(c, e, "freeing device memory");
}

/* a copy on the copy stream and its fence */
static mload_result mload__cu_copy(mload__cuda *c, void *dst, const void *src, uint64_t size, enum cudaMemcpyKind kind, uint64_t *fence) {
    cudaError_t e;
    mload_result r;
    if (size > SIZE_MAX) return MLOAD_ERR_INVALID_ARGUMENT;
    if ((r = mload__cu_set(c)) != MLOAD_OK) return r;
    mload__lock(&c->mu);
    e = size ? cudaMemcpyAsync(dst, src, MLOAD__CAST(size_t, size), kind, c->copy) : cudaSuccess;
    if (e != cudaSuccess) r = mload__cu_fail(c, e, kind == cudaMemcpyHostToDevice ? "copying to the device" : "copying from the device");
    else r = mload__cu_mark(c, c->ring, &c->fences, &c->settled, c->copy, fence);
    mload__unlock(&c->mu);
    return r;
}
static mload_result mload__cu_upload(void *user, void *dst, const void *src, uint64_t size, uint64_t *fence) {
    return mload__cu_copy(MLOAD__CAST(mload__cuda *, user), dst, src, size, cudaMemcpyHostToDevice, fence);
}
static mload_result mload__cu_download(void *user, void *dst, const void *src, uint64_t size, uint64_t *fence) {
    return mload__cu_copy(MLOAD__CAST(mload__cuda *, user), dst, src, size, cudaMemcpyDeviceToHost, fence);
}
static mload_result mload__cu_wait(void *user, uint64_t fence) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    return mload__cu_await(c, c->ring, &c->fences, &c->settled, fence);
}

#if CUDART_VERSION >= 12000
static mload_result mload__cu_convert_async(void *user, void *dst, mload_dtype dt, const void *src, mload_dtype st, uint64_t count,
                                            uint32_t flags, uint64_t *fence) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    int dti = MLOAD__CAST(int, dt), sti = MLOAD__CAST(int, st);
    unsigned long long n = count;
    unsigned fl = flags;
    void *args[6];
    uint64_t blocks = (count + 255u) / 256u;
    dim3 grid, block;
    cudaError_t e;
    mload_result r;
    if (!c->has_kernel) return MLOAD_ERR_UNSUPPORTED;
    if (!((dt == MLOAD_DTYPE_F32 || dt == MLOAD_DTYPE_F16 || dt == MLOAD_DTYPE_BF16 || dt == MLOAD_DTYPE_F8_E4M3 || dt == MLOAD_DTYPE_F8_E5M2) &&
          (st == MLOAD_DTYPE_F32 || st == MLOAD_DTYPE_F16 || st == MLOAD_DTYPE_BF16 || st == MLOAD_DTYPE_F8_E4M3 || st == MLOAD_DTYPE_F8_E5M2)))
        return MLOAD_ERR_UNSUPPORTED;
    if ((r = mload__cu_set(c)) != MLOAD_OK) return r;
    args[0] = &dst;
    args[1] = &dti;
    args[2] = MLOAD__CCAST(void *, MLOAD__PCAST(const void *, &src));
    args[3] = &sti;
    args[4] = &n;
    args[5] = &fl;
    grid.x = MLOAD__CAST(unsigned, blocks < 4096u ? (blocks ? blocks : 1u) : 4096u);
    grid.y = grid.z = 1;
    block.x = 256;
    block.y = block.z = 1;
    mload__lock(&c->mu);
    e = count ? cudaLaunchKernel(MLOAD__PCAST(const void *, c->kern), grid, block, args, 0, c->copy) : cudaSuccess;
    if (e != cudaSuccess) r = mload__cu_fail(c, e, "launching the conversion kernel");
    else r = mload__cu_mark(c, c->ring, &c->fences, &c->settled, c->copy, fence);
    mload__unlock(&c->mu);
    return r;
}
#endif

static mload_result mload__cu_mem(void *user, uint64_t *free_bytes, uint64_t *total) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    size_t fr = 0, tot = 0;
    cudaError_t e;
    mload_result r;
    if ((r = mload__cu_set(c)) != MLOAD_OK) return r;
    if ((e = cudaMemGetInfo(&fr, &tot)) != cudaSuccess) return mload__cu_fail(c, e, "reading free memory");
    if (free_bytes) *free_bytes = fr;
    if (total) *total = tot;
    return MLOAD_OK;
}

/* host memory: page-locked while under MLOAD__CU_PINNED, else pageable;
   a 64-byte header says which */
static mload_result mload__cu_host_alloc(void *user, uint64_t size, void **ptr) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    unsigned char *p = NULL;
    uint64_t kind = 0, sz = size + 64u;
    int pin;
    *ptr = NULL;
    if (size > SIZE_MAX - 64u) return MLOAD_ERR_OUT_OF_MEMORY;
    mload__lock(&c->mu);
    pin = c->pinned + sz <= MLOAD__CU_PINNED;
    if (pin) c->pinned += sz;
    mload__unlock(&c->mu);
    if (pin && mload__cu_set(c) == MLOAD_OK && cudaHostAlloc(MLOAD__PCAST(void **, &p), MLOAD__CAST(size_t, sz), cudaHostAllocPortable) == cudaSuccess) {
        kind = 1;
    } else {
        (void)cudaGetLastError();
        if (pin) { mload__lock(&c->mu); c->pinned -= sz; mload__unlock(&c->mu); }
        p = MLOAD__CAST(unsigned char *, mload__malloc(NULL, MLOAD__CAST(size_t, sz), 64));
        if (!p) return MLOAD_ERR_OUT_OF_MEMORY;
    }
    memcpy(p, &kind, sizeof kind);
    *ptr = p + 64;
    return MLOAD_OK;
}
static void mload__cu_host_free(void *user, void *ptr, uint64_t size) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    unsigned char *p;
    uint64_t kind;
    if (!ptr) return;
    p = MLOAD__CAST(unsigned char *, ptr) - 64;
    memcpy(&kind, p, sizeof kind);
    if (!kind) { mload__free(NULL, p, MLOAD__CAST(size_t, size + 64u), 64); return; }
    (void)cudaFreeHost(p);
    mload__lock(&c->mu);
    c->pinned -= size + 64u;
    mload__unlock(&c->mu);
}

static const char *mload__cu_detail(void *user) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    return c->detail[0] ? c->detail : NULL;
}

static mload_result mload__cu_record(void *user, void *stream, uint64_t *event) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    mload_result r;
    if ((r = mload__cu_set(c)) != MLOAD_OK) return r;
    mload__lock(&c->mu);
    r = mload__cu_mark(c, c->rec, &c->recs, &c->rec_settled, MLOAD__PCAST(cudaStream_t, stream), event);
    mload__unlock(&c->mu);
    return r;
}
static mload_result mload__cu_event_wait(void *user, uint64_t event) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    return mload__cu_await(c, c->rec, &c->recs, &c->rec_settled, event);
}
static mload_result mload__cu_stream_wait(void *user, void *stream, uint64_t fence) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    cudaError_t e = cudaSuccess;
    mload_result r;
    if ((r = mload__cu_set(c)) != MLOAD_OK) return r;
    mload__lock(&c->mu);
    if (fence > c->settled && fence + MLOAD__CU_RING > c->fences && fence <= c->fences)
        e = cudaStreamWaitEvent(MLOAD__PCAST(cudaStream_t, stream), c->ring[fence % MLOAD__CU_RING], 0);
    mload__unlock(&c->mu);
    return e == cudaSuccess ? MLOAD_OK : mload__cu_fail(c, e, "ordering a stream after a copy");
}

static void mload__cu_destroy(void *user) {
    mload__cuda *c = MLOAD__CAST(mload__cuda *, user);
    uint32_t i;
    if (cudaSetDevice(c->ordinal) == cudaSuccess && c->copy) (void)cudaStreamSynchronize(c->copy);
    for (i = 0; i < MLOAD__CU_RING; ++i) {
        if (c->ring[i]) (void)cudaEventDestroy(c->ring[i]);
        if (c->rec[i]) (void)cudaEventDestroy(c->rec[i]);
    }
#if CUDART_VERSION >= 12000
    if (c->has_kernel) (void)cudaLibraryUnload(c->lib);
#endif
    if (c->copy) (void)cudaStreamDestroy(c->copy);
    mload__mutex_destroy(&c->mu);
    mload__free(NULL, c, sizeof(*c), sizeof(void *));
}

/* the embedded PTX, loaded (1) or not (0: the host converts) */
static int mload__cu_load_kernel(mload__cuda *c) {
#if CUDART_VERSION >= 12000
    size_t i, n = sizeof mload__cast_ptx / sizeof mload__cast_ptx[0], len = 1;
    char *text, *w;
    cudaError_t e;
    for (i = 0; i < n; ++i) len += strlen(mload__cast_ptx[i]);
    if (!(text = MLOAD__CAST(char *, mload__malloc(NULL, len, 1)))) return 0;
    for (w = text, i = 0; i < n; ++i) {
        size_t k = strlen(mload__cast_ptx[i]);
        memcpy(w, mload__cast_ptx[i], k);
        w += k;
    }
    *w = '\0';
    e = cudaLibraryLoadData(&c->lib, text, NULL, NULL, 0, NULL, NULL, 0);
    mload__free(NULL, text, len, 1);
    if (e == cudaSuccess && (e = cudaLibraryGetKernel(&c->kern, c->lib, "mload_cast_kernel")) != cudaSuccess) (void)cudaLibraryUnload(c->lib);
    if (e != cudaSuccess) { (void)mload__cu_fail(c, e, "loading the conversion kernel (the host converts)"); return 0; }
    return 1;
#else
    (void)c;
    (void)mload__cast_ptx; /* kept for a newer runtime */
    return 0;
#endif
}

MODELLOAD_API mload_result mload_device_create_cuda(uint32_t ordinal, mload_device *out, mload_error *err) {
    mload__cuda *c;
    int count = 0;
    uint32_t i;
    cudaError_t e;
    if (!out) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "device: NULL out");
    memset(out, 0, sizeof(*out));
    if ((e = cudaGetDeviceCount(&count)) != cudaSuccess) {
        (void)cudaGetLastError();
        return mload__fail(err, MLOAD_ERR_DEVICE, MLOAD_NO_OFFSET, NULL, 0, "CUDA: %s: %s", cudaGetErrorName(e), cudaGetErrorString(e));
    }
    if (ordinal >= MLOAD__CAST(uint32_t, count))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "CUDA: no device %U (%U present)",
                           MLOAD__CAST(uint64_t, ordinal), MLOAD__CAST(uint64_t, count));
    if (!(c = MLOAD__CAST(mload__cuda *, mload__malloc(NULL, sizeof(*c), sizeof(void *))))) return mload__oom(err);
    memset(c, 0, sizeof(*c));
    c->ordinal = MLOAD__CAST(int, ordinal);
    mload__mutex_init(&c->mu);
    e = cudaSetDevice(c->ordinal);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking);
    for (i = 0; e == cudaSuccess && i < MLOAD__CU_RING; ++i) {
        e = cudaEventCreateWithFlags(&c->ring[i], cudaEventDisableTiming);
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->rec[i], cudaEventDisableTiming);
    }
    if (e != cudaSuccess) {
        mload_result r = mload__fail(err, MLOAD_ERR_DEVICE, MLOAD_NO_OFFSET, NULL, 0, "CUDA device %U: %s: %s",
                                     MLOAD__CAST(uint64_t, ordinal), cudaGetErrorName(e), cudaGetErrorString(e));
        (void)cudaGetLastError();
        mload__cu_destroy(c);
        return r;
    }
    c->has_kernel = mload__cu_load_kernel(c);
    out->name = "cuda";
    out->alloc = mload__cu_alloc;
    out->free = mload__cu_free;
    out->upload = mload__cu_upload;
    out->download = mload__cu_download;
    out->wait = mload__cu_wait;
#if CUDART_VERSION >= 12000
    out->convert_async = c->has_kernel ? mload__cu_convert_async : NULL;
#endif
    out->mem_info = mload__cu_mem;
    out->destroy = mload__cu_destroy;
    out->user = c;
    out->host_alloc = mload__cu_host_alloc;
    out->host_free = mload__cu_host_free;
    out->error_detail = mload__cu_detail;
    out->record = mload__cu_record;
    out->event_wait = mload__cu_event_wait;
    out->stream_wait = mload__cu_stream_wait;
    return MLOAD_OK;
}
#else
/* Built without MODELLOAD_CUDA: no CUDA back end. */
MODELLOAD_API mload_result mload_device_create_cuda(uint32_t ordinal, mload_device *out, mload_error *err) {
    (void)ordinal;
    if (out) memset(out, 0, sizeof(*out));
    return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, NULL, 0, "built without MODELLOAD_CUDA: no CUDA back end");
}
#endif /* MODELLOAD_CUDA */

MODELLOAD_API mload_result mload_map_load_device(const mload_map *m, mload_load_item *items, uint64_t n, const mload_device *dev,
                                                 const mload_load_opts *opts, mload_error *err) {
    mload__put put;
    if (!dev || !dev->upload || !dev->wait)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "device load: needs a device with upload and wait");
    put.upload = dev->upload;
    put.wait = dev->wait;
    put.host_alloc = dev->host_alloc && dev->host_free ? dev->host_alloc : NULL;
    put.host_free = dev->host_free;
    put.detail = dev->error_detail;
    put.user = dev->user;
    return mload__load_run(m, items, n, opts, &put, err);
}

MODELLOAD_API void mload_device_destroy(mload_device *d) {
    if (!d) return;
    if (d->destroy) d->destroy(d->user);
    memset(d, 0, sizeof(*d));
}

#endif /* !MODELLOAD_NO_OFFLOAD */

/* ==========================================================================
   12. OFFLOAD MANAGER                                            >>offload
   units and tiers, the hard budget, eviction by next use or LRU, prefetch, group moves, stats
   ========================================================================== */

#if !defined(MODELLOAD_NO_OFFLOAD)

#define MLOAD__NONE UINT32_MAX
enum { MLOAD__DEV_NONE = 0, MLOAD__DEV_LOADING = 1, MLOAD__DEV_READY = 2 };

typedef struct mload__unit {
    char *name;
    size_t t0, nt;            /* its map tensors: o->ut[t0 .. t0 + nt) */
    mload_tiers tiers;        /* after defaulting */
    unsigned char *host;      /* host copy (layout of host_dtype) */
    uint64_t host_bytes;
    mload_dtype host_dtype;
    void *dev;                /* prepared device copy (layout of the preparing dtype) */
    uint64_t dev_bytes;
    int dev_state, prefetched;
    mload_result load_result;
    mload_error load_err;
    void *tmp;                /* computation copy while acquired (and, with a stream, until reclaimed) */
    uint64_t tmp_bytes;
    uint64_t ev;              /* with a stream: the event its last release recorded ... */
    int has_ev, tmp_retiring; /* ... pending; tmp kept after release until that event */
    uint64_t host_fence;      /* with a stream: an upload from the host copy may still run ... */
    int host_inflight;        /* ... until host_fence: the copy is freed after it */
    mload_unit_tensor *views;
    int acquired, pinned, grouped; /* grouped: part of the running group move */
    int onloaded;             /* resting in the onload tier (else the offload tier) */
    uint32_t dev_rest;        /* mload__rest_key when the device copy was made */
    uint64_t last_use;
    uint32_t next;            /* learned successor in the acquire order */
} mload__unit;

struct mload_offload {
    mload_allocator alloc;
    const mload_map *map;
    mload_device dev;
    uint64_t dev_budget, host_budget, dev_used, host_used, tick;
    uint64_t dev_limit;       /* device-wide use limit for promotions (0 = none) */
    uint64_t dev_reserve;     /* with budget_derived: what stays free for others */
    void *stream;             /* the caller's compute stream (desc.stream), or NULL */
    int budget_derived;       /* dev_budget = dev_used + free - reserve, re-measured at each device allocation */
    uint32_t policy, depth;
    mload__unit *units;
    uint32_t nunits;
    size_t units_cap;
    size_t *ut, nut, ut_cap;
    uint32_t *owner;          /* per map tensor: its unit */
    uint32_t *dist;           /* scratch of the eviction choice, one per unit */
    size_t dist_cap;
    unsigned char *stage[2];  /* staging buffers kept for reuse (fresh memory faults) */
    uint64_t stage_bytes[2];
    int stage_busy[2];
    uint64_t stage_fence[2];  /* with a stream, an upload from a staging buffer may still run: */
    int stage_inflight[2];    /* its fence is waited for before the buffer is reused or freed */
    uint32_t last;            /* last acquired unit */
    mload_offload_stats st;
    int inflight;             /* the prefetch worker is filling a unit */
    mload__worker w;          /* the prefetch worker (jobs: unit numbers); its mutex guards all of the above */
};

static void mload__o_lock(mload_offload *o) { mload__lock(&o->w.mu); }
static void mload__o_unlock(mload_offload *o) { mload__unlock(&o->w.mu); }

static const mload_tensor *mload__ut(const mload_offload *o, const mload__unit *u, size_t k) {
    return mload_map_tensor(o->map, o->ut[u->t0 + k]);
}
/* the dtype a tier gives tensor t: its own unless the tier names a float dtype and t is float */
static mload_dtype mload__tier_dtype(const mload_tensor *t, mload_dtype tier) {
    return (tier && mload_dtype_kind(t->dtype) == MLOAD_KIND_FLOAT) ? tier : t->dtype;
}
static uint64_t mload__tbytes(const mload_tensor *t, mload_dtype dt) {
    return (t->numel * mload_dtype_bits(dt) + 7u) / 8u;
}
/* bytes of a unit laid out in tier dtype dt (tensors 64-byte aligned); offset of tensor k in *off (k < nt) */
static uint64_t mload__layout(const mload_offload *o, const mload__unit *u, mload_dtype dt, size_t k, uint64_t *off) {
    uint64_t total = 0;
    size_t i;
    for (i = 0; i < u->nt; ++i) {
        if (i == k && off) *off = total;
        total += (mload__tbytes(mload__ut(o, u, i), mload__tier_dtype(mload__ut(o, u, i), dt)) + 63u) & ~MLOAD__CAST(uint64_t, 63);
    }
    return total;
}

static void mload__o_peak(mload_offload *o) {
    o->st.device_bytes = o->dev_used;
    o->st.host_bytes = o->host_used;
    if (o->dev_used > o->st.peak_device_bytes) o->st.peak_device_bytes = o->dev_used;
    if (o->host_used > o->st.peak_host_bytes) o->st.peak_host_bytes = o->host_used;
}

/* o->dist[v] = learned successor steps from the last acquired unit to v
   (UINT32_MAX when the order does not reach it): one walk, O(units) */
static void mload__distances(mload_offload *o) {
    uint32_t i, d = 1, x;
    for (i = 0; i < o->nunits; ++i) o->dist[i] = UINT32_MAX;
    if (o->last == MLOAD__NONE) return;
    for (x = o->units[o->last].next; x != MLOAD__NONE && x != o->last && o->dist[x] == UINT32_MAX; x = o->units[x].next)
        o->dist[x] = d++;
}

/* the victim to evict, or NONE: a ready, unacquired, unpinned prepared copy,
   other than `keep`, whose next use is further than `min_dist` */
static uint32_t mload__victim(mload_offload *o, uint32_t keep, uint32_t min_dist) {
    uint32_t i, best = MLOAD__NONE, bestd = 0;
    uint64_t bestt = UINT64_MAX;
    mload__distances(o);
    for (i = 0; i < o->nunits; ++i) {
        const mload__unit *u = &o->units[i];
        uint32_t d;
        if (i == keep || u->dev_state != MLOAD__DEV_READY || u->acquired || u->pinned || u->grouped) continue;
        d = o->dist[i];
        if (d <= min_dist) continue;
        if (o->policy == MLOAD_EVICT_LRU) {
            if (u->last_use < bestt) { best = i; bestt = u->last_use; }
        } else if (best == MLOAD__NONE || d > bestd || (d == bestd && u->last_use < bestt)) {
            best = i;
            bestd = d;
            bestt = u->last_use;
        }
    }
    return best;
}

/* the caller's work on a released unit's memory has finished (lock held):
   the event its release recorded has passed */
static void mload__settle(mload_offload *o, mload__unit *u) {
    if (!u->has_ev) return;
    u->has_ev = 0;
    (void)o->dev.event_wait(o->dev.user, u->ev); /* a failed wait cannot order anything more: go on */
}

static void mload__free_dev_copy(mload_offload *o, mload__unit *u) {
    if (u->dev) {
        mload__settle(o, u);
        o->dev.free(o->dev.user, u->dev, u->dev_bytes);
        o->dev_used -= u->dev_bytes;
    }
    u->dev = NULL;
    u->dev_bytes = 0;
    u->dev_state = MLOAD__DEV_NONE;
    u->prefetched = 0;
    mload__o_peak(o);
}

/* frees the computation copy of an acquired unit, if any */
static void mload__free_tmp(mload_offload *o, mload__unit *u) {
    u->tmp_retiring = 0;
    if (!u->tmp) return;
    mload__settle(o, u);
    o->dev.free(o->dev.user, u->tmp, u->tmp_bytes);
    o->dev_used -= u->tmp_bytes;
    u->tmp = NULL;
    u->tmp_bytes = 0;
    mload__o_peak(o);
}

/* bytes that evicting could free for a request (same filter as the victim choice) */
static uint64_t mload__evictable(mload_offload *o, uint32_t keep, uint32_t min_dist) {
    uint64_t total = 0;
    uint32_t i;
    mload__distances(o);
    for (i = 0; i < o->nunits; ++i) {
        const mload__unit *u = &o->units[i];
        if (i == keep || u->dev_state != MLOAD__DEV_READY || u->acquired || u->pinned || u->grouped || o->dist[i] <= min_dist) continue;
        total += u->dev_bytes;
    }
    return total;
}

static int mload__any_loading(const mload_offload *o) {
    uint32_t i;
    for (i = 0; i < o->nunits; ++i)
        if (o->units[i].dev_state == MLOAD__DEV_LOADING) return 1;
    return 0;
}

/* evicts the best victim; 0 when none */
static int mload__evict_one(mload_offload *o, uint32_t keep, uint32_t min_dist) {
    uint32_t v = mload__victim(o, keep, min_dist);
    if (v == MLOAD__NONE) return 0;
    mload__free_dev_copy(o, &o->units[v]);
    o->st.evictions++;
    return 1;
}

/* device bytes within the budget (lock held). Evicts only when the request
   can then fit (never empties the cache for nothing); with may_wait, waits
   for in-flight prefetches (whose copies then become evictable) before
   giving up. */

/* frees one computation copy kept after its release for the caller's
   stream (after that release's event); 0 when there is none (lock held) */
static int mload__reclaim_one(mload_offload *o) {
    uint32_t i;
    for (i = 0; i < o->nunits; ++i)
        if (o->units[i].tmp_retiring) {
            mload__free_tmp(o, &o->units[i]);
            return 1;
        }
    return 0;
}

/* r with the device's detail of the failure in err's message */
static mload_result mload__dev_failed(mload_offload *o, mload_error *err, mload_result r) {
    return mload__with_detail(err, o->dev.error_detail, o->dev.user, r);
}

/* a budget derived from the device's free memory follows it: what the
   manager holds plus what is free beyond the reserve, now (lock held) */
static void mload__rederive_budget(mload_offload *o) {
    uint64_t fr = 0, tot = 0;
    if (!o->budget_derived || o->dev.mem_info(o->dev.user, &fr, &tot) != MLOAD_OK) return;
    o->dev_budget = o->dev_used + (fr > o->dev_reserve ? fr - o->dev_reserve : 0);
    o->st.device_budget = o->dev_budget;
}

static mload_result mload__dev_alloc(mload_offload *o, uint64_t size, uint32_t keep, uint32_t min_dist, int may_wait, void **ptr,
                                     mload_error *err) {
    uint64_t sz = size ? size : 1;
    for (;;) {
        uint64_t avail;
        mload__rederive_budget(o);
        avail = o->dev_budget > o->dev_used ? o->dev_budget - o->dev_used : 0;
        int fits = sz <= avail;
        if (fits && o->dev.alloc(o->dev.user, sz, 64, ptr) == MLOAD_OK) {
            o->dev_used += sz;
            mload__o_peak(o);
            return MLOAD_OK;
        }
        /* computation copies of released units the caller's stream may still read: after their
           events, before anything is evicted */
        if (mload__reclaim_one(o)) continue;
        /* within the budget the device itself is full (other users): evict and retry; over it, evict
           only when the request then fits; else wait for loads in flight to finish */
        if ((fits || avail + mload__evictable(o, keep, min_dist) >= sz) && mload__evict_one(o, keep, min_dist)) continue;
        if (may_wait && o->w.started && mload__any_loading(o)) {
            mload__cond_wait(&o->w.done, &o->w.mu);
            continue;
        }
        if (fits)
            return mload__dev_failed(o, err, mload__fail(err, MLOAD_ERR_DEVICE, MLOAD_NO_OFFSET, NULL, 0, "the device refused %U bytes", sz));
        return mload__fail(err, MLOAD_ERR_BUDGET, MLOAD_NO_OFFSET, NULL, 0,
                           "device budget: %U bytes needed, %U available of %U (the rest is acquired, pinned or in use)", sz, avail,
                           o->dev_budget);
    }
}

static mload_result mload__host_alloc(mload_offload *o, uint64_t size, unsigned char **ptr, mload_error *err) {
    uint64_t sz = size ? size : 1;
    if (o->host_used > o->host_budget || sz > o->host_budget - o->host_used)
        return mload__fail(err, MLOAD_ERR_BUDGET, MLOAD_NO_OFFSET, NULL, 0, "host budget: %U bytes needed, %U available", sz,
                           o->host_budget > o->host_used ? o->host_budget - o->host_used : 0);
    if (o->dev.host_alloc && o->dev.host_free) { /* the device's (pinned) host memory */
        void *p = NULL;
        if (o->dev.host_alloc(o->dev.user, sz, &p) != MLOAD_OK || !p)
            return mload__dev_failed(o, err, mload__fail(err, MLOAD_ERR_OUT_OF_MEMORY, MLOAD_NO_OFFSET, NULL, 0,
                                                         "the device's host memory: %U bytes refused", sz));
        *ptr = MLOAD__CAST(unsigned char *, p);
    } else if (sz > SIZE_MAX || !(*ptr = MLOAD__CAST(unsigned char *, mload__malloc(&o->alloc, MLOAD__CAST(size_t, sz), 64)))) {
        return mload__oom(err);
    }
    o->host_used += sz;
    mload__o_peak(o);
    return MLOAD_OK;
}
static void mload__host_free(mload_offload *o, unsigned char *p, uint64_t size) {
    uint64_t sz = size ? size : 1;
    if (!p) return;
    if (o->dev.host_alloc && o->dev.host_free) o->dev.host_free(o->dev.user, p, sz);
    else mload__free(&o->alloc, p, MLOAD__CAST(size_t, sz), 64);
    o->host_used -= sz;
    mload__o_peak(o);
}

/* A staging buffer of at least `bytes` (lock held): one of two kept for
   reuse (the caller's and the prefetch worker's), grown when needed; they
   count as host bytes while they exist. */
/* staging buffer i's last upload has run (lock held) */
static void mload__stage_settle(mload_offload *o, int i) {
    if (!o->stage_inflight[i]) return;
    o->stage_inflight[i] = 0;
    (void)o->dev.wait(o->dev.user, o->stage_fence[i]);
}
/* frees staging buffer i (lock held) */
static void mload__stage_drop(mload_offload *o, int i) {
    mload__stage_settle(o, i);
    mload__host_free(o, o->stage[i], o->stage_bytes[i]);
    o->stage[i] = NULL;
    o->stage_bytes[i] = 0;
}

static mload_result mload__stage_get(mload_offload *o, uint64_t bytes, unsigned char **p, int *slot, mload_error *err) {
    int i;
    for (i = 0; i < 2; ++i) {
        if (o->stage_busy[i]) continue;
        mload__stage_settle(o, i);
        if (o->stage_bytes[i] < bytes) {
            unsigned char *np;
            mload_result r;
            mload__host_free(o, o->stage[i], o->stage_bytes[i]);
            o->stage[i] = NULL;
            o->stage_bytes[i] = 0;
            if ((r = mload__host_alloc(o, bytes, &np, err)) != MLOAD_OK) return r;
            o->stage[i] = np;
            o->stage_bytes[i] = bytes ? bytes : 1;
        }
        o->stage_busy[i] = 1;
        *p = o->stage[i];
        *slot = i;
        return MLOAD_OK;
    }
    *slot = -1; /* both in use (no worker: cannot happen; else a third user): a plain one */
    return mload__host_alloc(o, bytes, p, err);
}
/* gives a staging buffer back; with `inflight`, an upload from it may
   still run until `fence` (lock held) */
static void mload__stage_put(mload_offload *o, unsigned char *p, uint64_t bytes, int slot, int inflight, uint64_t fence) {
    if (slot >= 0) {
        o->stage_busy[slot] = 0;
        o->stage_inflight[slot] = inflight;
        o->stage_fence[slot] = fence;
        return;
    }
    if (inflight) (void)o->dev.wait(o->dev.user, fence);
    mload__host_free(o, p, bytes);
}

/* The dtypes a unit's values have gone through, as in the original (a unit
   starts in its offload tier and moves by casting): the offload tier's
   (none for DISK), then, once onloaded, the onload tier's (none for DISK). */
static void mload__rest_chain(const mload__unit *u, mload_dtype ch[2]) {
    ch[0] = u->tiers.offload.place == MLOAD_PLACE_DISK ? MLOAD_DTYPE_INVALID : u->tiers.offload.dtype;
    ch[1] = u->onloaded && u->tiers.onload.place != MLOAD_PLACE_DISK ? u->tiers.onload.dtype : MLOAD_DTYPE_INVALID;
}
/* the chain as one number: a device copy made through another chain is stale */
static uint32_t mload__rest_key(const mload__unit *u) {
    mload_dtype ch[2];
    mload__rest_chain(u, ch);
    if (ch[1] == ch[0]) ch[1] = MLOAD_DTYPE_INVALID; /* rounding twice to one dtype is rounding once */
    return MLOAD__CAST(uint32_t, ch[0]) | (MLOAD__CAST(uint32_t, ch[1]) << 8);
}

/* drops a ready device copy whose values went through another chain than
   the unit's now (lock held; an acquired copy stays until the next
   acquire, which drops it) */
static void mload__drop_stale(mload_offload *o, mload__unit *u) {
    if (u->dev_state == MLOAD__DEV_READY && !u->acquired && u->dev_rest != mload__rest_key(u)) mload__free_dev_copy(o, u);
}

/* Casts tensor t's elements from src (dtype sd) through the tier dtypes
   steps[0..n) (INVALID: none) into out as `want`, rounding at each step
   with the map's F8 overflow mode. No lock held. */
static mload_result mload__cast_chain(mload_offload *o, const mload_tensor *t, const unsigned char *src, mload_dtype sd,
                                      const mload_dtype *steps, size_t n, mload_dtype want, unsigned char *out, mload_error *err) {
    mload_dtype seq[4], cd = sd;
    size_t m = 0, i;
    uint64_t half = 0;
    unsigned char *buf = NULL;
    const unsigned char *cur = src;
    mload_f8_overflow ov = mload_map_f8_overflow(o->map);
    mload_result r = MLOAD_OK;
    for (i = 0; i < n && m < 4; ++i) {
        mload_dtype d = steps[i] ? mload__tier_dtype(t, steps[i]) : MLOAD_DTYPE_INVALID;
        if (!d || d == (m ? seq[m - 1] : sd)) continue;
        seq[m++] = d;
        if (((mload__tbytes(t, d) + 63u) & ~MLOAD__CAST(uint64_t, 63)) > half) half = (mload__tbytes(t, d) + 63u) & ~MLOAD__CAST(uint64_t, 63);
    }
    if (m == 1 && seq[0] == want) m = 0; /* src -> want rounds the same */
    if (m) {
        mload__o_lock(o);
        r = mload__host_alloc(o, 2 * half, &buf, err);
        mload__o_unlock(o);
        if (r != MLOAD_OK) return r;
    }
    for (i = 0; i <= m && r == MLOAD_OK; ++i) {
        unsigned char *dp = i < m ? buf + (i & 1) * half : out;
        mload_dtype d = i < m ? seq[i] : want;
        if (mload_cast(dp, d, cur, cd, t->numel, ov, NULL) != MLOAD_OK)
            r = mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, t->name, t->name_len, "tensor '%s': conversion failed", t->name);
        cur = dp;
        cd = d;
    }
    if (buf) {
        mload__o_lock(o);
        mload__host_free(o, buf, 2 * half);
        mload__o_unlock(o);
    }
    return r;
}

/* Tensor t of unit u from the map into out as `as`, through the unit's
   resting chain and then `via` (the preparing dtype, or INVALID): its
   values depend on the tiers, not on which copies happen to exist. */
static mload_result mload__read_rest(mload_offload *o, const mload__unit *u, const mload_tensor *t, mload_dtype via, mload_dtype as,
                                     unsigned char *out, mload_error *err) {
    mload_dtype steps[3], f;
    size_t k, i;
    int trivial = 1;
    uint64_t vb;
    unsigned char *tmp;
    mload_result r;
    mload__rest_chain(u, steps);
    steps[2] = via;
    for (k = 0; k < 3; ++k) /* the first step that changes the stored dtype */
        if (steps[k] && mload__tier_dtype(t, steps[k]) != t->dtype) break;
    if (k == 3) return mload_map_read(o->map, t, as, out, mload__tbytes(t, as), err);
    f = mload__tier_dtype(t, steps[k]);
    for (i = k + 1; i < 3; ++i) trivial &= !steps[i] || mload__tier_dtype(t, steps[i]) == f;
    if (trivial && f == as) return mload_map_read(o->map, t, as, out, mload__tbytes(t, as), err);
    vb = mload__tbytes(t, f);
    mload__o_lock(o);
    r = mload__host_alloc(o, vb, &tmp, err);
    mload__o_unlock(o);
    if (r != MLOAD_OK) return r;
    r = mload_map_read(o->map, t, f, tmp, vb, err);
    if (r == MLOAD_OK) r = mload__cast_chain(o, t, tmp, f, steps + k + 1, 2 - k, as, out, err);
    mload__o_lock(o);
    mload__host_free(o, tmp, vb);
    mload__o_unlock(o);
    return r;
}

/* The unit's host copy as a source of its values, with the dtype step that
   still applies after it (*rest; INVALID: none), or NULL: the resting
   tier's copy, or (while an onload builds the onload tier's copy) the
   offload tier's, which the onload dtype then rounds. */
static const unsigned char *mload__host_src(const mload__unit *u, mload_dtype *rest) {
    int offload_copy;
    *rest = MLOAD_DTYPE_INVALID;
    if (!u->host) return NULL;
    offload_copy = u->tiers.offload.place == MLOAD_PLACE_HOST && u->host_dtype == u->tiers.offload.dtype;
    if (!u->onloaded) return offload_copy ? u->host : NULL; /* else the onload tier's, being replaced */
    if (u->tiers.onload.place == MLOAD_PLACE_HOST && u->host_dtype == u->tiers.onload.dtype) return u->host;
    if (!offload_copy) return NULL;
    if (u->tiers.onload.place != MLOAD_PLACE_DISK) *rest = u->tiers.onload.dtype;
    return u->host;
}

/* Fills `dst` (host memory, layout of dtype dt) with the unit's values:
   from its host copy when that holds them, else from the map; with `via`,
   values round through that dtype last (the prepared copy's), as they
   would on the device. No lock held. */
static mload_result mload__fill_host_layout(mload_offload *o, mload__unit *u, mload_dtype dt, mload_dtype via, unsigned char *dst,
                                            int *from_host, mload_error *err) {
    size_t k;
    mload_dtype steps[2];
    const unsigned char *host = mload__host_src(u, &steps[0]);
    steps[1] = via;
    *from_host = host != NULL;
    for (k = 0; k < u->nt; ++k) {
        const mload_tensor *t = mload__ut(o, u, k);
        uint64_t off = 0, hoff = 0;
        mload_result r;
        mload__layout(o, u, dt, k, &off);
        if (host) {
            mload__layout(o, u, u->host_dtype, k, &hoff);
            r = mload__cast_chain(o, t, host + hoff, mload__tier_dtype(t, u->host_dtype), steps, 2, mload__tier_dtype(t, dt), dst + off, err);
        } else {
            r = mload__read_rest(o, u, t, via, mload__tier_dtype(t, dt), dst + off, err);
        }
        if (r != MLOAD_OK) return r;
    }
    return MLOAD_OK;
}

/* Fills device memory `dst` (layout of dtype dt): straight from the host
   copy when it has that layout, else through a staging buffer. No lock held. */
/* fence_out: NULL waits for the upload; else it may still run, *fence_out
   says until when (the staging buffer is kept until then) */
static mload_result mload__fill_device(mload_offload *o, mload__unit *u, mload_dtype dt, mload_dtype via, void *dst, uint64_t bytes,
                                       mload_error *err, uint64_t *fence_out) {
    unsigned char *stage = NULL;
    const unsigned char *src;
    uint64_t fence = 0;
    int from_host = 0, slot = -1, inflight = 0;
    mload_result r;
    mload_dtype hrest;
    if (mload__host_src(u, &hrest) && !hrest && u->host_dtype == dt && (!via || via == dt)) {
        src = u->host;
        from_host = 1;
    } else {
        mload__o_lock(o);
        r = mload__stage_get(o, bytes, &stage, &slot, err);
        mload__o_unlock(o);
        if (r != MLOAD_OK) return r;
        if ((r = mload__fill_host_layout(o, u, dt, via, stage, &from_host, err)) != MLOAD_OK) goto out;
        src = stage;
    }
    r = o->dev.upload(o->dev.user, dst, src, bytes, &fence);
    if (r == MLOAD_OK && fence_out) {
        *fence_out = fence;
        inflight = 1;
    } else if (r == MLOAD_OK) {
        r = o->dev.wait(o->dev.user, fence);
    }
    if (r != MLOAD_OK)
        r = mload__dev_failed(o, err, mload__fail(err, MLOAD_ERR_DEVICE, MLOAD_NO_OFFSET, NULL, 0, "upload of unit '%s' failed", u->name));
out:
    mload__o_lock(o);
    if (r == MLOAD_OK) {
        if (from_host) o->st.host_to_device += bytes;
        else o->st.disk_to_device += bytes;
    }
    if (r == MLOAD_OK && inflight && !stage) { /* straight from the unit's host copy */
        u->host_fence = fence;
        u->host_inflight = 1;
    }
    if (stage) mload__stage_put(o, stage, bytes, slot, inflight, fence);
    mload__o_unlock(o);
    return r;
}

/* the prefetch worker's job: fill unit v's prepared copy (lock held on
   entry and exit, released during the fill) */
static void mload__o_prefetch_run(void *owner, void *job) {
    mload_offload *o = MLOAD__CAST(mload_offload *, owner);
    uint32_t v;
    mload__unit *u;
    mload_result r;
    mload_error e;
    void *dst;
    uint64_t bytes;
    memcpy(&v, job, sizeof v);
    u = &o->units[v];
    dst = u->dev;
    bytes = u->dev_bytes;
    o->inflight = 1; /* add_unit waits: the units array must not move under the fill */
    mload__o_unlock(o);
    r = mload__fill_device(o, u, u->tiers.preparing.dtype, MLOAD_DTYPE_INVALID, dst, bytes, &e, NULL);
    mload__o_lock(o);
    o->inflight = 0;
    u = &o->units[v];
    u->load_result = r;
    if (r != MLOAD_OK) {
        u->load_err = e;
        mload__free_dev_copy(o, u);
    } else {
        u->dev_state = MLOAD__DEV_READY;
    }
}

/* waits (lock held) until the unit is not loading; returns the load's result */
static mload_result mload__wait_loaded(mload_offload *o, mload__unit *u, mload_error *err) {
    while (u->dev_state == MLOAD__DEV_LOADING) mload__cond_wait(&o->w.done, &o->w.mu);
    if (u->load_result != MLOAD_OK) {
        mload_result r = u->load_result;
        if (err) *err = u->load_err;
        u->load_result = MLOAD_OK;
        return r;
    }
    return MLOAD_OK;
}

/* frees a unit's host copy after any upload from it (lock held) */
static void mload__host_copy_free(mload_offload *o, mload__unit *u) {
    if (u->host_inflight) {
        u->host_inflight = 0;
        (void)o->dev.wait(o->dev.user, u->host_fence);
    }
    mload__host_free(o, u->host, u->host_bytes);
    u->host = NULL;
    u->host_bytes = 0;
}

static void mload__o_free_units(mload_offload *o) {
    uint32_t i;
    for (i = 0; i < o->nunits; ++i) {
        mload__unit *u = &o->units[i];
        mload__free_tmp(o, u);
        mload__free_dev_copy(o, u);
        mload__host_copy_free(o, u);
        mload__strfree(&o->alloc, u->name);
        mload__free(&o->alloc, u->views, (u->nt + 1) * sizeof(mload_unit_tensor), sizeof(void *));
    }
}

MODELLOAD_API void mload_offload_destroy(mload_offload *o) {
    mload_allocator a;
    if (!o) return;
    if (o->w.started) {
        uint32_t v;
        mload__o_lock(o);
        while (mload__worker_take(&o->w, &v)) o->units[v].dev_state = MLOAD__DEV_READY; /* queued loads never start: */
        while (mload__any_loading(o)) mload__cond_wait(&o->w.done, &o->w.mu);       /* their copies are just freed */
        mload__o_unlock(o);
    }
    mload__worker_destroy(&o->w);
    mload__stage_drop(o, 0); /* after the uploads from them */
    mload__stage_drop(o, 1);
    mload__o_free_units(o);
    a = o->alloc;
    mload__free(&a, o->units, o->units_cap * sizeof(mload__unit), sizeof(void *));
    mload__free(&a, o->ut, o->ut_cap * sizeof(size_t), sizeof(void *));
    mload__free(&a, o->owner, (mload_map_count(o->map) + 1) * sizeof(uint32_t), sizeof(uint32_t));
    mload__free(&a, o->dist, o->dist_cap * sizeof(uint32_t), sizeof(uint32_t));
    mload__free(&a, o, sizeof(*o), sizeof(void *));
}

MODELLOAD_API mload_result mload_offload_create(const mload_offload_desc *desc, mload_offload **out, mload_error *err) {
    mload_offload *o;
    uint64_t i;
    if (out) *out = NULL;
    if (!desc || !out || !desc->map || !desc->device.alloc || !desc->device.free || !desc->device.upload || !desc->device.wait ||
        !mload__allocator_ok(&desc->allocator) || MLOAD__CAST(uint32_t, desc->policy) > MLOAD_EVICT_LRU)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                           "offload: needs a map, a device with alloc/free/upload/wait, a valid policy and allocator");
    if (desc->device_limit && !desc->device.mem_info)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "offload: device_limit needs a device with mem_info");
    if (desc->stream && (!desc->device.record || !desc->device.event_wait || !desc->device.stream_wait))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0,
                           "offload: a stream needs a device with record, event_wait and stream_wait");
    o = MLOAD__CAST(mload_offload *, mload__malloc(&desc->allocator, sizeof(*o), sizeof(void *)));
    if (!o) return mload__oom(err);
    memset(o, 0, sizeof(*o));
    o->alloc = desc->allocator;
    o->map = desc->map;
    o->dev = desc->device;
    o->policy = desc->policy;
    o->depth = desc->prefetch_depth;
    o->last = MLOAD__NONE;
    o->host_budget = desc->host_budget ? desc->host_budget : UINT64_MAX;
    o->dev_budget = desc->device_budget;
    o->dev_limit = desc->device_limit;
    o->dev_reserve = desc->device_reserve;
    o->stream = desc->stream;
    if (!o->dev_budget) {
        uint64_t fr = 0, tot = 0;
        o->budget_derived = o->dev.mem_info && o->dev.mem_info(o->dev.user, &fr, &tot) == MLOAD_OK;
        if (o->budget_derived) o->dev_budget = fr > desc->device_reserve ? fr - desc->device_reserve : 0;
        else o->dev_budget = UINT64_MAX;
    }
    o->st.device_budget = o->dev_budget;
    o->st.host_budget = o->host_budget;
    o->owner = MLOAD__CAST(uint32_t *, mload__malloc(&o->alloc, (mload_map_count(o->map) + 1) * sizeof(uint32_t), sizeof(uint32_t)));
    if (!o->owner) { mload__free(&o->alloc, o, sizeof(*o), sizeof(void *)); return mload__oom(err); }
    for (i = 0; i < mload_map_count(o->map); ++i) o->owner[i] = MLOAD__NONE;
    mload__worker_init(&o->w, &o->alloc, sizeof(uint32_t), mload__o_prefetch_run, o, o->depth > 0 ? 1u : 0u);
    *out = o;
    return MLOAD_OK;
}

static int mload__f8_dst(mload_dtype t) { return t == MLOAD_DTYPE_F8_E4M3 || t == MLOAD_DTYPE_F8_E5M2; }

/* the computation copy of an acquired unit from its prepared copy (dtype p
   to c), by the device's convert */
/* the computation copy from the prepared one, on the device: queued
   conversions with the map's F8 mode and one wait (convert_async), else
   convert tensor by tensor */
static mload_result mload__convert_on_device(mload_offload *o, mload__unit *u, mload_dtype p, mload_dtype c, mload_error *err,
                                             uint64_t *fence_out) {
    size_t k;
    mload_result r = MLOAD_OK;
    uint64_t fence = 0;
    int queued = 0;
    for (k = 0; k < u->nt && r == MLOAD_OK; ++k) {
        const mload_tensor *t = mload__ut(o, u, k);
        uint64_t po = 0, co = 0;
        void *dst;
        const void *src;
        mload__layout(o, u, p, k, &po);
        mload__layout(o, u, c, k, &co);
        dst = MLOAD__CAST(unsigned char *, u->tmp) + co;
        src = MLOAD__CAST(unsigned char *, u->dev) + po;
        if (o->dev.convert_async) {
            r = o->dev.convert_async(o->dev.user, dst, mload__tier_dtype(t, c), src, mload__tier_dtype(t, p), t->numel,
                                     MLOAD__CAST(uint32_t, mload_map_f8_overflow(o->map)), &fence);
            queued |= r == MLOAD_OK;
        } else {
            r = o->dev.convert(o->dev.user, dst, mload__tier_dtype(t, c), src, mload__tier_dtype(t, p), t->numel);
        }
    }
    if (queued && fence_out && r == MLOAD_OK) *fence_out = fence; /* the caller's stream waits */
    else if (queued && o->dev.wait(o->dev.user, fence) != MLOAD_OK && r == MLOAD_OK) r = MLOAD_ERR_DEVICE;
    if (r != MLOAD_OK)
        return mload__dev_failed(o, err, mload__fail(err, MLOAD_ERR_DEVICE, MLOAD_NO_OFFSET, u->name, strlen(u->name),
                                                     "unit '%s': device conversion failed", u->name));
    return MLOAD_OK;
}

/* a tier that may hold float weights: not an integer or bool dtype (it
   would turn 300.5 into 127); integer tensors keep their dtype in every tier */
static int mload__float_tier(const mload_tier *t) {
    mload_kind k = mload_dtype_kind(t->dtype);
    return k != MLOAD_KIND_UINT && k != MLOAD_KIND_SINT && k != MLOAD_KIND_BOOL;
}

MODELLOAD_API mload_tiers mload_tiers_preset(mload_preset preset, mload_dtype storage, mload_dtype computation) {
    mload_tiers t;
    mload_place rest = preset == MLOAD_PRESET_DISK_OFFLOAD ? MLOAD_PLACE_DISK
                     : preset == MLOAD_PRESET_HOST_OFFLOAD ? MLOAD_PLACE_HOST : MLOAD_PLACE_DEVICE;
    memset(&t, 0, sizeof t);
    if (MLOAD__CAST(unsigned, preset) > MLOAD__CAST(unsigned, MLOAD_PRESET_FP8_DEVICE)) return t;
    if (!storage && (preset == MLOAD_PRESET_DISK_OFFLOAD || preset == MLOAD_PRESET_FP8_DEVICE)) storage = MLOAD_DTYPE_F8_E4M3;
    t.computation.place = MLOAD_PLACE_DEVICE;
    t.computation.dtype = computation;
    t.offload.place = t.onload.place = rest;
    t.preparing.place = MLOAD_PLACE_DEVICE;
    if (rest != MLOAD_PLACE_DISK) t.offload.dtype = t.onload.dtype = storage;
    if (preset != MLOAD_PRESET_HOST_OFFLOAD) t.preparing.dtype = storage;
    return t;
}

/* applies the defaulting rules; 0 when the tiers cannot work */
static int mload__tiers_default(const mload_tiers *in, mload_tiers *t) {
    mload_tiers z;
    memset(&z, 0, sizeof z);
    *t = in ? *in : z;
    if (t->computation.place == MLOAD_PLACE_DEFAULT) t->computation.place = MLOAD_PLACE_DEVICE;
    if (t->computation.place != MLOAD_PLACE_DEVICE) return 0;
    /* the original's rules: device = device or computation_device, dtype = dtype or computation_dtype */
#define MLOAD__FIX(T) do { if ((T).place == MLOAD_PLACE_DEFAULT) (T).place = MLOAD_PLACE_DEVICE; \
                           if ((T).place == MLOAD_PLACE_DISK) (T).dtype = MLOAD_DTYPE_INVALID; \
                           else if (!(T).dtype) (T).dtype = t->computation.dtype; } while (0)
    MLOAD__FIX(t->offload);
    MLOAD__FIX(t->onload);
    MLOAD__FIX(t->preparing);
#undef MLOAD__FIX
    if (t->onload.place == MLOAD_PLACE_DEVICE && t->preparing.place != MLOAD_PLACE_DEVICE) return 0;
    return t->offload.place <= MLOAD_PLACE_DEVICE && t->onload.place <= MLOAD_PLACE_DEVICE && t->preparing.place <= MLOAD_PLACE_DEVICE;
}

static mload_result mload__add_unit_locked(mload_offload *o, const char *name, const size_t *idx, size_t n, const mload_tiers *tiers,
                                           uint32_t *unit, mload_error *err);

/* Units may be added at any time: this waits for an in-flight prefetch
   (its fill holds pointers into the unit arrays) and holds the lock. */
static mload_result mload__add_unit(mload_offload *o, const char *name, const size_t *idx, size_t n, const mload_tiers *tiers,
                                    uint32_t *unit, mload_error *err) {
    mload_result r;
    mload__o_lock(o);
    while (o->inflight) mload__cond_wait(&o->w.done, &o->w.mu);
    r = mload__add_unit_locked(o, name, idx, n, tiers, unit, err);
    mload__o_unlock(o);
    return r;
}

static mload_result mload__add_unit_locked(mload_offload *o, const char *name, const size_t *idx, size_t n, const mload_tiers *tiers,
                                           uint32_t *unit, mload_error *err) {
    mload__unit *u;
    mload_tiers t;
    size_t k;
    void *np;
    if (!mload__tiers_default(tiers, &t))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, name, strlen(name),
                           "unit '%s': computation must be on the device, and an onload tier on the device needs the preparing tier there", name);
    if (n == 0) return mload__fail(err, MLOAD_ERR_NOT_FOUND, MLOAD_NO_OFFSET, name, strlen(name), "unit '%s' has no tensor", name);
    for (k = 0; k < n; ++k) {
        const mload_tensor *tt = mload_map_tensor(o->map, idx[k]);
        mload_dtype st = tt->dtype, a = mload__tier_dtype(tt, t.preparing.dtype), c = mload__tier_dtype(tt, t.computation.dtype),
                    h1 = mload__tier_dtype(tt, t.offload.dtype), h2 = mload__tier_dtype(tt, t.onload.dtype);
        if (o->owner[idx[k]] != MLOAD__NONE)
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, tt->name, tt->name_len,
                               "tensor '%s' is already in unit '%s'", tt->name, o->units[o->owner[idx[k]]].name);
        if (mload_dtype_kind(st) == MLOAD_KIND_FLOAT && (!mload__float_tier(&t.offload) || !mload__float_tier(&t.onload) ||
                                                         !mload__float_tier(&t.preparing) || !mload__float_tier(&t.computation)))
            return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, tt->name, tt->name_len,
                               "unit '%s': a tier's dtype is an integer dtype, and tensor '%s' holds floats", name, tt->name);
        if (!mload_cast_supported(a, st) || !mload_cast_supported(c, a) || !mload_cast_supported(c, st) ||
            !mload_cast_supported(h1, st) || !mload_cast_supported(h2, st) || !mload_cast_supported(a, h2) ||
            !mload_cast_supported(a, h1))
            return mload__fail(err, MLOAD_ERR_UNSUPPORTED, MLOAD_NO_OFFSET, tt->name, tt->name_len,
                               "tensor '%s': a tier dtype cannot be converted to", tt->name);
    }
    np = mload__grow(&o->alloc, o->units, &o->units_cap, o->nunits + 1u, sizeof(mload__unit));
    if (!np) return mload__oom(err);
    o->units = MLOAD__CAST(mload__unit *, np);
    if (o->dist_cap < o->units_cap) { /* one distance slot per unit */
        void *dp = mload__malloc(&o->alloc, o->units_cap * sizeof(uint32_t), sizeof(uint32_t));
        if (!dp) return mload__oom(err);
        mload__free(&o->alloc, o->dist, o->dist_cap * sizeof(uint32_t), sizeof(uint32_t));
        o->dist = MLOAD__CAST(uint32_t *, dp);
        o->dist_cap = o->units_cap;
    }
    np = mload__grow(&o->alloc, o->ut, &o->ut_cap, o->nut + n, sizeof(size_t));
    if (!np) return mload__oom(err);
    o->ut = MLOAD__CAST(size_t *, np);
    u = &o->units[o->nunits];
    memset(u, 0, sizeof(*u));
    u->name = mload__strndup(&o->alloc, name, strlen(name));
    u->views = MLOAD__CAST(mload_unit_tensor *, mload__malloc(&o->alloc, (n + 1) * sizeof(mload_unit_tensor), sizeof(void *)));
    if (!u->name || !u->views) {
        mload__strfree(&o->alloc, u->name);
        mload__free(&o->alloc, u->views, (n + 1) * sizeof(mload_unit_tensor), sizeof(void *));
        return mload__oom(err);
    }
    u->t0 = o->nut;
    u->nt = n;
    u->tiers = t;
    u->next = MLOAD__NONE;
    for (k = 0; k < n; ++k) {
        o->ut[o->nut++] = idx[k];
        o->owner[idx[k]] = o->nunits;
    }
    if (unit) *unit = o->nunits;
    o->nunits++;
    return MLOAD_OK;
}

MODELLOAD_API mload_result mload_offload_add_unit(mload_offload *o, const char *name, const char *const *prefixes,
                                                  uint64_t prefix_count, const mload_tiers *tiers, uint32_t *unit,
                                                  mload_error *err) {
    size_t *idx, n = 0, cap;
    uint64_t p;
    mload_result r;
    if (!o || !name || (prefix_count && !prefixes))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "offload: NULL argument");
    cap = MLOAD__CAST(size_t, mload_map_count(o->map)) + 1;
    idx = MLOAD__CAST(size_t *, mload__malloc(&o->alloc, cap * sizeof(size_t), sizeof(size_t)));
    if (!idx) return mload__oom(err);
    for (p = 0; p < prefix_count; ++p) {
        uint64_t first, c = mload_map_find_prefix(o->map, prefixes[p], &first), i;
        for (i = 0; i < c && n < cap; ++i) {
            size_t j, dup = 0;
            for (j = 0; j < n; ++j) dup |= idx[j] == first + i; /* overlapping prefixes */
            if (!dup) idx[n++] = MLOAD__CAST(size_t, first + i);
        }
    }
    r = mload__add_unit(o, name, idx, n, tiers, unit, err);
    mload__free(&o->alloc, idx, cap * sizeof(size_t), sizeof(size_t));
    return r;
}

MODELLOAD_API mload_result mload_offload_add_unit_list(mload_offload *o, const char *name, const char *const *tensors,
                                                       uint64_t count, const mload_tiers *tiers, uint32_t *unit,
                                                       mload_error *err) {
    size_t *idx;
    uint64_t k;
    mload_result r;
    if (!o || !name || (count && !tensors) || count > mload_map_count(o->map))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "offload: NULL argument or too many tensors");
    idx = MLOAD__CAST(size_t *, mload__malloc(&o->alloc, MLOAD__CAST(size_t, count + 1u) * sizeof(size_t), sizeof(size_t)));
    if (!idx) return mload__oom(err);
    for (k = 0; k < count; ++k) {
        const mload_tensor *t = tensors[k] ? mload_map_find(o->map, tensors[k]) : NULL;
        if (!t) {
            mload__free(&o->alloc, idx, MLOAD__CAST(size_t, count + 1u) * sizeof(size_t), sizeof(size_t));
            return mload__fail(err, MLOAD_ERR_NOT_FOUND, MLOAD_NO_OFFSET, tensors[k], tensors[k] ? strlen(tensors[k]) : 0,
                               "unit '%s': no tensor '%s'", name, tensors[k] ? tensors[k] : "");
        }
        idx[k] = MLOAD__CAST(size_t, t - mload_map_tensor(o->map, 0));
    }
    r = mload__add_unit(o, name, idx, MLOAD__CAST(size_t, count), tiers, unit, err);
    mload__free(&o->alloc, idx, MLOAD__CAST(size_t, count + 1u) * sizeof(size_t), sizeof(size_t));
    return r;
}

MODELLOAD_API mload_result mload_offload_get_tiers(const mload_offload *o, uint32_t unit, mload_tiers *out, mload_error *err) {
    if (!o || unit >= o->nunits || !out)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "offload: NULL argument or bad unit");
    *out = o->units[unit].tiers;
    return MLOAD_OK;
}

static mload_result mload__set_pinned(mload_offload *o, uint32_t unit, int pinned, mload_error *err) {
    if (!o || unit >= o->nunits)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "offload: NULL manager or bad unit");
    mload__o_lock(o);
    o->units[unit].pinned = pinned;
    mload__o_unlock(o);
    return MLOAD_OK;
}
MODELLOAD_API mload_result mload_offload_pin(mload_offload *o, uint32_t unit, mload_error *err) {
    return mload__set_pinned(o, unit, 1, err);
}
MODELLOAD_API mload_result mload_offload_unpin(mload_offload *o, uint32_t unit, mload_error *err) {
    return mload__set_pinned(o, unit, 0, err);
}

MODELLOAD_API mload_result mload_offload_set_schedule(mload_offload *o, const uint32_t *units, uint64_t n, mload_error *err) {
    uint64_t i, k;
    if (!o || (n && !units))
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "schedule: NULL manager or units");
    mload__o_lock(o);
    for (k = 0; k < o->nunits; ++k) o->dist[k] = 0; /* the eviction scratch marks units seen */
    for (i = 0; i < n; ++i) {
        if (units[i] < o->nunits && !o->dist[units[i]]) {
            o->dist[units[i]] = 1;
            continue;
        }
        mload__o_unlock(o);
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "schedule entry %U: a bad unit, or one given twice", i);
    }
    for (i = 0; i < n; ++i) o->units[units[i]].next = units[(i + 1) % n];
    mload__o_unlock(o);
    return MLOAD_OK;
}

/* Loads unit `unit`'s prepared copy now, on this thread (lock held; released
   during the fill, while the copy is marked loading so nothing evicts it). */
/* the original's vram_limit: 1 when the device's whole use, measured now,
   stays within device_limit with `bytes` more (lock held) */
static int mload__under_limit(mload_offload *o, uint64_t bytes) {
    uint64_t fr = 0, tot = 0;
    if (!o->dev_limit) return 1;
    if (o->dev.mem_info(o->dev.user, &fr, &tot) != MLOAD_OK || fr > tot) return 0;
    return tot - fr <= o->dev_limit && bytes <= o->dev_limit - (tot - fr);
}

/* fence_out as for mload__fill_device */
static mload_result mload__load_prepared(mload_offload *o, uint32_t unit, mload_error *err, uint64_t *fence_out) {
    mload__unit *u = &o->units[unit];
    uint64_t bytes = mload__layout(o, u, u->tiers.preparing.dtype, u->nt, NULL);
    void *ptr;
    mload_result r;
    if (!mload__under_limit(o, bytes))
        return mload__fail(err, MLOAD_ERR_BUDGET, MLOAD_NO_OFFSET, u->name, strlen(u->name),
                           "unit '%s': the device's use would pass device_limit (%U bytes)", u->name, o->dev_limit);
    if ((r = mload__dev_alloc(o, bytes, unit, 0, 1, &ptr, err)) != MLOAD_OK) return r;
    u->dev = ptr;
    u->dev_bytes = bytes ? bytes : 1;
    u->dev_state = MLOAD__DEV_LOADING;
    u->dev_rest = mload__rest_key(u);
    u->prefetched = 0;
    u->load_result = MLOAD_OK;
    mload__o_unlock(o);
    r = mload__fill_device(o, u, u->tiers.preparing.dtype, MLOAD_DTYPE_INVALID, u->dev, u->dev_bytes, err, fence_out);
    mload__o_lock(o);
    if (r != MLOAD_OK) mload__free_dev_copy(o, u);
    else u->dev_state = MLOAD__DEV_READY;
    return r;
}

/* starts loading unit v's prepared copy ahead of use (lock held) */
static void mload__prefetch(mload_offload *o, uint32_t from) {
    uint32_t k, v = from;
    for (k = 1; k <= o->depth; ++k) {
        mload__unit *u;
        void *ptr;
        uint64_t bytes;
        v = o->units[v].next;
        if (v == MLOAD__NONE || v == from) return;
        u = &o->units[v];
        if (u->tiers.preparing.place != MLOAD_PLACE_DEVICE || u->dev_state != MLOAD__DEV_NONE) continue;
        bytes = mload__layout(o, u, u->tiers.preparing.dtype, u->nt, NULL);
        /* room only from units needed later than this one */
        if (!mload__under_limit(o, bytes) || mload__dev_alloc(o, bytes, from, k, 0, &ptr, NULL) != MLOAD_OK) return;
        u->dev = ptr;
        u->dev_bytes = bytes ? bytes : 1;
        u->dev_state = MLOAD__DEV_LOADING;
        u->dev_rest = mload__rest_key(u);
        u->prefetched = 1;
        u->load_result = MLOAD_OK;
        o->st.prefetch_issued++;
        if (o->w.started) {
            if (!mload__worker_push(&o->w, &v)) mload__free_dev_copy(o, u);
            continue;
        }
        { /* no worker: load now */
            mload_error e;
            mload_result r;
            mload__o_unlock(o);
            r = mload__fill_device(o, u, u->tiers.preparing.dtype, MLOAD_DTYPE_INVALID, u->dev, u->dev_bytes, &e, NULL);
            mload__o_lock(o);
            if (r != MLOAD_OK) mload__free_dev_copy(o, u);
            else u->dev_state = MLOAD__DEV_READY;
        }
    }
}

/* The computation copy of an acquired unit (lock held, dropped while
   filling). Over the budget with its prepared copy, the prepared copy is
   dropped (unless pinned) and the unit runs on the temporary copy alone, as
   the original does; MLOAD_ERR_BUDGET only when that copy cannot fit. */
static mload_result mload__make_tmp(mload_offload *o, mload__unit *u, uint32_t unit, mload_error *err, uint64_t *fence_out) {
    mload_dtype p = u->tiers.preparing.dtype, c = u->tiers.computation.dtype;
    uint64_t bytes = mload__layout(o, u, c, u->nt, NULL);
    void *ptr;
    mload_error e1;
    mload_result r = mload__dev_alloc(o, bytes, unit, 0, 1, &ptr, &e1);
    if (r == MLOAD_ERR_BUDGET && u->dev_state == MLOAD__DEV_READY && !u->pinned) {
        mload__free_dev_copy(o, u);
        r = mload__dev_alloc(o, bytes, unit, 0, 1, &ptr, &e1);
    }
    if (r != MLOAD_OK) {
        if (err) *err = e1;
        return r;
    }
    u->tmp = ptr;
    u->tmp_bytes = bytes ? bytes : 1;
    mload__o_unlock(o);
    /* on the device from the prepared copy, unless it would narrow to F8 with the map's
       non-saturating mode, which a device's convert (saturating) cannot honour: convert_async can */
    if (u->dev_state == MLOAD__DEV_READY &&
        (o->dev.convert_async || (o->dev.convert && (mload_map_f8_overflow(o->map) == MLOAD_F8_OVERFLOW_SATURATE || !mload__f8_dst(c))))) {
        r = mload__convert_on_device(o, u, p, c, err, fence_out);
        mload__o_lock(o);
        if (r == MLOAD_OK) o->st.device_convert += bytes;
    } else {
        /* from the host copy or the map, converted on the host, through the
           preparing dtype when that tier is on the device (as the device would) */
        r = mload__fill_device(o, u, c, u->tiers.preparing.place == MLOAD_PLACE_DEVICE ? p : MLOAD_DTYPE_INVALID, u->tmp,
                               u->tmp_bytes, err, fence_out);
        mload__o_lock(o);
    }
    if (r != MLOAD_OK) mload__free_tmp(o, u);
    return r;
}

MODELLOAD_API mload_result mload_offload_acquire(mload_offload *o, uint32_t unit, const mload_unit_tensor **tensors,
                                                 uint64_t *count, mload_error *err) {
    mload__unit *u;
    mload_result r = MLOAD_OK;
    mload_dtype p, c;
    uint64_t t0, fence = 0; /* with a stream: the last copy or conversion the caller's stream waits for */
    size_t k;
    int need_tmp = 0;
    if (tensors) *tensors = NULL;
    if (count) *count = 0;
    if (!o || unit >= o->nunits || !tensors || !count)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "acquire: bad unit or NULL argument");
    u = &o->units[unit];
    if (u->acquired)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, u->name, strlen(u->name), "unit '%s' is already acquired", u->name);
    t0 = mload__now_ns();
    mload__o_lock(o);
    if (u->tmp_retiring) mload__free_tmp(o, u); /* its last use may still run: after the event */
    o->st.acquires++;
    if (o->last != MLOAD__NONE && o->last != unit) o->units[o->last].next = unit; /* learn the order */
    o->last = unit;
    p = u->tiers.preparing.dtype;
    c = u->tiers.computation.dtype;
    if (u->tiers.preparing.place == MLOAD_PLACE_DEVICE) {
        if (u->dev_state == MLOAD__DEV_LOADING) /* a failed prefetch is retried below, synchronously */
            (void)mload__wait_loaded(o, u, NULL);
        u->load_result = MLOAD_OK;
        mload__drop_stale(o, u);
        if (u->dev_state == MLOAD__DEV_READY) {
            o->st.hits++;
            if (u->prefetched) o->st.prefetch_hits++;
        } else {
            mload_error e1;
            o->st.misses++;
            /* a prepared copy over the budget: the unit runs on a temporary copy alone */
            if ((r = mload__load_prepared(o, unit, &e1, o->stream ? &fence : NULL)) == MLOAD_ERR_BUDGET) r = MLOAD_OK;
            else if (r != MLOAD_OK) { if (err) *err = e1; goto fail; }
        }
        u->prefetched = 0;
        for (k = 0; k < u->nt; ++k)
            need_tmp |= mload__tier_dtype(mload__ut(o, u, k), p) != mload__tier_dtype(mload__ut(o, u, k), c);
        need_tmp |= u->dev_state != MLOAD__DEV_READY;
    } else {
        o->st.misses++;
        need_tmp = 1;
    }
    u->acquired = 1; /* from here its prepared copy is not evictable */
    if (need_tmp && (r = mload__make_tmp(o, u, unit, err, o->stream ? &fence : NULL)) != MLOAD_OK) { u->acquired = 0; goto fail; }
    for (k = 0; k < u->nt; ++k) {
        const mload_tensor *t = mload__ut(o, u, k);
        uint64_t off = 0;
        mload_dtype dt = mload__tier_dtype(t, c);
        mload__layout(o, u, need_tmp ? c : p, k, &off);
        u->views[k].tensor = t;
        u->views[k].dtype = dt;
        u->views[k].data = MLOAD__CAST(unsigned char *, need_tmp ? u->tmp : u->dev) + off;
        u->views[k].nbytes = mload__tbytes(t, dt);
    }
    /* the caller's stream waits for the copies, not the host (or the host, if the device cannot) */
    if (fence && o->dev.stream_wait(o->dev.user, o->stream, fence) != MLOAD_OK) (void)o->dev.wait(o->dev.user, fence);
    o->st.wait_ns += mload__now_ns() - t0;
    mload__prefetch(o, unit);
    mload__o_unlock(o);
    *tensors = u->views;
    *count = u->nt;
    return MLOAD_OK;
fail:
    o->st.wait_ns += mload__now_ns() - t0;
    mload__o_unlock(o);
    return r;
}

MODELLOAD_API void mload_offload_release(mload_offload *o, uint32_t unit) {
    mload__unit *u;
    if (!o || unit >= o->nunits) return;
    mload__o_lock(o);
    u = &o->units[unit];
    if (u->acquired) {
        /* with a stream, the caller's work queued so far may still read the unit: an event
           after it; the computation copy waits for it (mload__reclaim_one), as does any later
           free of the prepared copy */
        if (o->stream && o->dev.record(o->dev.user, o->stream, &u->ev) == MLOAD_OK) u->has_ev = 1;
        if (u->has_ev && u->tmp) u->tmp_retiring = 1;
        else mload__free_tmp(o, u);
        u->acquired = 0;
        u->last_use = ++o->tick;
        mload__o_peak(o);
    }
    mload__o_unlock(o);
}

/* makes the unit's host copy the given tier (HOST: in its dtype; else none); lock held */
static mload_result mload__set_host(mload_offload *o, mload__unit *u, const mload_tier *t, mload_error *err) {
    unsigned char *nh = NULL;
    uint64_t bytes;
    int from_host;
    mload_result r;
    if (t->place != MLOAD_PLACE_HOST) {
        mload__host_copy_free(o, u);
        return MLOAD_OK;
    }
    if (u->host && u->host_dtype == t->dtype) return MLOAD_OK;
    bytes = mload__layout(o, u, t->dtype, u->nt, NULL);
    if ((r = mload__host_alloc(o, bytes, &nh, err)) != MLOAD_OK) return r;
    mload__o_unlock(o);
    r = mload__fill_host_layout(o, u, t->dtype, MLOAD_DTYPE_INVALID, nh, &from_host, err);
    mload__o_lock(o);
    if (r != MLOAD_OK) { mload__host_free(o, nh, bytes); return r; }
    if (!from_host) o->st.disk_to_host += bytes;
    mload__host_copy_free(o, u);
    u->host = nh;
    u->host_bytes = bytes ? bytes : 1;
    u->host_dtype = t->dtype;
    return MLOAD_OK;
}

/* one unit of a group onload: to its onload tier (a HOST copy, or a
   DEVICE copy within the budget, which keeps no host copy) */
static mload_result mload__onload_unit(mload_offload *o, mload__unit *u, uint32_t unit, mload_error *err) {
    mload_result r;
    int was = u->onloaded;
    (void)mload__wait_loaded(o, u, NULL); /* a failed prefetch only means "not loaded" */
    u->onloaded = 1; /* from here values go through the onload tier's dtype */
    if ((r = mload__set_host(o, u, &u->tiers.onload, err)) != MLOAD_OK) {
        u->onloaded = was;
        return r;
    }
    mload__drop_stale(o, u);
    if (u->tiers.onload.place == MLOAD_PLACE_DEVICE && u->dev_state != MLOAD__DEV_READY)
        return mload__load_prepared(o, unit, err, NULL);
    return MLOAD_OK;
}

/* one unit of a group offload: back to its offload tier, every other copy freed */
static mload_result mload__offload_unit(mload_offload *o, mload__unit *u, mload_error *err) {
    mload_result r;
    int was;
    if (u->acquired)
        return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, u->name, strlen(u->name), "unit '%s' is acquired", u->name);
    (void)mload__wait_loaded(o, u, NULL);
    was = u->onloaded;
    u->onloaded = 0;
    if ((r = mload__set_host(o, u, &u->tiers.offload, err)) != MLOAD_OK) {
        u->onloaded = was;
        return r;
    }
    if (u->tiers.offload.place == MLOAD_PLACE_DEVICE) mload__drop_stale(o, u); /* parked on the device: kept */
    else mload__free_dev_copy(o, u);
    return MLOAD_OK;
}

/* The group moves: each unit in turn, stopping at the first failure. The
   members of an onload do not evict each other; an offload (parking)
   releases the staging buffers too. */
static mload_result mload__group_move(mload_offload *o, const uint32_t *units, uint64_t n, int onload, mload_error *err) {
    const char *what = onload ? "onload" : "offload";
    uint64_t i;
    mload_result r = MLOAD_OK;
    if (!o || (n && !units)) return mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "%s: NULL argument", what);
    mload__o_lock(o);
    for (i = 0; i < n; ++i)
        if (onload && units[i] < o->nunits) o->units[units[i]].grouped = 1;
    for (i = 0; i < n && r == MLOAD_OK; ++i) {
        if (units[i] >= o->nunits) r = mload__fail(err, MLOAD_ERR_INVALID_ARGUMENT, MLOAD_NO_OFFSET, NULL, 0, "%s: bad unit", what);
        else if (onload) r = mload__onload_unit(o, &o->units[units[i]], units[i], err);
        else r = mload__offload_unit(o, &o->units[units[i]], err);
    }
    for (i = 0; i < n; ++i)
        if (units[i] < o->nunits) o->units[units[i]].grouped = 0;
    for (i = 0; i < 2 && !onload; ++i)
        if (!o->stage_busy[i]) mload__stage_drop(o, MLOAD__CAST(int, i));
    mload__o_unlock(o);
    return r;
}

MODELLOAD_API mload_result mload_offload_group_onload(mload_offload *o, const uint32_t *units, uint64_t n, mload_error *err) {
    return mload__group_move(o, units, n, 1, err);
}
MODELLOAD_API mload_result mload_offload_group_offload(mload_offload *o, const uint32_t *units, uint64_t n, mload_error *err) {
    return mload__group_move(o, units, n, 0, err);
}

MODELLOAD_API int mload_offload_is_resident(const mload_offload *o, uint32_t unit) {
    int r;
    if (!o || unit >= o->nunits) return 0;
    mload__o_lock(MLOAD__CCAST(mload_offload *, o));
    r = o->units[unit].dev_state == MLOAD__DEV_READY;
    mload__o_unlock(MLOAD__CCAST(mload_offload *, o));
    return r;
}

MODELLOAD_API void mload_offload_get_stats(const mload_offload *o, mload_offload_stats *out) {
    if (!o || !out) return;
    mload__o_lock(MLOAD__CCAST(mload_offload *, o));
    *out = o->st;
    mload__o_unlock(MLOAD__CCAST(mload_offload *, o));
}

MODELLOAD_API void mload_offload_reset_stats(mload_offload *o) {
    if (!o) return;
    mload__o_lock(o);
    memset(&o->st, 0, sizeof o->st);
    o->st.device_budget = o->dev_budget;
    o->st.host_budget = o->host_budget;
    mload__o_peak(o);
    mload__o_unlock(o);
}

#endif /* !MODELLOAD_NO_OFFLOAD */

#ifdef __cplusplus
}
#endif

#endif /* MODELLOAD_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
REVISION HISTORY (every rename with its old name: docs/changelog.md)

  0.4.0  PyTorch checkpoints (.bin .pth .pt .ckpt) through the same file and
         map: a zip reader and a restricted pickle machine that runs no
         code (mload_file_format, mload_file_strides, MODELLOAD_NO_PICKLE,
         InvalidArchive, InvalidPickle, PickleRefused). LoRA adapters
         merged on read (mload_lora, mload_map_lora_info).
  0.3.0  Casts at the speed of memory: AVX2/F16C and AVX-512 kernels picked
         at run time (mload_cast_simd, mload_cast_set_simd, MODELLOAD_NO_SIMD),
         bit-identical to the portable loops; reads that cast in cache-sized
         pieces, or straight from views (MLOAD_CAST_READ_VIEW); O_DIRECT
         reads straight into the destination, 16 KiB bounce buffers.
         mload_map_load_device (bulk loads into device memory); a budget
         derived from free memory re-measured at each allocation; device
         table members host_alloc/host_free, convert_async, error_detail,
         record/event_wait/stream_wait; offload desc.stream (stream-ordered
         release); simulated device streams.
  0.2.0  One vocabulary (open/close, create/destroy, cast vs converter, enums
         for every choice, mload_error on every fallible call, uint64_t
         counts, const read handles, bind inputs, results and report apart); the
         header re-cut into numbered modules with >>tags; tensor recipes;
         source capabilities (view, read_direct); MODELLOAD_NO_CONVERTER,
         _NO_FINGERPRINT, _NO_WRITER, _NO_OFFLOAD; MODELLOAD_STATIC builds
         without unused-function warnings. The writer all-or-nothing for
         readers. Offload: the original's tier defaults, presets, values
         that follow the original's moves whatever copies exist, temporary
         copies over the budget, device_limit (vram_limit), the flat
         ZeRO-3 split, a declared schedule. Casts independent of DAZ/FTZ,
         FNUZ fp8 targets. Model detection by fingerprint table.
  0.1.0  First release: parser, map, converter, bulk loads, binding,
         fingerprint, writer, offload manager with host and simulated
         devices.

------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 The modelload.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
