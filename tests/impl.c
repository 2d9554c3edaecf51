/* The one translation unit that compiles the implementation for the tests. */
#define MODELLOAD_IMPLEMENTATION
/* the converter's work bound, lowered so that a test reaches it in a moment */
#define MLOAD__CONVERT_WORK (1u << 20)
/* every free of the default allocator is checked against its allocation's
   size and alignment (an assertion fails on a mismatch) */
#define MLOAD__CHECK_SIZES 1
#include "../modelload.h"
