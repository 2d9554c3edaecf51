/* bind: load a program's own model struct from a checkpoint in a few lines.

   Build:  cc -std=c99 -O2 -I. examples/bind.c -o bind -pthread
   Usage:  ./bind [CHECKPOINT]   (without one it writes a small demo file first)

   The engine declares the tensors it expects (name, dtype, shape, where they
   go); mload_map_bind fills them all through the threaded bulk path,
   converting dtype on the way (the file is BF16, the engine computes in
   F32), and refuses the whole load in strict mode if anything is missing,
   extra or the wrong shape. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <string.h>

#define HIDDEN 8
#define VOCAB 16
#define LAYERS 2

typedef struct layer { float w_in[2 * HIDDEN][HIDDEN]; float w_out[HIDDEN][2 * HIDDEN]; float norm[HIDDEN]; } layer;
typedef struct model { float embed[VOCAB][HIDDEN]; layer layers[LAYERS]; float final_norm[HIDDEN]; } model;

static model g_model; /* the engine's own memory */

/* writes a BF16 checkpoint with the names and shapes the engine expects */
static int write_demo(const char *path) {
    static uint16_t data[VOCAB * HIDDEN * 4];
    uint64_t s_embed[2] = {VOCAB, HIDDEN}, s_in[2] = {2 * HIDDEN, HIDDEN}, s_out[2] = {HIDDEN, 2 * HIDDEN}, s_norm[1] = {HIDDEN};
    mload_write_tensor w[2 + 3 * LAYERS];
    char names[3 * LAYERS][64];
    int i, l, n = 0;
    mload_error e;
    for (i = 0; i < (int)(sizeof data / 2); ++i) data[i] = (uint16_t)(0x3C00 + i % 64); /* BF16 ~0.0078..0.0156 */
    memset(w, 0, sizeof w);
    w[n].name = "embed.weight"; w[n].dtype = MLOAD_DTYPE_BF16; w[n].rank = 2; w[n].shape = s_embed; w[n].data = data; n++;
    w[n].name = "norm.weight"; w[n].dtype = MLOAD_DTYPE_BF16; w[n].rank = 1; w[n].shape = s_norm; w[n].data = data; n++;
    for (l = 0; l < LAYERS; ++l) {
        snprintf(names[3 * l], 64, "layers.%d.mlp.in.weight", l);
        snprintf(names[3 * l + 1], 64, "layers.%d.mlp.out.weight", l);
        snprintf(names[3 * l + 2], 64, "layers.%d.norm.weight", l);
        w[n].name = names[3 * l]; w[n].dtype = MLOAD_DTYPE_BF16; w[n].rank = 2; w[n].shape = s_in; w[n].data = data; n++;
        w[n].name = names[3 * l + 1]; w[n].dtype = MLOAD_DTYPE_BF16; w[n].rank = 2; w[n].shape = s_out; w[n].data = data; n++;
        w[n].name = names[3 * l + 2]; w[n].dtype = MLOAD_DTYPE_BF16; w[n].rank = 1; w[n].shape = s_norm; w[n].data = data; n++;
    }
    if (mload_write(path, w, (uint64_t)n, NULL, &e) != MLOAD_OK) {
        fprintf(stderr, "bind: writing %s: %s\n", path, e.message);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "bind-demo.safetensors";
    static const uint64_t s_embed[2] = {VOCAB, HIDDEN}, s_in[2] = {2 * HIDDEN, HIDDEN}, s_out[2] = {HIDDEN, 2 * HIDDEN},
                          s_norm[1] = {HIDDEN};
    mload_binding b[2 + 3 * LAYERS];
    char names[3 * LAYERS][64];
    mload_map_desc d;
    mload_map *m;
    mload_bind_report rep;
    mload_error e;
    int l, n = 0;

    if (argc < 2 && !write_demo(path)) return 1;

    /* 1. declare what the engine expects, and where it goes */
    memset(b, 0, sizeof b);
#define BIND(NAME, SHAPE, RANK, DST) \
    (b[n].name = (NAME), b[n].dtype = MLOAD_DTYPE_F32, b[n].rank = (RANK), b[n].shape = (SHAPE), b[n].dst = (DST), \
     b[n].dst_size = sizeof(DST), n++)
    BIND("embed.weight", s_embed, 2, g_model.embed);
    BIND("norm.weight", s_norm, 1, g_model.final_norm);
    for (l = 0; l < LAYERS; ++l) {
        snprintf(names[3 * l], 64, "layers.%d.mlp.in.weight", l);
        snprintf(names[3 * l + 1], 64, "layers.%d.mlp.out.weight", l);
        snprintf(names[3 * l + 2], 64, "layers.%d.norm.weight", l);
        BIND(names[3 * l], s_in, 2, g_model.layers[l].w_in);
        BIND(names[3 * l + 1], s_out, 2, g_model.layers[l].w_out);
        BIND(names[3 * l + 2], s_norm, 1, g_model.layers[l].norm);
    }

    /* 2. open the checkpoint (file, folder or index.json) and bind, strictly */
    memset(&d, 0, sizeof d);
    d.paths = &path;
    d.path_count = 1;
    if (mload_map_open(&d, &m, &e) != MLOAD_OK ||
        mload_map_bind(m, b, (uint64_t)n, NULL, &rep, &e) != MLOAD_OK) {
        fprintf(stderr, "bind: %s: %s\n", mload_result_string(e.code), e.message);
        for (l = 0; l < n; ++l)
            if (b[l].status != MLOAD_OK) fprintf(stderr, "  %s: %s\n", b[l].name, mload_result_string(b[l].status));
        mload_map_close(m); /* NULL when the open failed: ignored */
        return 1;
    }
    mload_map_close(m);
    printf("bind: loaded %llu tensors into the model struct (embed[1][0] = %g, layers[1].norm[7] = %g)\n",
           (unsigned long long)rep.loaded, (double)g_model.embed[1][0], (double)g_model.layers[1].norm[7]);
    return 0;
}
