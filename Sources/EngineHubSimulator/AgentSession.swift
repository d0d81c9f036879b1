import Foundation

/// Why a hello was refused; decides the counter and the reason the agent reads.
enum RefusalKind: Equatable, Sendable {
    case unknownAgent, noKeyStored, wrongKey, bootstrapKeyUsed, wrongCredential, databaseUnavailable,
        droppedByOperator

    var reason: String {
        switch self {
        case .unknownAgent: "unknown agent"
        case .noKeyStored: "the agent has no key"
        case .wrongKey: "wrong key"
        case .bootstrapKeyUsed:
            "the bootstrap key has been used; present the credential the hub gave at the first connection"
        case .wrongCredential: "wrong credential"
        case .databaseUnavailable: "the hub cannot check keys right now (database unavailable); try again"
        case .droppedByOperator: "dropped by the hub operator"
        }
    }
}

/// What checking a hello against the database (and the operator's drops) concluded.
enum AuthenticationOutcome: Equatable, Sendable {
    case accepted
    /// Let in with the bootstrap key: the welcome carries the hub's credential for the agent.
    case acceptedWithCredential(IssuedCredential)
    case refused(RefusalKind)
}

/// Why the hub closed a connection (other than a refusal).
enum CloseCause: Equatable, Sendable {
    case helloTimeout, notAHello, idle, dropped, shuttingDown
}

/// One agent connection's conversation, as a value: events in, actions out. The shell
/// (`AgentSessionRunner`) performs the actions; this type does no I/O and reads no clock.
struct AgentSession: Sendable {
    struct Timing: Sendable {
        var helloTimeout: Duration
        var idleLimit: Duration
        var closeGracePeriod: Duration
    }

    enum Phase: Equatable, Sendable {
        case awaitingHello
        case authenticating(UUID)
        case authenticated(UUID)
        /// The hub sent its close frame and waits for the agent's (or the grace period).
        case closing
        case finished
    }

    enum Action: Equatable, Sendable {
        case none
        /// Check this hello: drops first, then the database; report with `authenticationFinished`.
        case authenticate(agentID: UUID, key: PresentedKey)
        /// Send welcome, with the hub's new credential for the agent if one was made.
        case welcome(agentID: UUID, credential: IssuedCredential? = nil)
        /// Send refused with the kind's reason, then close 4401.
        case refuse(agentID: UUID?, kind: RefusalKind)
        case recordHeartbeat(agentID: UUID)
        /// Send a close frame, then wait for the agent's.
        case close(code: UInt16, reason: String, cause: CloseCause)
        /// Answer the agent's close frame with the same code, then hang up.
        case answerClose(code: UInt16?)
        /// Hang up now.
        case hangUp
    }

    let timing: Timing
    private(set) var phase: Phase = .awaitingHello
    /// When `deadlinePassed` has something to do; nil while authenticating or finished.
    private(set) var deadline: ContinuousClock.Instant?

    init(openedAt now: ContinuousClock.Instant, timing: Timing) {
        self.timing = timing
        self.deadline = now + timing.helloTimeout
    }

    var agentID: UUID? {
        switch phase {
        case .authenticating(let id), .authenticated(let id): id
        default: nil
        }
    }

    mutating func receivedText(_ text: String, at now: ContinuousClock.Instant) -> Action {
        switch phase {
        case .awaitingHello:
            guard case .hello(let agentText, let key) = AgentMessage.parse(text) else {
                return close(
                    code: CloseCode.helloRequired,
                    reason: "the first message must be a hello",
                    cause: .notAHello,
                    at: now
                )
            }
            guard let agentID = UUID(uuidString: agentText) else {
                return refuse(agentID: nil, kind: .unknownAgent, at: now)
            }
            phase = .authenticating(agentID)
            deadline = nil
            return .authenticate(agentID: agentID, key: key)
        case .authenticated(let agentID):
            deadline = now + timing.idleLimit
            // Anything else an agent says (a second hello, a newer message type) is ignored.
            return AgentMessage.parse(text) == .heartbeat ? .recordHeartbeat(agentID: agentID) : .none
        case .authenticating, .closing, .finished:
            return .none
        }
    }

    /// A binary or other data frame the protocol does not use.
    mutating func receivedBinary(at now: ContinuousClock.Instant) -> Action {
        switch phase {
        case .awaitingHello:
            return close(
                code: CloseCode.helloRequired,
                reason: "the first message must be a hello",
                cause: .notAHello,
                at: now
            )
        case .authenticated:
            deadline = now + timing.idleLimit
            return .none
        default:
            return .none
        }
    }

    /// A ping or pong: proof of life, but not a message (so it neither is nor replaces a hello).
    mutating func receivedControl(at now: ContinuousClock.Instant) {
        if case .authenticated = phase { deadline = now + timing.idleLimit }
    }

    mutating func receivedClose(code: UInt16?) -> Action {
        switch phase {
        case .closing:
            phase = .finished
            deadline = nil
            return .hangUp
        case .finished:
            return .none
        default:
            phase = .finished
            deadline = nil
            return .answerClose(code: code)
        }
    }

    mutating func inboundEnded() -> Action {
        guard phase != .finished else { return .none }
        phase = .finished
        deadline = nil
        return .hangUp
    }

    mutating func authenticationFinished(_ outcome: AuthenticationOutcome, at now: ContinuousClock.Instant) -> Action {
        guard case .authenticating(let agentID) = phase else { return .none }
        switch outcome {
        case .accepted:
            phase = .authenticated(agentID)
            deadline = now + timing.idleLimit
            return .welcome(agentID: agentID)
        case .acceptedWithCredential(let credential):
            phase = .authenticated(agentID)
            deadline = now + timing.idleLimit
            return .welcome(agentID: agentID, credential: credential)
        case .refused(let kind):
            return refuse(agentID: agentID, kind: kind, at: now)
        }
    }

    mutating func deadlinePassed(at now: ContinuousClock.Instant) -> Action {
        guard let deadline, now >= deadline else { return .none }
        switch phase {
        case .awaitingHello:
            return close(
                code: CloseCode.helloRequired,
                reason: "no hello within \(timing.helloTimeout)",
                cause: .helloTimeout,
                at: now
            )
        case .authenticated:
            return close(
                code: CloseCode.goingAway,
                reason: "nothing received for \(timing.idleLimit)",
                cause: .idle,
                at: now
            )
        case .closing:
            phase = .finished
            self.deadline = nil
            return .hangUp
        case .authenticating, .finished:
            return .none
        }
    }

    /// The operator dropped this connection's agent.
    mutating func dropped(at now: ContinuousClock.Instant) -> Action {
        switch phase {
        case .closing, .finished: .none
        default:
            close(code: CloseCode.goingAway, reason: RefusalKind.droppedByOperator.reason, cause: .dropped, at: now)
        }
    }

    mutating func shuttingDown(at now: ContinuousClock.Instant) -> Action {
        switch phase {
        case .closing, .finished: .none
        default: close(code: CloseCode.goingAway, reason: "the hub is shutting down", cause: .shuttingDown, at: now)
        }
    }

    private mutating func close(
        code: UInt16,
        reason: String,
        cause: CloseCause,
        at now: ContinuousClock.Instant
    ) -> Action {
        phase = .closing
        deadline = now + timing.closeGracePeriod
        return .close(code: code, reason: reason, cause: cause)
    }

    private mutating func refuse(agentID: UUID?, kind: RefusalKind, at now: ContinuousClock.Instant) -> Action {
        phase = .closing
        deadline = now + timing.closeGracePeriod
        return .refuse(agentID: agentID, kind: kind)
    }
}
