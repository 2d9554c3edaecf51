/* cuda_nogpu.c - the CUDA back end on a machine with the toolkit but maybe
   no GPU (make cuda-check): it compiles and links with MODELLOAD_CUDA, the
   header's PTX is present, and mload_device_create_cuda either gives a
   device (then a tiny round trip must work) or fails cleanly with the CUDA
   error's name in the message (cudaErrorInsufficientDriver without a
   driver, cudaErrorNoDevice without a GPU). Prints "N passed, N failed". */
#define MODELLOAD_IMPLEMENTATION
#include "modelload.h"
#include <stdio.h>
#include <string.h>

static int g_pass, g_fail;
#define EXPECT(c, what) do { if (c) g_pass++; else { g_fail++; printf("FAIL %s\n", what); } } while (0)

int main(void) {
    mload_device dev;
    mload_error e;
    mload_result r;
    size_t i, bytes = 0;
    for (i = 0; i < sizeof mload__cast_ptx / sizeof mload__cast_ptx[0]; ++i) bytes += strlen(mload__cast_ptx[i]);
    EXPECT(bytes > 1000 && strstr(mload__cast_ptx[0], "//") != NULL, "the PTX is embedded");
    memset(&e, 0, sizeof e);
    r = mload_device_create_cuda(0, &dev, &e);
    if (r != MLOAD_OK) {
        printf("no CUDA device here: %s (%s)\n", mload_result_string(r), e.message);
        EXPECT(r == MLOAD_ERR_DEVICE && strstr(e.message, "cudaError") != NULL, "a clean error naming the CUDA error");
        EXPECT(dev.alloc == NULL && dev.user == NULL, "no table on failure");
        EXPECT(mload_device_create_cuda(0, NULL, &e) == MLOAD_ERR_INVALID_ARGUMENT, "NULL out refused");
    } else {
        unsigned char in[64], out[64];
        void *p = NULL;
        uint64_t f = 0;
        for (i = 0; i < sizeof in; ++i) in[i] = (unsigned char)(i * 7);
        printf("a CUDA device: %s, conversion kernel %s\n", dev.name, dev.convert_async ? "loaded" : "not loaded (host conversion)");
        EXPECT(dev.alloc(dev.user, 64, 64, &p) == MLOAD_OK, "alloc");
        EXPECT(dev.upload(dev.user, p, in, 64, &f) == MLOAD_OK && dev.wait(dev.user, f) == MLOAD_OK, "upload");
        EXPECT(dev.download(dev.user, out, p, 64, &f) == MLOAD_OK && dev.wait(dev.user, f) == MLOAD_OK, "download");
        EXPECT(memcmp(in, out, 64) == 0, "round trip");
        dev.free(dev.user, p, 64);
        mload_device_destroy(&dev);
    }
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail != 0;
}
