/* The one translation unit that compiles the implementation for the tests. */
#define MODELLOAD_IMPLEMENTATION
#include "../modelload.h"
