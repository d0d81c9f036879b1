import Foundation
import Synchronization
import Timekeeping

/// A clock that moves only when a test says so: sleepers wake when ``advance(by:)`` passes their
/// deadline, or throw `CancellationError` at once when their task is cancelled. Tests wait for a
/// service to be asleep with ``waitForSleeps(_:)`` instead of sleeping themselves.
///
/// Wall time and uptime start together and move together, by ``advance(by:)`` only. Each sleep
/// keeps its deadline as it was given, as `DaemonClock` says: `sleep(for:)` on uptime,
/// `sleep(until:)` on the wall clock (compared as dates, so a deadline computed from `now()` wakes
/// exactly when `now()` reaches it, with no rounding through a duration in between).
public final class ManualClock: DaemonClock {
    private enum Deadline {
        case uptime(Duration)
        case wallClock(Date)
    }

    private struct Sleeper {
        var deadline: Deadline
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var uptime: Duration = .zero
        var sleepers: [UInt64: Sleeper] = [:]
        /// Sleeps cancelled before they were registered.
        var cancelled: Set<UInt64> = []
        var nextID: UInt64 = 0
        /// Every sleep begun so far (cancelled or not).
        var sleepsBegun = 0
        var watchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())
    private let start: Date

    public init(start: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        self.start = start
    }

    public func now() -> Date { start.adding(uptime()) }

    public func uptime() -> Duration { state.withLock { $0.uptime } }

    public func sleep(until deadline: Date) async throws {
        try await sleep(untilDeadline: { _ in .wallClock(deadline) })
    }

    public func sleep(for duration: Duration) async throws {
        try await sleep(untilDeadline: { uptime in .uptime(uptime + duration) })
    }

    /// Sleeps until `deadline`, made from the uptime at which the sleep begins.
    private func sleep(untilDeadline deadline: (_ uptime: Duration) -> Deadline) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (outcome, watchers) = state.withLock {
                    state -> (Result<Void, any Error>?, [CheckedContinuation<Void, Never>]) in
                    state.sleepsBegun += 1
                    let woken = Self.takeWatchers(&state)
                    if state.cancelled.remove(id) != nil { return (.failure(CancellationError()), woken) }
                    let deadline = deadline(state.uptime)
                    if self.hasCome(deadline, uptime: state.uptime) { return (.success(()), woken) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return (nil, woken)
                }
                for watcher in watchers { watcher.resume() }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                if let sleeper = state.sleepers.removeValue(forKey: id) { return sleeper }
                state.cancelled.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.uptime += duration
            let uptime = state.uptime
            let ids = state.sleepers.filter { self.hasCome($0.value.deadline, uptime: uptime) }.map(\.key)
            return ids.compactMap { state.sleepers.removeValue(forKey: $0) }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    private func hasCome(_ deadline: Deadline, uptime: Duration) -> Bool {
        switch deadline {
        case .uptime(let deadline): deadline <= uptime
        case .wallClock(let deadline): deadline <= start.adding(uptime)
        }
    }

    /// Sleepers waiting now.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Sleeps begun so far, cancelled or not: a loop that spins on a cancelled sleep shows here.
    public var sleepsBegun: Int { state.withLock { $0.sleepsBegun } }

    /// Returns once `count` sleeps in all have begun (the service under test is waiting).
    public func waitForSleeps(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.sleepsBegun >= count { return true }
                state.watchers.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    private static func takeWatchers(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        let begun = state.sleepsBegun
        let ready = state.watchers.filter { $0.count <= begun }.map(\.continuation)
        state.watchers.removeAll { $0.count <= begun }
        return ready
    }
}
