/* Writes a small, deterministic LLM-shaped safetensors checkpoint the way the
   official writer does (header padded with spaces to a multiple of 8, tensors
   contiguous, sorted by dtype size then name), for the demo and CLI tests.

   usage: gen_checkpoint OUT.safetensors [LAYERS] [HIDDEN] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "st_write.h"

typedef struct spec { char name[96]; const char *dtype; unsigned esize; unsigned long d0, d1; int rank; } spec;

int main(int argc, char **argv) {
    int layers = argc > 2 ? atoi(argv[2]) : 4, l, i, n = 0;
    unsigned long hidden = argc > 3 ? strtoul(argv[3], NULL, 10) : 64, off = 0, h;
    spec *s;
    st_buf b = ST_BUF_INIT;
    FILE *fp;
    if (argc < 2 || layers < 0 || layers > 1000 || hidden == 0 || hidden > 1u << 14) {
        fprintf(stderr, "usage: gen_checkpoint OUT.safetensors [LAYERS] [HIDDEN]\n");
        return 2;
    }
    s = (spec *)calloc((size_t)layers * 4 + 3, sizeof(spec));
    if (!s) return 1;
    /* BF16 weights first (size 2 sorts after 4 in the official order, but
       any contiguous order is valid), F32 norms after */
    snprintf(s[n].name, 96, "model.embed_tokens.weight"); s[n].dtype = "BF16"; s[n].esize = 2; s[n].d0 = 256; s[n].d1 = hidden; s[n].rank = 2; n++;
    for (l = 0; l < layers; ++l) {
        snprintf(s[n].name, 96, "model.layers.%d.mlp.down_proj.weight", l); s[n].dtype = "BF16"; s[n].esize = 2; s[n].d0 = hidden; s[n].d1 = 2 * hidden; s[n].rank = 2; n++;
        snprintf(s[n].name, 96, "model.layers.%d.mlp.up_proj.weight", l); s[n].dtype = "BF16"; s[n].esize = 2; s[n].d0 = 2 * hidden; s[n].d1 = hidden; s[n].rank = 2; n++;
        snprintf(s[n].name, 96, "model.layers.%d.self_attn.qkv_proj.weight", l); s[n].dtype = "BF16"; s[n].esize = 2; s[n].d0 = 3 * hidden; s[n].d1 = hidden; s[n].rank = 2; n++;
        snprintf(s[n].name, 96, "model.layers.%d.input_layernorm.weight", l); s[n].dtype = "F32"; s[n].esize = 4; s[n].d0 = hidden; s[n].rank = 1; n++;
    }
    snprintf(s[n].name, 96, "model.norm.weight"); s[n].dtype = "F32"; s[n].esize = 4; s[n].d0 = hidden; s[n].rank = 1; n++;
    st_begin(&b);
    st_printf(&b, "{\"__metadata__\":{\"format\":\"pt\",\"generator\":\"gen_checkpoint\"}");
    for (i = 0; i < n; ++i) {
        uint64_t shape[2];
        unsigned long bytes = s[i].d0 * (s[i].rank == 2 ? s[i].d1 : 1) * s[i].esize;
        shape[0] = s[i].d0;
        shape[1] = s[i].d1;
        st_tensor(&b, s[i].name, s[i].dtype, (unsigned)s[i].rank, shape, off, off + bytes);
        off += bytes;
    }
    st_printf(&b, "}");
    st_end_header(&b, ST_PAD8);
    if (b.failed) return 1;
    fp = fopen(argv[1], "wb");
    if (!fp) { perror(argv[1]); return 1; }
    if (st_write_file(fp, &b) != 0) { perror(argv[1]); fclose(fp); return 1; }
    for (h = 0; h < off; ++h) fputc((int)((h * 2654435761u) >> 24) & 0xFF, fp); /* deterministic bytes */
    if (fclose(fp) != 0) { perror(argv[1]); return 1; }
    printf("wrote %s: %d tensors, %lu data bytes\n", argv[1], n, off);
    st_free(&b);
    free(s);
    return 0;
}
