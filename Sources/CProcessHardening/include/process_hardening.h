#ifndef CITRUS_PROCESS_HARDENING_H
#define CITRUS_PROCESS_HARDENING_H

/// Keeps this process's memory (the DigitalOcean token, agents' keys on their way into create
/// requests) out of core dumps and away from same-user debuggers: PR_SET_DUMPABLE 0, then
/// RLIMIT_CORE 0 where allowed. Returns 0, or -1 with errno set when the process stays dumpable.
int citrus_disable_core_dumps(void);

#endif
