/* The one translation unit that compiles the implementation for the tests. */
#define MODELLOAD_IMPLEMENTATION
/* the converter's work bound, lowered so that a test reaches it in a moment */
#define MLOAD__CONVERT_WORK (1u << 20)
/* every free of the default allocator is checked against its allocation's
   size and alignment (an assertion fails on a mismatch) */
#define MLOAD__CHECK_SIZES 1
/* the writer's renames and syncs go through fault injectors (tests/util.c) */
int th_rename(const char *from, const char *to);
int th_fsync(int fd);
#define MLOAD__RENAME(from, to) th_rename(from, to)
#define MLOAD__FSYNC(fd) th_fsync(fd)
#include "../modelload.h"
