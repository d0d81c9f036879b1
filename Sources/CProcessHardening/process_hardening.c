#include "process_hardening.h"

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
