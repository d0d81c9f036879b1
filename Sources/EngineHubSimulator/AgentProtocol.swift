import Crypto
import Foundation

/// A message an agent sends, as far as the hub cares (see docs/agent-protocol.md).
enum AgentMessage: Equatable, Sendable {
    case hello(agentID: String, key: PresentedKey)
    case heartbeat
    /// Valid JSON with a `type` the hub does not act on (or a hello without its fields).
    case other(type: String)
    /// Not a JSON object with a string `type`.
    case unreadable

    static func parse(_ text: String) -> AgentMessage {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let type = object["type"] as? String
        else { return .unreadable }
        switch type {
        case "hello":
            guard let agentID = object["agent_id"] as? String else { return .other(type: type) }
            // The hub's own credential once the agent has one; the bootstrap key before that.
            if let credential = object["credential"] as? String {
                return .hello(agentID: agentID, key: PresentedKey(credential, kind: .hubCredential))
            }
            guard let key = object["key"] as? String else { return .other(type: type) }
            return .hello(agentID: agentID, key: PresentedKey(key))
        case "heartbeat":
            return .heartbeat
        default:
            return .other(type: type)
        }
    }
}

/// What the hub sends.
enum HubMessage {
    static let welcome = #"{"type":"welcome"}"#

    /// The welcome of an agent let in with its bootstrap key: it carries the credential the agent
    /// presents from now on (the key is single-use).
    static func welcome(credential: IssuedCredential?) -> String {
        guard let credential else { return welcome }
        return #"{"type":"welcome","credential":"# + jsonString(credential.text) + "}"
    }

    static func refused(reason: String) -> String {
        #"{"type":"refused","reason":"# + jsonString(reason) + "}"
    }

    private static func jsonString(_ text: String) -> String {
        // Encoding a lone string cannot fail.
        let data = (try? JSONEncoder().encode(text)) ?? Data(#""""#.utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// The close codes this hub uses.
enum CloseCode {
    /// RFC 6455: normal closure.
    static let normal: UInt16 = 1000
    /// RFC 6455: going away (idle agent, operator drop, hub shutting down).
    static let goingAway: UInt16 = 1001
    /// The protocol's "no hello, or the first message was not a hello".
    static let helloRequired: UInt16 = 4400
    /// The protocol's "refused".
    static let refused: UInt16 = 4401
}

/// The secret an agent presented in its hello: its bootstrap key, or the credential the hub gave
/// it. It never prints: not in logs, errors or test failure messages.
struct PresentedKey: Equatable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    enum Kind: Equatable, Sendable {
        /// `key`: checked against `agents.key_sha256`, which the daemon clears once it has served.
        case bootstrapKey
        /// `credential`: checked against `agents.hub_credential_sha256`.
        case hubCredential
    }

    let text: String
    let kind: Kind

    init(_ text: String, kind: Kind = .bootstrapKey) {
        self.text = text
        self.kind = kind
    }

    var description: String { kind == .bootstrapKey ? "<redacted key>" : "<redacted credential>" }
    var debugDescription: String { description }
}

/// The hub's own credential for an agent, made when the agent is let in with its bootstrap key:
/// 256 bits from the system's CSPRNG as 64 lowercase hex characters. Only its SHA-256 is stored;
/// the text goes to the agent in the welcome and nowhere else. It never prints.
struct IssuedCredential: Equatable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let text: String

    static func random() -> IssuedCredential {
        IssuedCredential(text: KeyDigest.hexText(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }))
    }

    var sha256: String { KeyDigest.hex(of: PresentedKey(text, kind: .hubCredential)) }

    var description: String { "<redacted credential>" }
    var debugDescription: String { description }
}
