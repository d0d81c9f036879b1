/// The three values a rendered cloud-init script gives the Citrus Agent (docs/agent-protocol.md).
///
/// Held in memory only. `description` never shows the key, so the value is safe to log by accident.
public struct AgentCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var agentID: String
    public var key: String
    public var engineURL: String

    public init(agentID: String, key: String, engineURL: String) {
        self.agentID = agentID
        self.key = key
        self.engineURL = engineURL
    }

    public var description: String { "AgentCredentials(agent_id: \(agentID), key: <\(key.utf8.count) bytes>)" }
    public var debugDescription: String { description }

    /// Reads the script as cloud-init would hand it to the agent's environment file: the first line
    /// (leading spaces and an `export ` prefix allowed) that starts `AGENT_ID=`, `AGENT_KEY=` and
    /// `ENGINE_WS_URL=`, the value optionally in single or double quotes. Nil when any is missing
    /// or empty: a droplet with some other script boots without an agent.
    public static func extract(fromScript script: String) -> AgentCredentials? {
        var values: [String: String] = [:]
        let names = ["AGENT_ID", "AGENT_KEY", "ENGINE_WS_URL"]
        for rawLine in script.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            var line = rawLine.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("export ") {
                line = line.dropFirst("export ".count).drop { $0 == " " || $0 == "\t" }
            }
            for name in names where values[name] == nil && line.hasPrefix(name + "=") {
                values[name] = unquoted(line.dropFirst(name.count + 1))
            }
            if values.count == names.count { break }
        }
        guard let agentID = values["AGENT_ID"], !agentID.isEmpty, let key = values["AGENT_KEY"], !key.isEmpty,
            let engineURL = values["ENGINE_WS_URL"], !engineURL.isEmpty
        else { return nil }
        return AgentCredentials(agentID: agentID, key: key, engineURL: engineURL)
    }

    /// The value without trailing blanks, and without one pair of matching quotes around it.
    static func unquoted(_ raw: Substring) -> String {
        var value = raw
        while let last = value.last, last == " " || last == "\t" || last == "\r" { value = value.dropLast() }
        for quote: Character in ["\"", "'"] where value.count >= 2 && value.first == quote && value.last == quote {
            return String(value.dropFirst().dropLast())
        }
        return String(value)
    }

    /// A different key of the same shape: every hex digit replaced by its complement (`0`↔`f`),
    /// so no character stays the same. Used by the wrong-key fault.
    public static func wrongKey(for key: String) -> String {
        let digits = Array("0123456789abcdef")
        let flipped = String(
            key.map { character -> Character in
                guard let value = character.hexDigitValue else { return character }
                return digits[15 - value]
            }
        )
        return flipped == key ? key + "0" : flipped
    }
}

/// Where an agent dials: a parsed `ws://` / `wss://` URL.
public struct AgentEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var secure: Bool
    /// Without IPv6 brackets.
    public var host: String
    public var port: Int
    /// Path and query, at least `/`.
    public var target: String

    /// Hosts an agent may dial: the simulator's traffic never leaves loopback.
    public var isLoopback: Bool {
        let lowered = host.lowercased()
        if lowered == "localhost" || lowered == "::1" { return true }
        let octets = lowered.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// `Host` header value.
    public var authority: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }

    /// Scheme, host, port and path, without the query (nothing secret goes in a log line).
    public var description: String {
        let path =
            target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        return (secure ? "wss://" : "ws://") + authority + path
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notWebSocket
        case badAuthority

        public var description: String {
            switch self {
            case .notWebSocket: "not a ws:// or wss:// URL"
            case .badAuthority: "no usable host and port"
            }
        }
    }

    public static func parse(_ url: String) -> Result<AgentEndpoint, ParseError> {
        let lowered = url.lowercased()
        let secure: Bool
        let rest: Substring
        if lowered.hasPrefix("ws://") {
            secure = false
            rest = url.dropFirst(5)
        } else if lowered.hasPrefix("wss://") {
            secure = true
            rest = url.dropFirst(6)
        } else {
            return .failure(.notWebSocket)
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if let fragment = target.firstIndex(of: "#") { target = String(target[..<fragment]) }
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return .failure(.badAuthority) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return .failure(.badAuthority) }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { return .failure(.badAuthority) }
        var port = secure ? 443 : 80
        if let portText {
            guard let number = Int(portText), (1...65535).contains(number) else { return .failure(.badAuthority) }
            port = number
        }
        return .success(AgentEndpoint(secure: secure, host: String(host), port: port, target: target))
    }
}
