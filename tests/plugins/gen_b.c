/* gen_b.c: generation B of the reload test's plugin (gen.h). */
#define GEN "B:"
#include "gen.h"
