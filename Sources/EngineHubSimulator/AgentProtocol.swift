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
            guard let agentID = object["agent_id"] as? String, let key = object["key"] as? String else {
                return .other(type: type)
            }
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

/// The key an agent presented. It never prints: not in logs, errors or test failure messages.
struct PresentedKey: Equatable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let text: String

    init(_ text: String) { self.text = text }

    var description: String { "<redacted key>" }
    var debugDescription: String { description }
}
