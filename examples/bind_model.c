/* bind_model: fill a program's own model struct from a checkpoint in one call.

   Build:  cc -std=c99 -O2 -I. examples/bind_model.c -o bind_model -pthread
   Usage:  ./bind_model CHECKPOINT    (one that fits: build/gen_checkpoint tiny.safetensors 2 8)

   CHECKPOINT must hold exactly these tensors, any float dtype (read as F32):
   model.embed_tokens.weight [256,8], model.norm.weight [8] and, for N = 0, 1,
   model.layers.N.{mlp.down_proj [8,16], mlp.up_proj [16,8], self_attn.qkv_proj
   [24,8], input_layernorm [8]}.weight. A strict bind writes nothing and fails
   if one is missing or has another shape, or the checkpoint holds others. */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"

#include <stdio.h>
#include <string.h>

enum { VOCAB = 256, HIDDEN = 8, LAYERS = 2, PER_LAYER = 4 };
typedef struct block { float down[HIDDEN][2 * HIDDEN], up[2 * HIDDEN][HIDDEN], qkv[3 * HIDDEN][HIDDEN], norm[HIDDEN]; } block;
typedef struct model { float embed[VOCAB][HIDDEN]; block layers[LAYERS]; float norm[HIDDEN]; } model;

static model g_model; /* the program's memory: the library writes into it */
static const uint64_t s_embed[2] = {VOCAB, HIDDEN}, s_down[2] = {HIDDEN, 2 * HIDDEN},
                      s_up[2] = {2 * HIDDEN, HIDDEN}, s_qkv[2] = {3 * HIDDEN, HIDDEN}, s_vec[1] = {HIDDEN};

/* one expected tensor: its name, its shape, and where it goes */
static void expect(mload_binding *b, const char *name, uint32_t rank, const uint64_t *shape, void *dst, size_t size) {
    memset(b, 0, sizeof *b); /* zero: no sharding */
    b->name = name; b->dtype = MLOAD_DTYPE_F32; b->rank = rank; b->shape = shape; b->dst = dst; b->dst_size = size;
}

int main(int argc, char **argv) {
    static const char *const kinds[PER_LAYER] = {"mlp.down_proj", "mlp.up_proj", "self_attn.qkv_proj", "input_layernorm"};
    static char names[LAYERS][PER_LAYER][64];
    mload_binding b[2 + PER_LAYER * LAYERS];
    mload_bind_result res[2 + PER_LAYER * LAYERS]; /* what happened to each binding */
    mload_bind_report rep;
    mload_map_desc desc;
    mload_map *m = NULL;
    mload_error e;
    uint64_t n = 0, i;
    int l, k;

    if (argc != 2) {
        fprintf(stderr, "usage: bind_model CHECKPOINT\n");
        return 2;
    }
    expect(&b[n++], "model.embed_tokens.weight", 2, s_embed, g_model.embed, sizeof g_model.embed);
    expect(&b[n++], "model.norm.weight", 1, s_vec, g_model.norm, sizeof g_model.norm);
    for (l = 0; l < LAYERS; ++l) {
        block *blk = &g_model.layers[l];
        for (k = 0; k < PER_LAYER; ++k) snprintf(names[l][k], 64, "model.layers.%d.%s.weight", l, kinds[k]);
        expect(&b[n++], names[l][0], 2, s_down, blk->down, sizeof blk->down);
        expect(&b[n++], names[l][1], 2, s_up, blk->up, sizeof blk->up);
        expect(&b[n++], names[l][2], 2, s_qkv, blk->qkv, sizeof blk->qkv);
        expect(&b[n++], names[l][3], 1, s_vec, blk->norm, sizeof blk->norm);
    }
    memset(&desc, 0, sizeof desc);
    desc.paths = (const char *const *)&argv[1]; /* one path: a file, a folder or an index.json */
    desc.path_count = 1;
    if (mload_map_open(&desc, &m, &e) != MLOAD_OK || mload_map_bind(m, b, n, NULL, res, &rep, &e) != MLOAD_OK) {
        fprintf(stderr, "bind_model: %s: %s: %s\n", argv[1], mload_result_string(e.code), e.message);
        for (i = 0; m != NULL && i < n; ++i) /* the bind ran and wrote nothing: say what did not match */
            if (res[i].status != MLOAD_OK) fprintf(stderr, "  %s: %s\n", b[i].name, mload_result_string(res[i].status));
        mload_map_close(m); /* NULL when the open failed: ignored */
        return 1;
    }
    mload_map_close(m); /* the struct holds its own copy: the map can go */
    printf("bind_model: loaded %llu tensors (%llu bytes of F32) into the model struct\n",
           (unsigned long long)rep.loaded, (unsigned long long)sizeof g_model);
    return 0;
}
