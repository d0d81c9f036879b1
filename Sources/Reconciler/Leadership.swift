import Foundation
import Logging
import Postgres
import Synchronization

/// Leadership among replicas: the leader holds a session-level advisory lock, and every row write
/// goes through the very session that holds it. When that session ends (the server restarted, the
/// network broke, the process died) the lock is gone, and so is this replica's right to act:
/// `isLeading` turns false at the first sign, before any further DigitalOcean request.
///
/// A standby campaigns by opening a session and trying the lock; it never waits inside the database,
/// so the loop stays responsive to shutdown and keeps the watchdog fed.
public final class Leadership: Sendable {
    /// The advisory lock key: "citrus-reconciler" hashed once, fixed forever.
    public static let defaultLockKey: Int64 = 0x6369_7472_7573_7263  // "citrusrc"

    private struct State {
        var session: PostgresConnection?
        var leading = false
    }

    private let state = Mutex(State())
    private let connectionString: String?
    private let lockKey: Int64
    private let logger: Logger

    public init(connectionString: String?, lockKey: Int64 = Leadership.defaultLockKey, logger: Logger) {
        self.connectionString = connectionString
        self.lockKey = lockKey
        self.logger = logger
    }

    /// Whether this replica currently leads. False from the moment its session is known lost.
    public var isLeading: Bool { state.withLock { $0.leading } }

    /// The leading session, for row writes; nil when not leading.
    public var leadingSession: PostgresConnection? {
        state.withLock { $0.leading ? $0.session : nil }
    }

    /// One attempt to lead: (re)open a session if needed and try the lock. Throws when the database
    /// cannot be reached; returns false when another replica holds the lock.
    public func campaign() async throws -> Bool {
        if isLeading { return true }
        let session: PostgresConnection
        if let existing = state.withLock({ $0.session }), await existing.isConnected {
            session = existing
        } else {
            session = try await PostgresConnection.connect(connectionString, logger: logger)
            state.withLock { $0.session = session }
        }
        do {
            guard try await session.tryAdvisoryLock(lockKey) else { return false }
        } catch {
            sessionFailed(error)
            throw error
        }
        state.withLock { $0.leading = true }
        return true
    }

    /// Called with any error from a row write or read: when it means the session ended, leadership
    /// ends with it at once.
    public func sessionFailed(_ error: any Error) {
        guard let error = error as? PostgresError, error.code == .connectionLost || error.code == .connectionFailed else { return }
        let wasLeading = state.withLock { state in
            defer {
                state.leading = false
                state.session = nil
            }
            return state.leading
        }
        if wasLeading {
            logger.critical("lost the database session that held leadership; no DigitalOcean request is sent until leadership is regained")
        }
    }

    /// Gives the lock up (graceful shutdown), so a standby can take over at once.
    public func resign() async {
        let (session, wasLeading) = state.withLock { state -> (PostgresConnection?, Bool) in
            defer {
                state.leading = false
                state.session = nil
            }
            return (state.session, state.leading)
        }
        guard let session else { return }
        // A standby holds no lock; asking to release one only earns a server warning.
        if wasLeading { _ = try? await session.advisoryUnlock(lockKey) }
        await session.close()
    }
}
