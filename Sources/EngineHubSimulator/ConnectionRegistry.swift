import Foundation
import NIOCore
import Synchronization

/// What the hub knows about one open agent connection (`GET /admin/agents`).
public struct AgentConnectionInfo: Sendable, Hashable, Codable {
    /// Numbers connections in the order the hub accepted them.
    public var connectionID: Int
    /// The id the agent claimed in its hello; nil before the hello.
    public var agentID: UUID?
    /// Whether the hub welcomed it.
    public var authenticated: Bool
    /// When the WebSocket was opened (the hub's clock).
    public var connectedSince: Date
    /// When the last heartbeat was recorded (the hub's clock); nil before the first.
    public var lastHeartbeatAt: Date?
    /// The agent's address and port as the hub sees them.
    public var remoteAddress: String

    enum CodingKeys: String, CodingKey {
        case connectionID = "connection_id"
        case agentID = "agent_id"
        case authenticated
        case connectedSince = "connected_since"
        case lastHeartbeatAt = "last_heartbeat_at"
        case remoteAddress = "remote_address"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(connectionID, forKey: .connectionID)
        // The protocol spells agent ids in lowercase; UUID's own encoding is uppercase.
        try container.encode(agentID?.lowercased, forKey: .agentID)
        try container.encode(authenticated, forKey: .authenticated)
        try container.encode(connectedSince, forKey: .connectedSince)
        try container.encode(lastHeartbeatAt, forKey: .lastHeartbeatAt)
        try container.encode(remoteAddress, forKey: .remoteAddress)
    }
}

/// Counters since the hub started, plus what is open now (`GET /admin/stats`).
public struct EngineHubStats: Sendable, Hashable, Codable {
    /// WebSocket connections open now (authenticated or not).
    public var connections = 0
    /// Of those, the ones the hub welcomed.
    public var authenticated = 0
    /// Hellos refused for an unknown agent, a missing or wrong key, or a database error.
    public var refused = 0
    /// Hellos refused because the operator dropped the agent (not in `refused`).
    public var droppedRefusals = 0
    /// Heartbeats written to the database.
    public var heartbeats = 0
    /// Hellos welcomed.
    public var welcomed = 0
    /// Connections closed with 4400: no hello in time, or a first message that was not one.
    public var helloFailures = 0
    /// Authenticated connections closed for sending nothing within the idle limit.
    public var idleClosures = 0
    /// Database errors while checking a key (each also a refusal) or writing a heartbeat.
    public var databaseErrors = 0
    /// WebSocket connections accepted since start.
    public var totalConnections = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case connections, authenticated, refused
        case droppedRefusals = "dropped_refusals"
        case heartbeats, welcomed
        case helloFailures = "hello_failures"
        case idleClosures = "idle_closures"
        case databaseErrors = "database_errors"
        case totalConnections = "total_connections"
    }
}

/// Something that happens to a connection from outside its own conversation.
enum SessionSignal: Sendable {
    case dropped
    case shuttingDown
}

/// Every open agent connection, the operator's drop windows and the counters. Shared by all
/// connections and the admin endpoints; one lock, held only for bookkeeping.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var info: AgentConnectionInfo
        var signal: @Sendable (SessionSignal) -> Void
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var nextID = 1
        var refuseUntil: [UUID: ContinuousClock.Instant] = [:]
        var stats = EngineHubStats()
        var shuttingDown = false
        /// Accepted channels not (yet) serving an agent: admin requests, upgrades in progress.
        var otherChannels: [ObjectIdentifier: any Channel] = [:]
    }

    private let state = Mutex(State())

    /// Registers a new agent connection; nil when the hub is shutting down.
    func open(remoteAddress: String, at date: Date, signal: @escaping @Sendable (SessionSignal) -> Void) -> Int? {
        state.withLock { state in
            guard !state.shuttingDown else { return nil }
            let id = state.nextID
            state.nextID += 1
            let info = AgentConnectionInfo(
                connectionID: id,
                agentID: nil,
                authenticated: false,
                connectedSince: date,
                lastHeartbeatAt: nil,
                remoteAddress: remoteAddress
            )
            state.entries[id] = Entry(info: info, signal: signal)
            state.stats.totalConnections += 1
            return id
        }
    }

    func closed(_ id: Int) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    /// The connection said hello as `agentID` (not yet authenticated).
    func claimed(_ id: Int, agentID: UUID) {
        state.withLock { $0.entries[id]?.info.agentID = agentID }
    }

    func welcomed(_ id: Int) {
        state.withLock { state in
            state.entries[id]?.info.authenticated = true
            state.stats.welcomed += 1
        }
    }

    func heartbeat(_ id: Int, at date: Date, recorded: Bool) {
        state.withLock { state in
            if recorded {
                state.entries[id]?.info.lastHeartbeatAt = date
                state.stats.heartbeats += 1
            } else {
                state.stats.databaseErrors += 1
            }
        }
    }

    func refused(_ kind: RefusalKind) {
        state.withLock { state in
            switch kind {
            case .droppedByOperator:
                state.stats.droppedRefusals += 1
            case .databaseUnavailable:
                state.stats.refused += 1
                state.stats.databaseErrors += 1
            case .unknownAgent, .noKeyStored, .wrongKey, .bootstrapKeyUsed, .wrongCredential:
                state.stats.refused += 1
            }
        }
    }

    func closedByHub(_ cause: CloseCause) {
        state.withLock { state in
            switch cause {
            case .helloTimeout, .notAHello: state.stats.helloFailures += 1
            case .idle: state.stats.idleClosures += 1
            case .dropped, .shuttingDown: break
            }
        }
    }

    /// Whether hellos from `agentID` are refused at `now` because of an operator drop.
    func isDropped(_ agentID: UUID, at now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            guard let until = state.refuseUntil[agentID] else { return false }
            if now < until { return true }
            state.refuseUntil[agentID] = nil
            return false
        }
    }

    /// Closes `agentID`'s connections and refuses its hellos for `duration`; returns how many
    /// connections were told to close.
    func drop(_ agentID: UUID, for duration: Duration, at now: ContinuousClock.Instant) -> Int {
        let signals = state.withLock { state in
            if duration > .zero {
                state.refuseUntil[agentID] = max(state.refuseUntil[agentID] ?? now, now + duration)
            }
            return state.entries.values.filter { $0.info.agentID == agentID }.map(\.signal)
        }
        for signal in signals { signal(.dropped) }
        return signals.count
    }

    /// Stops new registrations, tells every agent connection to close, and closes every other
    /// accepted channel.
    func beginShutdown() {
        let (signals, channels) = state.withLock { state in
            state.shuttingDown = true
            return (state.entries.values.map(\.signal), Array(state.otherChannels.values))
        }
        for signal in signals { signal(.shuttingDown) }
        for channel in channels { channel.close(promise: nil) }
    }

    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Remembers an accepted channel until it closes or starts serving an agent.
    func accepted(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        let closeNow = state.withLock { state in
            guard !state.shuttingDown else { return true }
            state.otherChannels[key] = channel
            return false
        }
        if closeNow {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in forget(channel) }
    }

    func forget(_ channel: any Channel) {
        _ = state.withLock { $0.otherChannels.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func agents() -> [AgentConnectionInfo] {
        state.withLock { state in state.entries.values.map(\.info).sorted { $0.connectionID < $1.connectionID } }
    }

    func stats() -> EngineHubStats {
        state.withLock { state in
            var stats = state.stats
            stats.connections = state.entries.count
            stats.authenticated = state.entries.values.count { $0.info.authenticated }
            return stats
        }
    }
}
