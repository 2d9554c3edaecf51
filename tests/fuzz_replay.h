/* The plain main() of the fuzz targets (without libFuzzer): replays every
   file given, or every file of every folder given, through
   LLVMFuzzerTestOneInput, then calls fuzz_done(). Exit 1 when nothing was
   replayed. Included by tests/fuzz_*.c. */
#ifndef MLOAD_FUZZ_REPLAY_H
#define MLOAD_FUZZ_REPLAY_H
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static void fuzz_done(void);

static int fuzz_replay_file(const char *path) {
    FILE *fp = fopen(path, "rb");
    long n;
    uint8_t *buf;
    if (!fp) { fprintf(stderr, "cannot open %s\n", path); return 0; }
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = (uint8_t *)malloc(n > 0 ? (size_t)n : 1);
    if (!buf || (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n)) { fclose(fp); free(buf); return 0; }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 1;
}

int main(int argc, char **argv) {
    int i, count = 0;
    for (i = 1; i < argc; ++i) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *dir = opendir(argv[i]);
            struct dirent *de;
            if (!dir) continue;
            while ((de = readdir(dir)) != NULL) {
                char p[4096];
                if (de->d_name[0] == '.') continue;
                snprintf(p, sizeof p, "%s/%s", argv[i], de->d_name);
                count += fuzz_replay_file(p);
            }
            closedir(dir);
        } else {
            count += fuzz_replay_file(argv[i]);
        }
    }
    fuzz_done();
    printf("replayed %d inputs\n", count);
    return count > 0 ? 0 : 1;
}
#endif
