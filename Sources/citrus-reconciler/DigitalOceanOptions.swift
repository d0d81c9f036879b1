import ArgumentParser
import CommandLineSupport
import DigitalOcean
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import TerminalText

/// Where DigitalOcean is and how to prove who we are.
struct DigitalOceanOptions: ParsableArguments {
    @Option(
        name: .customLong("digitalocean-url"),
        help: ArgumentHelp(
            "DigitalOcean API base URL (env CITRUS_DIGITALOCEAN_URL; https://, http:// only to 127.0.0.1, ::1 or localhost).",
            valueName: "url"
        )
    )
    var url: String?

    @Option(
        name: .customLong("digitalocean-token-file"),
        help: ArgumentHelp(
            "File holding the API token. Otherwise, first found: the systemd credential $CREDENTIALS_DIRECTORY/digitalocean-token, DIGITALOCEAN_ACCESS_TOKEN, DIGITALOCEAN_TOKEN.",
            valueName: "path"
        )
    )
    var tokenFile: String?

    @Option(
        help: ArgumentHelp(
            "Requests a minute this daemon allows itself (env CITRUS_RATE_PER_MINUTE; default and DigitalOcean's limit: 250; 1…100000).",
            valueName: "n"
        )
    )
    var ratePerMinute: String?

    @Option(
        help: ArgumentHelp(
            "Requests an hour this daemon allows itself (env CITRUS_RATE_PER_HOUR; default and DigitalOcean's limit: 5000; 1…1000000).",
            valueName: "n"
        )
    )
    var ratePerHour: String?

    @Option(
        help: ArgumentHelp(
            "Hourly requests left for other users of the token: below this many remaining, the daemon waits (env CITRUS_RATE_RESERVE; default 100; 0 to one less than the hourly rate).",
            valueName: "n"
        )
    )
    var rateReserve: String?

    static let defaultURL = "https://api.digitalocean.com"

    func rateBudget(environment: [String: String]) throws(ConfigurationError) -> RateBudget.Configuration {
        func count(
            _ flag: String,
            _ value: String?,
            _ variable: String,
            default fallback: Int,
            range: ClosedRange<Int>
        ) throws(ConfigurationError) -> Int {
            try ConfigurationError.wholeNumber(flag, value ?? environment[variable], in: range) ?? fallback
        }
        let perMinute = try count(
            "rate-per-minute",
            ratePerMinute,
            "CITRUS_RATE_PER_MINUTE",
            default: 250,
            range: 1...100_000
        )
        let perHour = try count(
            "rate-per-hour",
            ratePerHour,
            "CITRUS_RATE_PER_HOUR",
            default: 5000,
            range: 1...1_000_000
        )
        let reserve = try count(
            "rate-reserve",
            rateReserve,
            "CITRUS_RATE_RESERVE",
            default: 100,
            range: 0...(perHour - 1)
        )
        return RateBudget.Configuration(perMinute: perMinute, perHour: perHour, reserve: reserve)
    }

    func baseURL(environment: [String: String]) throws(ConfigurationError) -> URL {
        let text = url ?? environment["CITRUS_DIGITALOCEAN_URL"] ?? Self.defaultURL
        guard let parsed = URL(string: text), let scheme = parsed.scheme?.lowercased(),
            ["http", "https"].contains(scheme),
            let host = parsed.host, !host.isEmpty
        else {
            throw ConfigurationError(
                "--digitalocean-url \"\(text)\" is not an http(s) URL with a host, like \(Self.defaultURL)"
            )
        }
        // Every request carries the token: in clear text only where it never leaves the machine.
        guard scheme == "https" || Self.loopbackHosts.contains(host.lowercased()) else {
            throw ConfigurationError(
                "--digitalocean-url \"\(text)\" would send the token in clear text; use https:// (http:// only to 127.0.0.1, ::1 or localhost)"
            )
        }
        return parsed
    }

    /// Hosts a plain http:// URL may name (the simulator on this machine).
    static let loopbackHosts: Set<String> = ["127.0.0.1", "localhost", "::1", "[::1]"]

