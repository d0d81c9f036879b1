import Foundation

/// Injected faults. Probabilities are 0…1 and drawn from the seeded generator.
public struct SimulatorFaults: Sendable, Codable, Equatable {
    /// A 500 before anything happens (no side effect), on any `/v2` request.
    public var serverErrorProbability: Double = 0
    /// The next N `/v2` requests get a 500 with no side effect (deterministic, for tests).
    public var failNextRequests: Int = 0
    /// A create is performed, then the connection is closed without an answer.
    public var createResponseLostProbability: Double = 0
    /// A create is performed, then answered 500.
    public var createServerErrorProbability: Double = 0
    /// A new droplet is missing from list results for this long (GET by id still finds it).
    public var listLagSeconds: Double = 0
    /// … and for up to this long more, drawn per droplet.
    public var listLagSpreadSeconds: Double = 0
    /// A new droplet is missing from lists by one of its tags other than the fleet's
    /// (``fleetTag``) for this long, up to ``listLagSpreadSeconds`` more: DigitalOcean indexes
    /// each tag on its own. Nil: as long as from the other lists.
    public var identityTagLagSeconds: Double?
    /// The tag whose lists lag as the unfiltered list does (`citrus-host`).
    public var fleetTag: String = "citrus-host"
    /// A new droplet answers 404 to GET by id for this long (a read replica behind the write).
    public var lookupLagSeconds: Double = 0
    /// A create is answered 500 before anything happens (on top of ``serverErrorProbability``).
    public var createServerErrorBeforeEffectProbability: Double = 0
    /// A create is carried out late, ``createLateSeconds`` plus up to ``createLateSpreadSeconds``
    /// after it arrived, and never answered (the client has given up by then).
    public var createLateProbability: Double = 0
    public var createLateSeconds: Double = 0
    public var createLateSpreadSeconds: Double = 0
    /// Any other request is carried out, then answered 500.
    public var serverErrorAfterEffectProbability: Double = 0
    /// Any other request is carried out, then the connection is closed without an answer.
    public var responseLostProbability: Double = 0
    /// Added to every `/v2` response.
    public var latencySeconds: Double = 0
    /// An accepted droplet disappears (404) before it becomes active.
    public var vanishProbability: Double = 0
    /// The account's droplet limit: a create that would take the account's live droplets past it
    /// is refused 422, as DigitalOcean words it. Nil: no limit.
    public var dropletLimit: Int?
    /// Drawn once per droplet with agent credentials, at create: its agent never connects.
    public var agentNeverConnectProbability: Double = 0
    /// … its agent presents a different key than the one in `user_data`.
    public var agentWrongKeyProbability: Double = 0
    /// … its agent connects ``agentLateSeconds`` later than the boot delay says.
    public var agentLateProbability: Double = 0
    public var agentLateSeconds: Double = 0
    /// Every create is refused 422 with a message that quotes the request body back, user_data
    /// included (as some APIs do): the client must keep such echoes out of its errors.
    public var createRefusedEchoingBody = false
    /// A droplet action ends errored, without its effect.
    public var actionErrorProbability: Double = 0
    /// Faults aimed at droplet actions, each spent after its `count` matching actions.
    public var actionFaults: [SimulatorActionFault] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case serverErrorProbability = "server_error_probability"
        case failNextRequests = "fail_next_requests"
        case createResponseLostProbability = "create_response_lost_probability"
        case createServerErrorProbability = "create_server_error_probability"
        case listLagSeconds = "list_lag_seconds"
        case listLagSpreadSeconds = "list_lag_spread_seconds"
        case identityTagLagSeconds = "identity_tag_lag_seconds"
        case fleetTag = "fleet_tag"
        case lookupLagSeconds = "lookup_lag_seconds"
        case createServerErrorBeforeEffectProbability = "create_server_error_before_effect_probability"
        case createLateProbability = "create_late_probability"
        case createLateSeconds = "create_late_seconds"
        case createLateSpreadSeconds = "create_late_spread_seconds"
        case serverErrorAfterEffectProbability = "server_error_after_effect_probability"
        case responseLostProbability = "response_lost_probability"
        case latencySeconds = "latency_seconds"
        case vanishProbability = "vanish_probability"
        case dropletLimit = "droplet_limit"
        case agentNeverConnectProbability = "agent_never_connect_probability"
        case agentWrongKeyProbability = "agent_wrong_key_probability"
        case agentLateProbability = "agent_late_probability"
        case agentLateSeconds = "agent_late_seconds"
        case createRefusedEchoingBody = "create_refused_echoing_body"
        case actionErrorProbability = "action_error_probability"
        case actionFaults = "action_faults"
    }

    /// Decodes a partial update: absent keys keep the values of `base`.
    public init(from decoder: any Decoder) throws {
        try self.init(from: decoder, base: SimulatorFaults())
    }

    public init(from decoder: any Decoder, base: SimulatorFaults) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self = base
        func probability(_ key: CodingKeys, _ current: Double) throws -> Double {
            guard let value = try c.decodeIfPresent(Double.self, forKey: key) else { return current }
            guard (0...1).contains(value) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key,
                    in: c,
                    debugDescription: "\(key.rawValue) must be between 0 and 1"
                )
            }
            return value
        }
        func seconds(_ key: CodingKeys, _ current: Double) throws -> Double {
            guard let value = try c.decodeIfPresent(Double.self, forKey: key) else { return current }
            guard value >= 0, value.isFinite else {
                throw DecodingError.dataCorruptedError(
                    forKey: key,
                    in: c,
                    debugDescription: "\(key.rawValue) must be 0 or more"
                )
            }
            return value
        }
        serverErrorProbability = try probability(.serverErrorProbability, base.serverErrorProbability)
        createResponseLostProbability = try probability(
            .createResponseLostProbability,
            base.createResponseLostProbability
        )
        createServerErrorProbability = try probability(.createServerErrorProbability, base.createServerErrorProbability)
        vanishProbability = try probability(.vanishProbability, base.vanishProbability)
        if c.contains(.dropletLimit) {
            dropletLimit =
                try c.decodeNil(forKey: .dropletLimit) ? nil : max(0, try c.decode(Int.self, forKey: .dropletLimit))
        }
        listLagSeconds = try seconds(.listLagSeconds, base.listLagSeconds)
        listLagSpreadSeconds = try seconds(.listLagSpreadSeconds, base.listLagSpreadSeconds)
        if c.contains(.identityTagLagSeconds) {
            if try c.decodeNil(forKey: .identityTagLagSeconds) {
                identityTagLagSeconds = nil
            } else {
                identityTagLagSeconds = try seconds(.identityTagLagSeconds, 0)
            }
        }
        fleetTag = try c.decodeIfPresent(String.self, forKey: .fleetTag) ?? base.fleetTag
        lookupLagSeconds = try seconds(.lookupLagSeconds, base.lookupLagSeconds)
        createServerErrorBeforeEffectProbability = try probability(
            .createServerErrorBeforeEffectProbability,
            base.createServerErrorBeforeEffectProbability
        )
        createLateProbability = try probability(.createLateProbability, base.createLateProbability)
        createLateSeconds = try seconds(.createLateSeconds, base.createLateSeconds)
        createLateSpreadSeconds = try seconds(.createLateSpreadSeconds, base.createLateSpreadSeconds)
        serverErrorAfterEffectProbability = try probability(
            .serverErrorAfterEffectProbability,
            base.serverErrorAfterEffectProbability
        )
        responseLostProbability = try probability(.responseLostProbability, base.responseLostProbability)
        actionErrorProbability = try probability(.actionErrorProbability, base.actionErrorProbability)
        latencySeconds = try seconds(.latencySeconds, base.latencySeconds)
        agentNeverConnectProbability = try probability(.agentNeverConnectProbability, base.agentNeverConnectProbability)
        agentWrongKeyProbability = try probability(.agentWrongKeyProbability, base.agentWrongKeyProbability)
        agentLateProbability = try probability(.agentLateProbability, base.agentLateProbability)
        agentLateSeconds = try seconds(.agentLateSeconds, base.agentLateSeconds)
        failNextRequests = max(0, try c.decodeIfPresent(Int.self, forKey: .failNextRequests) ?? base.failNextRequests)
        createRefusedEchoingBody =
            try c.decodeIfPresent(Bool.self, forKey: .createRefusedEchoingBody) ?? base.createRefusedEchoingBody
        actionFaults = try c.decodeIfPresent([SimulatorActionFault].self, forKey: .actionFaults) ?? base.actionFaults
    }
}
