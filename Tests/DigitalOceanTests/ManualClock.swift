import Foundation
import Synchronization
import Timekeeping

@testable import DigitalOcean

/// A clock that moves only when a test says so. Sleepers wake when `advance` passes their deadline.
final class ManualClock: RateBudgetClock {
    private struct Sleeper {
        var deadline: Date
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var sleepers: [UInt64: Sleeper] = [:]
        var cancelled: Set<UInt64> = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>
    private let start: Date

    init(start: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        self.start = start
        state = Mutex(State(now: start))
    }

    func now() -> Date { state.withLock { $0.now } }

    func uptime() -> Duration { .interval(now().timeIntervalSince(start)) }

    func sleep(for duration: Duration) async throws {
        try await sleep(until: now().adding(duration))
    }

    func sleep(until deadline: Date) async throws {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeWith: Result<Void, any Error>? = state.withLock { s in
                    if s.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    if deadline <= s.now { return .success(()) }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let resumeWith { continuation.resume(with: resumeWith) }
            }
        } onCancel: {
            let sleeper = state.withLock { s in
                if let sleeper = s.sleepers.removeValue(forKey: id) { return Optional(sleeper) }
                s.cancelled.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    func advance(by seconds: TimeInterval) {
        let due = state.withLock { s -> [Sleeper] in
            s.now = s.now.addingTimeInterval(seconds)
            let now = s.now
            let ids = s.sleepers.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { s.sleepers.removeValue(forKey: $0) }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    func advance(to date: Date) { advance(by: max(0, date.timeIntervalSince(now()))) }

    var sleeperCount: Int { state.withLock { $0.sleepers.count } }
    var earliestDeadline: Date? { state.withLock { $0.sleepers.values.map(\.deadline).min() } }
}