    /// The token, from the first source that has one. Never echoed: errors name the source only.
    /// `warn` hears what is worth fixing but not fatal (a token file others may read); by default
    /// it is written to stderr, for logging is not set up yet when the token is first read.
    func token(
        environment: [String: String],
        warn: (String) -> Void = Self.warnOnStandardError
    ) throws(ConfigurationError) -> DigitalOceanToken {
        if let tokenFile {
            return try Self.readToken(at: tokenFile, source: "--digitalocean-token-file", warn: warn)
        }
        if let directory = environment["CREDENTIALS_DIRECTORY"] {
            let path = URL(fileURLWithPath: directory).appendingPathComponent("digitalocean-token").path
            if FileManager.default.fileExists(atPath: path) {
                return try Self.readToken(at: path, source: "the systemd credential digitalocean-token", warn: warn)
            }
        }
        for name in ["DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN"] {
            if let value = environment[name]?.trimmingWhitespace(), !value.isEmpty {
                if let problem = DigitalOceanToken.problem(with: value) {
                    throw ConfigurationError("the DigitalOcean token in \(name) \(problem)")
                }
                return DigitalOceanToken(value)
            }
        }
        throw ConfigurationError(
            "no DigitalOcean token: give --digitalocean-token-file, a systemd credential named digitalocean-token (LoadCredential=), or DIGITALOCEAN_ACCESS_TOKEN"
        )
    }

    static func warnOnStandardError(_ warning: String) {
        StandardStreams.writeError("citrus-reconciler: warning: \(warning)\n")
    }

    /// A token file is refused above this size before more of it is read (a token is a line).
    static let maximumTokenFileBytes = 64 * 1024

    private static func readToken(
        at path: String,
        source: String,
        warn: (String) -> Void
    ) throws(ConfigurationError) -> DigitalOceanToken {
        let what = "the DigitalOcean token file from \(source) (\(path))"
        // O_NONBLOCK: a FIFO put where the file should be must not hang start-up.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            if errno == ENOENT { throw ConfigurationError("\(what) does not exist") }
            throw ConfigurationError("\(what) is not readable by this user; check its owner and mode")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigurationError("\(what) is not a regular file")
        }
        guard info.st_size <= maximumTokenFileBytes else {
            throw ConfigurationError(
                "\(what) is \(info.st_size) bytes; a token file holds one token (at most \(maximumTokenFileBytes) bytes)"
            )
        }
        if let warning = permissionWarning(mode: info.st_mode, owner: info.st_uid, user: geteuid()) {
            warn("\(what) \(warning)")
        }
        // Never more than the cap, whatever the size said (files in /proc say 0).
        var data = [UInt8](repeating: 0, count: maximumTokenFileBytes + 1)
        var count = 0
        while count < data.count {
            let n = data.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                throw ConfigurationError("\(what) is not readable by this user; check its owner and mode")
            }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumTokenFileBytes else {
            throw ConfigurationError("\(what) is over \(maximumTokenFileBytes) bytes; a token file holds one token")
        }
        let token = String(decoding: data.prefix(count), as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty else { throw ConfigurationError("\(what) is empty") }
        guard !token.contains(where: \.isWhitespace) else {
            throw ConfigurationError("\(what) holds more than one word; it must hold the token alone")
        }
        if let problem = DigitalOceanToken.problem(with: token) {
            throw ConfigurationError("\(what) \(problem)")
        }
        return DigitalOceanToken(token)
    }

    /// libpq's rule for `.pgpass`, as a warning: a secret file is the user's alone (0600 or less);
    /// one owned by root may also be readable by its group (0640, `root:service`). Pure, for tests.
    static func permissionWarning(mode: mode_t, owner: uid_t, user: uid_t) -> String? {
        let permissions = mode & 0o777
        let octal = String(permissions, radix: 8)
        if owner != user && owner != 0 {
            return
                "is owned by uid \(owner), neither this user (uid \(user)) nor root; the token is for this service alone"
        }
        let allowed: mode_t = owner == 0 && owner != user ? 0o640 : 0o600
        guard permissions & ~allowed & 0o077 != 0 else { return nil }
        return "has group or world access (mode 0\(octal)); it should be u=rw (0600) or less: chmod 600 it"
    }
}
