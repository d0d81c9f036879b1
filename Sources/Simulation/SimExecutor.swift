import Foundation
import Synchronization

/// The executor one simulated process runs on. Jobs queue here and run only when the world picks
/// them, one at a time, on the world's thread: the seed decides every interleaving.
///
/// A process's tasks prefer this executor (`Task(executorPreference:)`), and so do their child
/// tasks and the default actors they call into (SE-0417), so nothing of the process runs anywhere
/// else. A crashed process's jobs are held back until teardown; a frozen one's until it thaws.
final class ProcessExecutor: TaskExecutor, @unchecked Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    /// Frozen (SIGSTOP, a paused VM): jobs wait until it thaws.
    var frozen = false
    /// Crashed: its jobs never run again (until teardown releases them).
    var dead = false

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
    }

    var runnable: Bool { !frozen && !dead && jobs.withLock { !$0.isEmpty } }
    var pending: Int { jobs.withLock { $0.count } }

    /// Runs the job at `pick(count)` of the waiting ones. Any ready job may run next, as on a
    /// thread pool: the order within a process is the seed's choice too.
    func runOne(pick: (Int) -> Int) {
        let job = jobs.withLock { jobs -> UnownedJob? in
            guard !jobs.isEmpty else { return nil }
            return jobs.remove(at: pick(jobs.count))
        }
        job?.runSynchronously(on: asUnownedTaskExecutor())
    }
}
