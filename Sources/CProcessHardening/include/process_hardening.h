#ifndef CITRUS_PROCESS_HARDENING_H
#define CITRUS_PROCESS_HARDENING_H

/// Keeps this process's memory (the DigitalOcean token, agents' keys on their way into create
/// requests) out of core dumps and away from same-user debuggers: PR_SET_DUMPABLE 0, then
/// RLIMIT_CORE 0 where allowed. Returns 0, or -1 with errno set when the process stays dumpable.
int citrus_disable_core_dumps(void);

/// Sets glibc's allocator for a long-running daemon whose passes make and free large arrays: a
/// fixed mmap threshold (blocks of 128 KiB and more are mapped, and unmapped when freed) and at
/// most two arenas. Returns 0, or -1 when glibc refused a setting.
int citrus_tune_allocator(void);

/// Gives memory freed since the last call back to the system (glibc's malloc_trim).
void citrus_release_free_memory(void);

#endif
