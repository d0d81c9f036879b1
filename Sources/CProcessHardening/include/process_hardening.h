#ifndef CITRUS_PROCESS_HARDENING_H
#define CITRUS_PROCESS_HARDENING_H

/// Keeps this process's memory (the DigitalOcean token, agents' keys on their way into create
/// requests) out of core dumps and away from same-user debuggers: RLIMIT_CORE 0, then
/// PR_SET_DUMPABLE 0. Returns 0, or -1 with errno set.
int citrus_disable_core_dumps(void);

#endif
