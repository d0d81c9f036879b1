#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Synchronization
import Timekeeping

/// Wakes the reconcile loop early: a NOTIFY for a row, a request for a full resync (the listener
/// reconnected and may have missed notifications), or shutdown. One waiter at a time (the loop).
public final class WakeSignal: Sendable {
    /// What arrived since the loop last looked.
    public struct Pending: Sendable, Hashable {
        public var rows: Set<UUID> = []
        /// Something other than a known row changed, or notifications may have been lost.
        public var resync = false
        public var isEmpty: Bool { rows.isEmpty && !resync }
    }

    private struct State {
        var pending = Pending()
        var shuttingDown = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextWaiterID: UInt64 = 0
        var hasNews: Bool { !pending.isEmpty || shuttingDown }
    }

    private let state = Mutex(State())
    private let clock: any DaemonClock

    public init(clock: any DaemonClock = SystemClock()) {
        self.clock = clock
    }

    /// A row changed (nil: something changed that a full pass must look at).
    public func signal(row: UUID?) {
        resumeWaiter { state in
            if let row { state.pending.rows.insert(row) } else { state.pending.resync = true }
        }
    }

    /// Ends every current and future wait at once.
    public func shutdown() {
        resumeWaiter { $0.shuttingDown = true }
    }

    public var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Takes what arrived, leaving nothing pending.
    public func take() -> Pending {
        state.withLock { state in
            defer { state.pending = Pending() }
            return state.pending
        }
    }

    /// Waits until something arrives, shutdown begins, or `duration` passes. Returns true when
    /// there is news (pending rows or shutdown).
    ///
    /// Throws `CancellationError` when the waiting task is cancelled, before or during the wait:
    /// a cancelled wait returns at once, and "no news" would send a caller round its loop again.
    public func wait(for duration: Duration) async throws(CancellationError) -> Bool {
        if Task.isCancelled { throw CancellationError() }
        if state.withLock({ $0.hasNews }) { return true }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForNews() }
            group.addTask { [clock] in try? await clock.sleep(for: duration) }
            await group.next()
            group.cancelAll()
        }
        if Task.isCancelled { throw CancellationError() }
        return state.withLock { $0.hasNews }
    }

    private func resumeWaiter(_ change: (inout State) -> Void) {
        let waiter = state.withLock { state in
            change(&state)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.continuation.resume()
    }

    /// Suspends until news arrives or the task is cancelled.
    private func waitForNews() async {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.hasNews || Task.isCancelled { return true }
                    state.waiter = (id, continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume()
        }
    }
}
