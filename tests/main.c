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
void area_map(void);
void area_convert(void);

int main(void) {
    area_dtype();
    area_json();
    area_format();
    area_read();
    area_fixtures();
    area_convert();
    area_map();
    printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}
