import Dispatch
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Synchronization

/// A serial executor backed by one dedicated thread.
///
/// libpq calls block; running them here keeps them off Swift's cooperative pool, where a blocked
/// thread would starve unrelated tasks.
final class ThreadExecutor: SerialExecutor, Sendable {
    private struct State {
        var jobs: [UnownedJob] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)

    init(name: String) {
        startDetachedThread(named: name) { [self] in runLoop() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        state.withLock { $0.jobs.append(job) }
        wakeUp.signal()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread exit once the jobs already queued have run.
    func shutdown() {
        state.withLock { $0.stopping = true }
        wakeUp.signal()
    }

    private func runLoop() {
        while true {
            wakeUp.wait()
            let (jobs, stopping) = state.withLock { state in
                defer { state.jobs.removeAll(keepingCapacity: true) }
                return (state.jobs, state.stopping)
            }
            for job in jobs {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
            if stopping, state.withLock({ $0.jobs.isEmpty }) { return }
        }
    }
}
