/* The one translation unit that compiles the implementation for the tests. */
#define MODELLOAD_IMPLEMENTATION
/* the converter's work bound, lowered so that a test reaches it in a moment */
#define MLOAD__CONVERT_WORK (1u << 20)
#include "../modelload.h"
