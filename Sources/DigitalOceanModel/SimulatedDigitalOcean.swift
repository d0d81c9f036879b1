import Foundation
import Synchronization
import Timekeeping

/// The simulated DigitalOcean account: droplets, per-token rate limits, faults and a request log.
///
/// Transport-free: ``handle(_:)`` turns a request into an outcome, so tests can drive it directly,
/// and ``SimulatorServer`` puts it behind HTTP. Droplet lifecycles are computed from timestamps
/// (`created_at + boot time` → active), so nothing runs in the background.
public final class SimulatedDigitalOcean: Sendable {
    public struct Request: Sendable {
        public var method: String
        /// Path and query, as on the request line.
        public var uri: String
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public init(method: String, uri: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
            self.method = method
            self.uri = uri
            self.headers = headers
            self.body = body
        }

        func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        public func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    public enum Outcome: Sendable {
        /// Answer after `delay`.
        case respond(Response, delay: Duration)
        /// Close the connection after `delay` without answering (a lost response).
        case dropConnection(delay: Duration)
    }

    /// The simulator's time (``SimulatorConfiguration/clock``).
    public let clock: any DaemonClock
    let state: Mutex<SimulatedAccount>
    let persistence: Persistence?

    public init(configuration: SimulatorConfiguration = SimulatorConfiguration()) throws {
        var state = SimulatedAccount(configuration: configuration)
        if let directory = configuration.stateDirectory {
            let persistence = try Persistence(directory: directory)
            if let saved = try persistence.load() { state.restore(saved) }
            self.persistence = persistence
        } else {
            self.persistence = nil
        }
        self.state = Mutex(state)
        self.clock = configuration.clock
    }

    // MARK: - Requests

    /// Handles one HTTP request.
    public func handle(_ request: Request) -> Outcome {
        let now = clock.now()
        let (outcome, snapshot) = state.withLock { state -> (Outcome, PersistedState?) in
            let outcome = state.handle(request, now: now)
            let snapshot = state.dirty && persistence != nil ? state.persistable() : nil
            state.dirty = false
            return (outcome, snapshot)
        }
        if let snapshot { persistence?.save(snapshot) }
        return outcome
    }

    // MARK: - In-process API (the same as /_sim over HTTP)

    /// Every droplet ever made, with lifecycle times as of now (future times are not shown).
    public func droplets() -> [SimulatedDroplet] {
        let now = clock.now()
        return settled(now) { state in state.order.compactMap { state.droplets[$0] }.map { $0.materialized(at: now) } }
    }

    public func droplet(id: Int64) -> SimulatedDroplet? {
        let now = clock.now()
        return settled(now) { $0.droplets[id]?.materialized(at: now) }
    }

    /// The `/v2` requests received, oldest first (bounded by `requestLogLimit`).
    public func requestLog() -> [SimulatorRequestRecord] { state.withLock { $0.log } }

    /// Counts of `/v2` requests by method and route, including ones dropped from the log.
    public func requestCounts() -> [SimulatorRequestCount] {
        state.withLock { state in
            state.counts.map { SimulatorRequestCount(method: $0.key.method, route: $0.key.route, count: $0.value) }
                .sorted { ($0.route, $0.method) < ($1.route, $1.method) }
        }
    }

    public func requestCount(method: String, route: String) -> Int {
        state.withLock { $0.counts[RouteKey(method: method, route: route)] ?? 0 }
    }

    /// The newest `POST /v2/droplets` received, its body as the request log keeps it (`user_data`
    /// as its size only); nil when none is in the log.
    public func lastCreateRequest() -> SimulatorRequestRecord? { state.withLock { $0.lastCreateRequest } }

    // MARK: - SSH keys, VPCs, projects, tags (the same as /_sim over HTTP)

    public func sshKeys() -> [SimulatedSSHKey] { state.withLock { $0.resources.sshKeys } }

    /// Adds a key to the account; nil `id` and `fingerprint` are chosen. Throws when either is taken.
    @discardableResult
    public func addSSHKey(name: String, id: Int64? = nil, fingerprint: String? = nil) throws -> SimulatedSSHKey {
        var patch: [(String, JSONValue)] = [("name", .string(name))]
        if let id { patch.append(("id", .int(id))) }
        if let fingerprint { patch.append(("fingerprint", .string(fingerprint))) }
        return try state.withLock { try $0.addSSHKey(.object(patch)) }
    }

    public func vpcs() -> [SimulatedVPC] { state.withLock { $0.resources.vpcs } }

