/* gen_a.c: generation A of the reload test's plugin (gen.h). */
#define GEN "A:"
#include "gen.h"
