import Foundation
import Synchronization
import Timekeeping

/// Virtual time: a heap of timers, and sleeping on it. Time moves only when no process has
/// anything left to run, and then straight to the next timer. It is kept in whole nanoseconds, so
/// that a sleep always ends at or after its deadline and never a rounding error before it.
final class VirtualTime: @unchecked Sendable {
    private struct Timer {
        var deadline: Int64
        var sequence: UInt64
        var fire: () -> Void
    }

    /// Nanoseconds since `origin`.
    private(set) var elapsed: Int64 = 0
    let origin: Date
    private var heap: [Timer] = []
    private var cancelled: Set<UInt64> = []
    private var nextSequence: UInt64 = 0
    /// Set during teardown: every sleep ends at once with `CancellationError`.
    var draining = false

    init(origin: Date) {
        self.origin = origin
    }

    /// The world's true time, which is also the database's clock.
    var now: Date { origin.addingTimeInterval(Double(elapsed) / 1e9) }

    /// A wall-clock instant as nanoseconds since `origin`, rounded up.
    func nanoseconds(at date: Date) -> Int64 {
        let seconds = date.timeIntervalSince(origin)
        guard seconds.isFinite else { return seconds > 0 ? .max / 2 : 0 }
        return Int64((min(seconds, 9e9) * 1e9).rounded(.up))
    }

    /// Runs `fire` on the world's thread once `deadline` has come. Returns a handle for `cancel`.
    @discardableResult
    func schedule(atNanoseconds deadline: Int64, _ fire: @escaping () -> Void) -> UInt64 {
        nextSequence += 1
        push(Timer(deadline: max(deadline, elapsed), sequence: nextSequence, fire: fire))
        return nextSequence
    }

    @discardableResult
    func schedule(at deadline: Date, _ fire: @escaping () -> Void) -> UInt64 {
        schedule(atNanoseconds: nanoseconds(at: deadline), fire)
    }

    func schedule(after delay: TimeInterval, _ fire: @escaping () -> Void) {
        schedule(atNanoseconds: elapsed + Int64(max(0, delay) * 1e9), fire)
    }

    func cancel(_ handle: UInt64) { cancelled.insert(handle) }

    /// Moves time to the next timer and fires every timer due then. False when there is none
    /// before `limit`.
    func advance(limit: Date) -> Bool {
        while let first = heap.first, cancelled.contains(first.sequence) {
            cancelled.remove(first.sequence)
            _ = pop()
        }
        guard let first = heap.first, draining || first.deadline <= nanoseconds(at: limit) else { return false }
        elapsed = max(elapsed, first.deadline)
        while let next = heap.first, next.deadline <= elapsed {
            let timer = pop()
            if cancelled.remove(timer.sequence) == nil { timer.fire() }
        }
        return true
    }

    func sleep(until deadline: Date) async throws {
        try await sleep(untilNanoseconds: nanoseconds(at: deadline))
    }

    /// Suspends the calling task until `deadline`. Cancellation ends it early.
    func sleep(untilNanoseconds deadline: Int64) async throws {
        if draining { throw CancellationError() }
        let resumer = Resumer()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                resumer.set(continuation)
                if deadline <= elapsed {
                    resumer.resume(with: .success(()))
                    return
                }
                let handle = schedule(atNanoseconds: deadline) { resumer.resume(with: .success(())) }
                resumer.onCancel = { [weak self] in self?.cancel(handle) }
            }
        } onCancel: {
            resumer.resume(with: .failure(CancellationError()))
        }
    }

    // MARK: Heap

    private func less(_ a: Timer, _ b: Timer) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
    }

    private func push(_ timer: Timer) {
        heap.append(timer)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private func pop() -> Timer {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count, less(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count, less(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}

/// Resumes a continuation exactly once, whoever comes first: the timer or cancellation.
final class Resumer: @unchecked Sendable {
    private struct State {
        var continuation: CheckedContinuation<Void, any Error>?
        var early: Result<Void, any Error>?
        var done = false
    }

    private let state = Mutex(State())
    var onCancel: (() -> Void)?

    func set(_ continuation: CheckedContinuation<Void, any Error>) {
        let early = state.withLock { state -> Result<Void, any Error>? in
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<Void, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard !state.done else { return nil }
            state.done = true
            guard let continuation = state.continuation else {
                state.early = result
                return nil
            }
            state.continuation = nil
            return continuation
        }
        if case .failure = result { onCancel?() }
        continuation?.resume(with: result)
    }
}

/// A process's view of time: the world's, seen through a clock that may be off by `skew`.
struct ProcessClock: DaemonClock {
    let time: VirtualTime
    /// How far this process's wall clock is ahead of the truth.
    let skew: TimeInterval

    func now() -> Date { time.now.addingTimeInterval(skew) }

    func uptime() -> Duration { .nanoseconds(time.elapsed) }

    func sleep(until deadline: Date) async throws {
        // Rounded up to the next microsecond of the process's own clock: a caller that wakes
        // finds its clock at or past the deadline, or it would sleep again without time moving.
        try await time.sleep(untilNanoseconds: time.nanoseconds(at: deadline.addingTimeInterval(-skew)) + 1000)
    }

    func sleep(for duration: Duration) async throws {
        // Rounded up to a whole nanosecond: a sleep shorter than one must still move time.
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds * 1_000_000_000 + (attoseconds + 999_999_999) / 1_000_000_000
        try await time.sleep(untilNanoseconds: time.elapsed + max(0, nanoseconds))
    }
}