    /// Adds a (non-default) VPC in `region`; nil `id`: a new UUID.
    @discardableResult
    public func addVPC(region: String, name: String? = nil, id: String? = nil) throws -> SimulatedVPC {
        var patch: [(String, JSONValue)] = [("region", .string(region))]
        if let name { patch.append(("name", .string(name))) }
        if let id { patch.append(("id", .string(id))) }
        return try state.withLock { try $0.addVPC(.object(patch)) }
    }

    public func projects() -> [SimulatedProject] { state.withLock { $0.resources.projects } }

    /// Adds a project; nil `id`: a new UUID.
    @discardableResult
    public func addProject(name: String, id: String? = nil) throws -> SimulatedProject {
        var patch: [(String, JSONValue)] = [("name", .string(name))]
        if let id { patch.append(("id", .string(id))) }
        return try state.withLock { try $0.addProject(.object(patch)) }
    }

    /// The project a droplet is in (the default one unless assigned); nil for an unknown droplet.
    public func projectID(ofDroplet id: Int64) -> String? {
        state.withLock { state in
            guard let droplet = state.droplets[id] else { return nil }
            return droplet.projectID ?? state.resources.defaultProject.id
        }
    }

    /// Every tag made so far, in the order made.
    public func tags() -> [String] { state.withLock { $0.resources.tags } }

    public func clearRequestLog() {
        state.withLock {
            $0.log.removeAll()
            $0.counts.removeAll()
        }
    }

    /// Puts a droplet into the account without going through the API or its rate limits.
    @discardableResult
    public func inject(_ injection: SimulatorDropletInjection) throws -> SimulatedDroplet {
        let now = clock.now()
        let (droplet, snapshot) = try state.withLock { state -> (SimulatedDroplet, PersistedState?) in
            let droplet = try state.inject(injection, now: now)
            state.dirty = false
            return (droplet, persistence != nil ? state.persistable() : nil)
        }
        if let snapshot { persistence?.save(snapshot) }
        return droplet
    }

    public var faults: SimulatorFaults {
        get { state.withLock { $0.faults } }
    }

    public func setFaults(_ faults: SimulatorFaults) { state.withLock { $0.faults = faults } }

    public func updateFaults(_ change: (inout SimulatorFaults) -> Void) {
        state.withLock { change(&$0.faults) }
    }

    /// The bearer tokens accepted, as configured or last set.
    public var tokens: Set<String> { state.withLock { $0.tokens } }

    /// Replaces the accepted bearer tokens, for a token rotation: requests from now on are checked
    /// against `tokens`; each token keeps its own rate-limit windows.
    public func setTokens(_ tokens: Set<String>) { state.withLock { $0.tokens = tokens } }

    public var rateLimits: SimulatorRateLimits { state.withLock { $0.rateLimits } }

    public func setRateLimits(_ limits: SimulatorRateLimits) { state.withLock { $0.rateLimits = limits } }

    /// Forgets every token's counted requests.
    public func resetRateLimitUsage() { state.withLock { $0.windows.removeAll() } }

    // MARK: - Agents (played by ``SimulatedAgents``; the values stay in memory)

    /// Each droplet's stand-in agent (droplets created with `user_data` that carries the agent's
    /// values), in droplet id order. Never the key.
    public func agents() -> [SimulatedAgentStatus] {
        let now = clock.now()
        return settled(now) { $0.agentStatuses(now: now) }
    }

    public func agent(dropletID: Int64) -> SimulatedAgentStatus? {
        let now = clock.now()
        return settled(now) { $0.agentStatus(dropletID: dropletID, now: now) }
    }

    /// `heartbeats: false` keeps the agent connected without heartbeats; `connected: false`
    /// disconnects it until `connected: true`. Nil leaves a setting as it is. False when the
    /// droplet has no agent.
    @discardableResult
    public func controlAgent(dropletID: Int64, heartbeats: Bool? = nil, connected: Bool? = nil) -> Bool {
        state.withLock { state in
            guard state.agents[dropletID] != nil else { return false }
            if let heartbeats { state.agents[dropletID]?.status.heartbeatsEnabled = heartbeats }
            if let connected { state.agents[dropletID]?.status.connectEnabled = connected }
            return true
        }
    }

    /// The values a droplet's `user_data` carried, key included. In-process only, for tests that
    /// check where a key went (or did not); never served over HTTP, logged or saved.
    public func agentCredentials(dropletID: Int64) -> AgentCredentials? {
        state.withLock { $0.agents[dropletID]?.credentials }
    }

