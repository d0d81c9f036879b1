import Crypto
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import ReconcileCore
import TerminalText

/// Agent bootstrap, the daemon's half (design.md, "Agent bootstrap and health"): before each
/// create the row's agent gets a fresh key, and the droplet's `user_data` is the cloud-init
/// template with the agent's id, its key and the hub's address filled in. Only the key's SHA-256
/// is stored; the key itself exists in the create request and nowhere else.
public struct AgentEnrollment: Sendable, Hashable {
    /// The Engine Hub's WebSocket address, as the agent dials it.
    public let engineURL: String
    /// The cloud-init template, with `{AGENT_ID}`, `{AGENT_KEY}` and `{ENGINE_WS_URL}`.
    public let template: String
    /// When the agent is given up on, and when it counts as unreachable.
    public var policy: AgentBootstrapPolicy

    /// DigitalOcean's limit on `user_data`.
    public static let maximumUserDataBytes = 64 * 1024
    static let placeholders = (agentID: "{AGENT_ID}", key: "{AGENT_KEY}", engineURL: "{ENGINE_WS_URL}")

    /// Checks what can be checked before the first create: the URL, that the template names the
    /// key, and the rendered size (every key and id has the same length, so one rendering tells).
    public init(
        engineURL: String,
        template: String,
        policy: AgentBootstrapPolicy = AgentBootstrapPolicy()
    ) throws(EnrollmentProblem) {
        try Self.validate(engineURL: engineURL)
        guard template.contains(Self.placeholders.key) else {
            throw EnrollmentProblem(
                "the cloud-init template never mentions {AGENT_KEY}, so no agent could authenticate"
            )
        }
        self.engineURL = engineURL
        self.template = template
        self.policy = policy
        let size = render(agent: UUID(), key: Self.newKey()).utf8.count
        guard size <= Self.maximumUserDataBytes else {
            throw EnrollmentProblem(
                "the cloud-init template renders to \(size) bytes; DigitalOcean accepts at most \(Self.maximumUserDataBytes) bytes (64 KiB) of user_data"
            )
        }
    }

    /// `wss://` anywhere; `ws://` (no TLS, the key in the clear) only to this machine.
    static func validate(engineURL: String) throws(EnrollmentProblem) {
        guard let url = URLComponents(string: engineURL), let scheme = url.scheme?.lowercased(), let host = url.host,
            !host.isEmpty
        else {
            throw EnrollmentProblem(
                "--engine-url \"\(engineURL)\" is not a URL; give the hub's address, such as wss://hub.example.com/agent"
            )
        }
        guard !engineURL.contains("{"), !engineURL.contains("}"), !engineURL.contains(where: \.isWhitespace) else {
            throw EnrollmentProblem("--engine-url \"\(engineURL)\" may not contain braces or spaces")
        }
        switch scheme {
        case "wss": return
        case "ws" where ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased()): return
        case "ws":
            throw EnrollmentProblem(
                "--engine-url \"\(engineURL)\" is ws:// to another machine, which would send agents' keys unencrypted; use wss://"
            )
        default:
            throw EnrollmentProblem(
                "--engine-url \"\(engineURL)\" must be a wss:// URL (ws:// only to 127.0.0.1 or localhost)"
            )
        }
    }

    /// A fresh key: 256 bits from the system's CSPRNG, written as 64 lowercase hex characters.
    public static func newKey() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { hex(Array($0)) }
    }

    /// What the hub compares with: the lowercase hex SHA-256 of the key as written in the script.
    public static func keySHA256(_ key: String) -> String {
        hex(Array(SHA256.hash(data: Array(key.utf8))))
    }

    /// The user_data of one create attempt of `agent`, carrying `key`.
    public func userData(agent: UUID, key: String) -> UserData {
        UserData(text: render(agent: agent, key: key), secrets: [key])
    }

    func render(agent: UUID, key: String) -> String {
        // The URL is checked to hold no braces and the id and key are hex, so no replacement can
        // create a placeholder that a later one would fill.
        template
            .replacingAll(Self.placeholders.agentID, with: agent.uuidString.lowercased())
            .replacingAll(Self.placeholders.key, with: key)
            .replacingAll(Self.placeholders.engineURL, with: engineURL)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension AgentEnrollment {
    /// What is wrong with a cloud-init template file's owner and mode, or nil when nothing is. The
    /// template runs as root on every new server, so whoever may change it owns the fleet: it must
    /// belong to root or to the daemon's own user (`user`), and neither its group nor others may
    /// write it (reading is fine: it holds no secret, the key is filled in per create). Pure, for
    /// tests; `mode` and `owner` are `stat`'s `st_mode` and `st_uid`.
    public static func templateFileProblem(mode: UInt32, owner: UInt32, user: UInt32) -> String? {
        if owner != 0 && owner != user {
            return
                "is owned by uid \(owner), neither root nor this daemon's user (uid \(user)); whoever owns it decides what runs as root on every new server: chown it to root"
        }
        let permissions = mode & 0o7777
        guard permissions & 0o022 == 0 else {
            return
                "is writable by its group or by others (mode 0\(String(permissions, radix: 8))); whoever may write it decides what runs as root on every new server: chmod go-w it"
        }
        return nil
    }
}

/// Why agent bootstrap cannot be configured as given; one line an operator can act on.
public struct EnrollmentProblem: Error, Sendable, CustomStringConvertible {
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}
