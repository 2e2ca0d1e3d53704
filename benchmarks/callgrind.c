/* callgrind's client requests, for Python through ctypes: the macros are inline instruction
   sequences that valgrind recognises, so they need a few lines of C. Outside valgrind they do
   nothing. Built by benchmarks/cost.py with the machine's gcc and valgrind headers. */
#include <malloc.h>
#include <stdlib.h>
#include <valgrind/callgrind.h>

int cg_running_on_valgrind(void) { return RUNNING_ON_VALGRIND; }

void cg_start(void) {
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
}

void cg_stop(const char *label) {
    CALLGRIND_STOP_INSTRUMENTATION;
    CALLGRIND_DUMP_STATS_AT(label);
}

/* Leaves glibc's heap in the same state whatever ran before it. A request larger than any free
   chunk makes malloc sort the chunks waiting in its unsorted bin into the size bins (and find none
   that fits), at most 10,000 a request (MAX_ITERS in glibc's malloc.c), hence the repeats. Without
   it the first large request inside a counted fit did the sorting, for as many chunks as the
   imports and compiles before it had freed: numba at d = 5 float32, 4,700 chunks and 315,000
   instructions in one call of _int_malloc, a different number in every environment. */
void cg_settle_heap(void) {
    malloc_trim(0);
    for (int i = 0; i < 64; i++) {
        void *volatile chunk = malloc((size_t)1 << 30);  /* volatile: gcc drops a free(malloc()) */
        free(chunk);
    }
}
