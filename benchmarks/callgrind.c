/* callgrind's client requests, for Python through ctypes: the macros are inline instruction
   sequences that valgrind recognises, so they need a few lines of C. Outside valgrind they do
   nothing. Built by benchmarks/cost.py with the machine's gcc and valgrind headers. */
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
