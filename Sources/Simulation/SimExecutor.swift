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

/// splitmix64: small, fast, and the same sequence for the same seed on every machine.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { p > 0 && Double.random(in: 0..<1, using: &self) < p }

    mutating func uniform(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &self) }

    mutating func index(_ count: Int) -> Int { Int.random(in: 0..<count, using: &self) }
}
