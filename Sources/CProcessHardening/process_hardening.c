#include "process_hardening.h"

#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int citrus_disable_core_dumps(void) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return -1;
    /* Best effort: the unit's seccomp filter forbids setrlimit (@resources), and sets LimitCORE=0
       itself. Non-dumpable already means no core is written. */
    struct rlimit none = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &none);
    return 0;
}

/* Left to itself, glibc raises its mmap threshold to the size of each mapped block freed, up to
   32 MiB: after the first pass over a large fleet, its arrays of rows and droplets come from the
   heap, and stay resident once freed. A fixed threshold turns that off. Threads allocate from
   arenas of their own, and memory freed in one arena serves only it: two are enough for a process
   that does one thing at a time. */
int citrus_tune_allocator(void) {
    int mapped = mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    int arenas = mallopt(M_ARENA_MAX, 2);
    return mapped == 1 && arenas == 1 ? 0 : -1;
}

void citrus_release_free_memory(void) {
    (void)malloc_trim(0);
}
