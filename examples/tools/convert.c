/* mload-convert: convert a checkpoint's dtype and/or re-shard it.

   Build:  cc -std=c99 -O2 -I. examples/tools/convert.c -o mload-convert -pthread

   Usage:  mload-convert IN... -o OUT.safetensors [--dtype DTYPE] [--shard-size BYTES] [--fp8-nonsat]
                         [--lora FILE[:SCALE]]... [--lora-alpha A]

   IN is a .safetensors file, a folder or an *.index.json (several are one
   name space; a name in two inputs is an error). --dtype converts every
   floating-point tensor (F64 F32 F16 BF16 F8_*) to DTYPE (F64, F32, F16,
   BF16, F8_E4M3 or F8_E5M2), rounding to nearest even; integer and BOOL tensors
   are copied as they are. F8 overflow saturates unless --fp8-nonsat.
   --shard-size splits the output into shards of at most BYTES data bytes
   plus OUT.index.json. The first input file's __metadata__ is kept.
   --lora merges a LoRA adapter (PEFT, kohya or old diffusers layout; SCALE
   default 1) into the weights it matches, several in the order given;
   --lora-alpha gives the alpha of layouts that do not store one (PEFT;
   default: the rank). docs/lora.md.
   Tensors stream through a 4 MiB buffer: memory stays small whatever the
   model size.

   Exit status: 0 success, 1 conversion or I/O error, 2 usage or an input
   that cannot be opened. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: mload-convert IN... -o OUT.safetensors [--dtype DTYPE] [--shard-size BYTES] [--fp8-nonsat]\n"
                    "                     [--lora FILE[:SCALE]]... [--lora-alpha A]\n");
}

static int fail(const mload_error *e) {
    fprintf(stderr, "mload-convert: %s", mload_result_string(e->code));
    if (e->tensor[0]) fprintf(stderr, ", tensor \"%s\"", e->tensor);
    fprintf(stderr, ": %s\n", e->message);
    return 1;
}

int main(int argc, char **argv) {
    const char **inputs = (const char **)calloc((size_t)argc, sizeof(char *));
    mload_lora *loras = (mload_lora *)calloc((size_t)argc, sizeof(mload_lora));
    uint32_t nlora = 0;
    double alpha = 0;
    const char *out = NULL;
    uint32_t nin = 0;
    mload_dtype to = MLOAD_DTYPE_INVALID;
    mload_map_desc d;
    mload_write_opts wo;
    mload_write_tensor *wt;
    mload_map *m;
    mload_error e;
    uint64_t k, n;
    int i, rc = 0;
    uint32_t flags = MLOAD_F8_OVERFLOW_SATURATE;

    if (!inputs || !loras) return 1;
    memset(&wo, 0, sizeof wo);
    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out = argv[++i];
        else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            to = mload_dtype_from_name(s, strlen(s));
            if (to != MLOAD_DTYPE_F32 && to != MLOAD_DTYPE_F16 && to != MLOAD_DTYPE_BF16 && to != MLOAD_DTYPE_F8_E4M3 && to != MLOAD_DTYPE_F8_E5M2 &&
                to != MLOAD_DTYPE_F64) {
                fprintf(stderr, "mload-convert: --dtype must be F64, F32, F16, BF16, F8_E4M3 or F8_E5M2\n");
                free(inputs);
                free(loras);
                return 2;
            }
        } else if (strcmp(argv[i], "--shard-size") == 0 && i + 1 < argc) {
            char *end;
            wo.shard_bytes = strtoull(argv[++i], &end, 10);
            if (*end || wo.shard_bytes == 0) { usage(); free(inputs); free(loras); return 2; }
        } else if (strcmp(argv[i], "--lora") == 0 && i + 1 < argc) { /* FILE or FILE:SCALE */
            char *spec = argv[++i], *colon = strrchr(spec, ':'), *end = NULL;
            double scale = colon ? strtod(colon + 1, &end) : 1.0;
            if (colon && end != colon + 1 && *end == '\0') *colon = '\0'; /* else a ':' of the path */
            else scale = 1.0;
            loras[nlora].path = spec;
            loras[nlora++].scale = scale;
        } else if (strcmp(argv[i], "--lora-alpha") == 0 && i + 1 < argc) {
            char *end;
            alpha = strtod(argv[++i], &end);
            if (*end || alpha <= 0) { usage(); free(inputs); free(loras); return 2; }
        } else if (strcmp(argv[i], "--fp8-nonsat") == 0) {
            flags = MLOAD_F8_OVERFLOW_NONSAT;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            usage();
            free(inputs);
            free(loras);
            return 2;
        } else {
            inputs[nin++] = argv[i];
        }
    }
    if (!nin || !out) { usage(); free(inputs); free(loras); return 2; }

    memset(&d, 0, sizeof d);
    d.paths = inputs;
    d.path_count = nin;
    d.f8_overflow = flags;
    for (k = 0; k < nlora; ++k) loras[k].alpha = alpha;
    d.loras = loras;
    d.lora_count = nlora;
    if (mload_map_open(&d, &m, &e) != MLOAD_OK) {
        rc = fail(&e);
        free(inputs);
        free(loras);
        return e.code == MLOAD_ERR_CANNOT_OPEN ? 2 : rc;
    }
    n = mload_map_count(m);
    wt = (mload_write_tensor *)calloc((size_t)n + 1, sizeof *wt);
    if (!wt) { mload_map_close(m); free(inputs); free(loras); return 1; }
    for (k = 0; k < n; ++k) {
        const mload_tensor *t = mload_map_tensor(m, k);
        int is_float = mload_dtype_kind(t->dtype) == MLOAD_KIND_FLOAT;
        wt[k].name = t->name;
        wt[k].name_len = t->name_len; /* names may hold a NUL byte */
        wt[k].map = m;
        wt[k].src = t;
        wt[k].dtype = (to && is_float && mload_cast_supported(to, t->dtype)) ? to : t->dtype;
    }
    {
        const mload_file *f0 = mload_map_file(m, 0);
        wo.metadata = mload_file_metadata_count(f0) ? mload_file_metadata(f0, 0) : NULL;
        wo.metadata_count = mload_file_metadata_count(f0);
    }
    if (mload_write(out, wt, n, &wo, &e) != MLOAD_OK) rc = fail(&e);
    else fprintf(stderr, "mload-convert: wrote %llu tensors to %s\n", (unsigned long long)n, out);
    free(wt);
    mload_map_close(m);
    free(inputs);
    free(loras);
    return rc;
}
