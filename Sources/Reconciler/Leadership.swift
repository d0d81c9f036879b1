#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging
import Synchronization
import Timekeeping

/// The right to act, as the loop sees it.
public protocol LeadershipLease: Sendable {
    /// Whether this replica holds the lock (its session has not been seen to end).
    var isLeading: Bool { get }
    /// Whether this replica may act now: it leads, and it confirmed its session within the lease.
    /// Asked right before every row write and DigitalOcean request that changes something.
    var mayAct: Bool { get }
    /// One attempt to lead. Throws when the database cannot be reached; false when another leads.
    func campaign() async throws -> Bool
    /// Confirms the lease with one round trip on the leading session. False when this replica does
    /// not lead, or the session failed (leadership then ends at once).
    func renew() async -> Bool
    /// Gives leadership up (graceful shutdown), so a standby can take over at once.
    func resign() async
    /// How many times this replica has taken leadership: a term begun and ended between two looks
    /// at `isLeading` still shows here.
    var term: Int { get }
    /// How often the leader confirms its lease.
    var renewEvery: Duration { get }
}

/// A database session that can hold the leadership lock: Postgres in the daemon, an in-memory one
/// in the deterministic simulation.
public protocol LeaderSession: AnyObject, Sendable {
    /// Tries the session-level lock without waiting.
    func tryLock(_ key: Int64) async throws -> Bool
    /// Releases the lock (best effort: the session's end releases it too).
    func unlock(_ key: Int64) async
    /// One round trip; throws when the session is gone.
    func ping() async throws
    /// Whether the session is usable as far as the client knows (no round trip).
    var isOpen: Bool { get async }
    func close() async
    /// Whether `error` means this session ended (and the lock with it).
    func isSessionLoss(_ error: any Error) -> Bool
}

/// Leadership among replicas: a lock held by one database session, and a lease on top of it.
///
/// - The leader holds a session-level lock, and every row write goes through that very session,
///   so a replica whose session ended cannot write a row.
/// - The lock alone does not notice a leader that stops without dying (a frozen process, a paused
///   VM, a partition): the server keeps such a session for hours. So leadership is also a lease.
///   The session is opened with `serverSilenceLimit` (the server ends it once it has been silent
///   that long: `idle_session_timeout` and friends), the leader confirms it every `renewEvery`,
///   and it may act only for `leaseDuration` after the start of its last confirmed round trip.
///   With `leaseDuration` < `serverSilenceLimit`, a silent leader has stopped acting before the
///   server frees the lock for a standby, and a resumed one finds its lease expired and sends
///   nothing.
/// - A standby campaigns by trying the lock, never waiting inside the database, so its loop stays
///   responsive to shutdown and keeps the watchdog fed.
public final class Leadership<Session: LeaderSession>: LeadershipLease {
    public struct Configuration: Sendable {
        /// How long after the start of its last confirmed round trip the leader may still act.
        public var leaseDuration: Duration = .seconds(10)
        /// How often the leader confirms its lease.
        public var renewEvery: Duration = .milliseconds(2500)
        /// How long the server keeps a silent session (set on every session this replica opens).
        public var serverSilenceLimit: Duration = .seconds(15)
        /// How long a statement of the leading session waits for a lock another transaction holds
        /// (a row's agent, a table a migration holds; a locked row itself is skipped at once)
        /// before it gives up: a write then leaves its row to the next pass, a read fails the
        /// pass, and neither holds up the lease's round trips queued behind it for long.
        public var lockTimeout: Duration = .seconds(2)
        /// The longest any statement of the leading session runs. Below the lease, so a statement
        /// stuck on the server ends in time: when the leader is frozen, its session then falls
        /// silent and the server ends it after `serverSilenceLimit`, so a standby takes over within
        /// `statementTimeout + serverSilenceLimit` (plus its poll) even then: 8 + 15 s < 30 s.
        public var statementTimeout: Duration = .seconds(8)

        public init() {}
    }

    /// The advisory lock key: "citrusrc" as a 64-bit number, fixed forever.
    public static var defaultLockKey: Int64 { 0x6369_7472_7573_7263 }

    private struct State {
        var session: Session?
        var leading = false
        var term = 0
        /// Uptime at the start of the last round trip that confirmed the lock.
        var confirmedAt: Duration?
    }

    public let configuration: Configuration
    private let state = Mutex(State())
    private let open: @Sendable () async throws -> Session
    private let lockKey: Int64
    private let clock: any DaemonClock
    private let logger: Logger

    /// - Parameter open: opens a new session, told to end itself after `serverSilenceLimit` of
    ///   silence.
    public init(
        configuration: Configuration = Configuration(),
        lockKey: Int64 = defaultLockKey,
        clock: any DaemonClock,
        logger: Logger,
        open: @escaping @Sendable () async throws -> Session
    ) {
        self.configuration = configuration
        self.open = open
        self.lockKey = lockKey
        self.clock = clock
        self.logger = logger
    }

    public var isLeading: Bool { state.withLock { $0.leading } }

    public var mayAct: Bool {
        let now = clock.uptime()
        return state.withLock { state in
            guard state.leading, let confirmedAt = state.confirmedAt else { return false }
            return now - confirmedAt < configuration.leaseDuration
        }
    }

    /// The leading session, for row writes; nil when not leading.
    public var leadingSession: Session? {
        state.withLock { $0.leading ? $0.session : nil }
    }

    public func campaign() async throws -> Bool {
        if isLeading { return true }
        let session: Session
        if let existing = state.withLock({ $0.session }), await existing.isOpen {
            session = existing
        } else {
            session = try await open()
            state.withLock { $0.session = session }
        }
        let started = clock.uptime()
        do {
            guard try await session.tryLock(lockKey) else { return false }
        } catch {
            sessionFailed(error, on: session)
            throw error
        }
        // The session may have been given up meanwhile (an error of it reported by a write).
        return state.withLock { state in
            guard state.session === session else { return false }
            state.leading = true
            state.term += 1
            state.confirmedAt = started
            return true
        }
    }

    public func renew() async -> Bool {
        guard let session = leadingSession else { return false }
        let started = clock.uptime()
        do {
            try await session.ping()
        } catch {
            sessionFailed(error, on: session)
            return false
        }
        return state.withLock { state in
            guard state.leading, state.session === session else { return false }
            state.confirmedAt = max(state.confirmedAt ?? started, started)
            return true
        }
    }

    /// Called with any error of a statement on `session`; ends leadership when that session is
    /// gone. An error of an earlier session (a write still in flight when it ended) changes nothing:
    /// it must not throw away the session a campaign has opened since.
    public func sessionFailed(_ error: any Error, on session: Session) {
        let wasLeading = state.withLock { state -> Bool in
            guard let current = state.session, current === session, session.isSessionLoss(error) else { return false }
            defer {
                state.leading = false
                state.session = nil
                state.confirmedAt = nil
            }
            return state.leading
        }
        if wasLeading {
            logger.critical(
                "lost the database session that held leadership; no DigitalOcean request is sent until leadership is regained"
            )
        }
    }

    public var term: Int { state.withLock { $0.term } }

    public var renewEvery: Duration { configuration.renewEvery }

    public func resign() async {
        let (session, wasLeading) = state.withLock { state -> (Session?, Bool) in
            defer {
                state.leading = false
                state.session = nil
                state.confirmedAt = nil
            }
            return (state.session, state.leading)
        }
        guard let session else { return }
        // A standby holds no lock; asking to release one only earns a server warning.
        if wasLeading { await session.unlock(lockKey) }
        await session.close()
    }
}
