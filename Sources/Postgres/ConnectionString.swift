import CLibPQ
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TerminalText

/// A libpq connection string (key=value conninfo or a postgres:// URI), kept away from logs.
///
/// The raw text is only ever handed to libpq. Everything else sees `redacted`, and any message that
/// may echo part of it passes through `scrub(_:)` first.
public struct ConnectionString: Sendable, Hashable, CustomStringConvertible {
    /// nil means "libpq's defaults": `PG*` environment variables, service files, `.pgpass`.
    let raw: String?
    private let secrets: [String]
    private let mayHoldUnparsedSecret: Bool
    /// The parameters the string sets that decide which server a session goes to (`host`,
    /// `hostaddr`, `target_session_attrs`, `service`), as libpq parsed them.
    private let routing: [String: String]

    /// Parses `text` with libpq; throws `invalidConnectionString` (without echoing any secret).
    public init(_ text: String?) throws(PostgresError) {
        raw = text
        guard let text, !text.isEmpty else {
            secrets = []
            mayHoldUnparsedSecret = false
            routing = [:]
            return
        }
        var found = Self.guessedSecrets(in: text)
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(text, &errorMessage) else {
            var message = errorMessage.map { String(cString: $0) } ?? "cannot parse the connection string"
            if let errorMessage { PQfreemem(errorMessage) }
            message = message.trimmingWhitespace()
            secrets = found
            mayHoldUnparsedSecret = true
            routing = [:]
            throw PostgresError(
                code: .invalidConnectionString,
                message: "invalid database connection string: " + Self.scrub(message, secrets: found, aggressive: true)
            )
        }
        defer { PQconninfoFree(options) }
        var option = options
        var routing: [String: String] = [:]
        while let keyword = option.pointee.keyword {
            let name = String(cString: keyword)
            if name == "password", let value = option.pointee.val {
                found.append(String(cString: value))
            }
            if Self.routingKeywords.contains(name), let value = option.pointee.val {
                routing[name] = String(cString: value)
            }
            option += 1
        }
        secrets = found.filter { !$0.isEmpty }
        mayHoldUnparsedSecret = false
        self.routing = routing.filter { !$0.value.isEmpty }
    }

    private static let routingKeywords: Set<String> = ["host", "hostaddr", "target_session_attrs", "service"]

    /// Parameters this library sets where the operator left them unset, as keyword/value pairs
    /// for libpq, to be placed before the string itself (whose own settings then win).
    ///
    /// With several hosts (`host=a,b`, `postgresql://a:5432,b:5432/db`, or `PGHOST=a,b`), libpq
    /// takes the first host that answers, a hot standby as readily as the primary: a replica
    /// there could take the advisory lock of a read-only copy and believe it leads. So several
    /// hosts mean `target_session_attrs=read-write`, unless the string or `PGTARGETSESSIONATTRS`
    /// says otherwise. A service file (`service=`, `PGSERVICE`) is left to say it itself: its
    /// hosts are not known here, and a keyword set here would override its own choice.
    public func defaultedParameters(environment: [String: String]) -> [(keyword: String, value: String)] {
        func set(_ keyword: String, _ variable: String) -> String? {
            routing[keyword] ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        let hosts = [set("host", "PGHOST"), set("hostaddr", "PGHOSTADDR")]
        let severalHosts = hosts.contains { $0?.contains(",") == true }
        guard severalHosts, set("target_session_attrs", "PGTARGETSESSIONATTRS") == nil,
            set("service", "PGSERVICE") == nil
        else { return [] }
        return [("target_session_attrs", "read-write")]
    }

    /// The connection string with any password replaced by `***`.
    public var redacted: String {
        guard let raw else { return "(libpq defaults)" }
        return scrub(raw)
    }

    public var description: String { redacted }

    /// Removes every known secret from `message`.
    public func scrub(_ message: String) -> String {
        Self.scrub(message, secrets: secrets, aggressive: mayHoldUnparsedSecret)
    }

    static func scrub(_ message: String, secrets: [String], aggressive: Bool) -> String {
        var result = message
        for secret in secrets.sorted(by: { $0.count > $1.count }) where !secret.isEmpty {
            result = result.replacingAll(secret, with: "***")
        }
        if aggressive {
            // libpq quotes fragments of a string it could not parse; one of them may be part of
            // a password we failed to isolate, so quoted fragments are not repeated at all.
            result = result.replacingQuotedFragments(with: "\"…\"")
        }
        return result
    }

    /// Password-like substrings found without libpq: `password=...` pairs and URI user info.
    static func guessedSecrets(in text: String) -> [String] {
        var found: [String] = []
        // URI form: scheme://user:password@host
        if let schemeEnd = text.range(ofText: "://") {
            let rest = text[schemeEnd.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                found.append(String(authority[authority.index(after: colon)..<at]))
            }
        }
        // password=value in conninfo or as a URI query parameter.
        var search = text[...]
        while let key = search.range(ofText: "password", ignoringCase: true) {
            var index = key.upperBound
            while index < search.endIndex, search[index] == " " { index = search.index(after: index) }
            guard index < search.endIndex, search[index] == "=" else {
                search = search[key.upperBound...]
                continue
            }
            index = search.index(after: index)
            while index < search.endIndex, search[index] == " " { index = search.index(after: index) }
            var value = ""
            if index < search.endIndex, search[index] == "'" {
                index = search.index(after: index)
                let start = index
                while index < search.endIndex, search[index] != "'" {
                    if search[index] == "\\" {
                        index = search.index(after: index)
                        if index == search.endIndex { break }
                    }
                    value.append(search[index])
                    index = search.index(after: index)
                }
                // Both the escaped form (as written) and the unescaped one (as libpq may echo it).
                found.append(String(search[start..<index]))
            } else {
                while index < search.endIndex, !" &".contains(search[index]) {
                    value.append(search[index])
                    index = search.index(after: index)
                }
            }
            if !value.isEmpty { found.append(value) }
            search = search[min(index, search.endIndex)...]
        }
        return found
    }
}

extension String {
    func replacingQuotedFragments(with replacement: String) -> String {
        var result = ""
        var inQuote = false
        for character in self {
            if character == "\"" {
                if inQuote { result += replacement }
                inQuote.toggle()
            } else if !inQuote {
                result.append(character)
            }
        }
        return result
    }

    /// libpq's messages span lines ("...failed: refused\n\tIs the server running..."); logs and
    /// exit messages want one.
    func oneLine() -> String {
        split(whereSeparator: \.isNewline)
            .map { $0.trimmingSpaces() }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
    }
}
