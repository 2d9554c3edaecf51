/* Runs every test area and prints the summary line. */
#include "harness.h"

int th_failed_checks, th_skipped;
static int n_pass, n_fail, n_skip;

void th_run(const char *name, void (*fn)(void)) {
    th_failed_checks = 0;
    th_skipped = 0;
    fn();
    if (th_failed_checks) {
        n_fail++;
        fprintf(stderr, "FAIL %s\n", name);
    } else if (th_skipped) {
        n_skip++;
        fprintf(stderr, "skip %s\n", name);
    } else {
        n_pass++;
    }
}

void area_dtype(void);
void area_json(void);
void area_format(void);
void area_read(void);
void area_fixtures(void);
void area_cast(void);
void area_cast_kernel(void);
void area_map(void);
void area_converter(void);
void area_offload(void);
void area_torch(void);
void area_lora(void);

static const struct { const char *name; void (*fn)(void); } areas[] = {
    {"dtype", area_dtype}, {"json", area_json},       {"format", area_format}, {"read", area_read},
    {"fixtures", area_fixtures}, {"cast", area_cast}, {"cast_kernel", area_cast_kernel}, {"map", area_map}, {"converter", area_converter}, {"offload", area_offload}, {"torch", area_torch}, {"lora", area_lora},
};

/* unit [AREA...]: every area, or only those named */
int main(int argc, char **argv) {
    size_t a;
    int k;
    for (a = 0; a < sizeof areas / sizeof areas[0]; ++a) {
        int run = argc < 2;
        for (k = 1; k < argc; ++k) run |= strcmp(argv[k], areas[a].name) == 0;
        if (run) areas[a].fn();
    }
    printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}