    public var agentTiming: SimulatorAgentTiming { state.withLock { $0.agentTiming } }

    public func setAgentTiming(_ timing: SimulatorAgentTiming) { state.withLock { $0.agentTiming = timing } }

    /// Droplets whose agent should be running now: active, no delete asked for, with agent values.
    package func agentDropletIDs() -> [Int64] {
        let now = clock.now()
        return settled(now) { state in
            state.agents.keys.sorted().filter { state.agentAssignment(dropletID: $0, now: now) != nil }
        }
    }

    package func agentAssignment(dropletID: Int64) -> AgentAssignment? {
        let now = clock.now()
        return settled(now) { $0.agentAssignment(dropletID: dropletID, now: now) }
    }

    package func updateAgentStatus(dropletID: Int64, _ change: (inout SimulatedAgentStatus) -> Void) {
        state.withLock { state in
            guard var status = state.agents[dropletID]?.status else { return }
            change(&status)
            state.agents[dropletID]?.status = status
        }
    }

    /// `body` on the account with every action that has ended by `now` settled.
    func settled<T>(_ now: Date, _ body: (inout SimulatedAccount) throws -> T) rethrows -> T {
        try state.withLock { state in
            state.settleActions(now: now)
            return try body(&state)
        }
    }

    /// Writes the state file now (it is also written after every change).
    public func saveState() {
        guard let persistence else { return }
        persistence.save(state.withLock { $0.persistable() })
    }
}

struct RouteKey: Hashable, Sendable {
    var method: String
    var route: String
}

/// Requests counted in one token's sliding windows.
struct TokenWindow: Sendable {
    var times: [Double] = []
    var hourHead = 0
    var minuteHead = 0

    mutating func prune(now: Double, limits: SimulatorRateLimits) {
        while hourHead < times.count, times[hourHead] <= now - limits.hourWindowSeconds { hourHead += 1 }
        minuteHead = max(minuteHead, hourHead)
        while minuteHead < times.count, times[minuteHead] <= now - limits.minuteWindowSeconds { minuteHead += 1 }
        if hourHead > 4096, hourHead * 2 > times.count {
            times.removeFirst(hourHead)
            minuteHead -= hourHead
            hourHead = 0
        }
    }

    var inHour: Int { times.count - hourHead }
    var inMinute: Int { times.count - minuteHead }
    var oldestInHour: Double? { hourHead < times.count ? times[hourHead] : nil }
    var oldestInMinute: Double? { minuteHead < times.count ? times[minuteHead] : nil }
}

struct PersistedState: Codable, Sendable {
    var droplets: [SimulatedDroplet]
    var nextDropletID: Int64
    var nextActionID: Int64
    var nextAddress: Int64
    /// Absent in files written before the simulator had actions.
    var actions: [SimulatedAction]?
    /// Absent in files written before the simulator had SSH keys, VPCs, projects and tags.
    var resources: SimulatedResources?
}

/// Atomic JSON snapshots in `<state-dir>/simulator-state.json`. Writes carry a version so a slow
/// older write never replaces a newer one.
final class Persistence: Sendable {
    let file: URL
    private let written = Mutex<Int>(0)
    private let version = Mutex<Int>(0)

    init(directory: String) throws {
        let url = URL(fileURLWithPath: directory, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        file = url.appendingPathComponent("simulator-state.json")
    }

    func load() throws -> PersistedState? {
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(PersistedState.self, from: Data(contentsOf: file))
    }

    func save(_ snapshot: PersistedState) {
        let myVersion = version.withLock { v in
            v += 1
            return v
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(snapshot) else { return }
        written.withLock { last in
            guard myVersion > last else { return }
            if (try? data.write(to: file, options: .atomic)) != nil { last = myVersion }
        }
    }
}

extension SimulatedDroplet {
    /// The record as an observer at `now` sees it: planned future transitions are hidden.
    func materialized(at now: Date) -> SimulatedDroplet {
        var copy = self
        if let activeAt = copy.activeAt, activeAt > now { copy.activeAt = nil }
        if let vanishesAt = copy.vanishesAt, vanishesAt <= now { copy.vanishedAt = vanishesAt }
        if let deletedAt = copy.deletedAt, deletedAt > now { copy.deletedAt = nil }
        if copy.activeAt == nil {
            copy.publicIPv4 = nil
            copy.privateIPv4 = nil
            copy.publicIPv6 = nil
        }
        return copy
    }
}
