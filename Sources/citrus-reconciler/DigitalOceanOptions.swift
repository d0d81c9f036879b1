import ArgumentParser
import DigitalOcean
import Foundation

/// Where DigitalOcean is and how to prove who we are.
struct DigitalOceanOptions: ParsableArguments {
    @Option(
        name: .customLong("digitalocean-url"),
        help: ArgumentHelp("DigitalOcean API base URL (env CITRUS_DIGITALOCEAN_URL).", valueName: "url")
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
        help: ArgumentHelp("Requests a minute this daemon allows itself (env CITRUS_RATE_PER_MINUTE; DigitalOcean's limit: 250).", valueName: "n"))
    var ratePerMinute: String?

    @Option(help: ArgumentHelp("Requests an hour this daemon allows itself (env CITRUS_RATE_PER_HOUR; DigitalOcean's limit: 5000).", valueName: "n"))
    var ratePerHour: String?

    @Option(
        help: ArgumentHelp(
            "Hourly requests left for other users of the token: below this many remaining, the daemon waits (env CITRUS_RATE_RESERVE; default 100).",
            valueName: "n"
        ))
    var rateReserve: String?

    static let defaultURL = "https://api.digitalocean.com"

    func rateBudget(environment: [String: String]) throws(ConfigurationError) -> RateBudget.Configuration {
        func count(
            _ flag: String, _ value: String?, _ variable: String, default fallback: Int, range: ClosedRange<Int>
        ) throws(ConfigurationError) -> Int {
            try ConfigurationError.wholeNumber(flag, value ?? environment[variable], in: range) ?? fallback
        }
        let perMinute = try count("rate-per-minute", ratePerMinute, "CITRUS_RATE_PER_MINUTE", default: 250, range: 1...100_000)
        let perHour = try count("rate-per-hour", ratePerHour, "CITRUS_RATE_PER_HOUR", default: 5000, range: 1...1_000_000)
        let reserve = try count("rate-reserve", rateReserve, "CITRUS_RATE_RESERVE", default: 100, range: 0...(perHour - 1))
        return RateBudget.Configuration(perMinute: perMinute, perHour: perHour, reserve: reserve)
    }

    func baseURL(environment: [String: String]) throws(ConfigurationError) -> URL {
        let text = url ?? environment["CITRUS_DIGITALOCEAN_URL"] ?? Self.defaultURL
        guard let parsed = URL(string: text), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = parsed.host, !host.isEmpty
        else {
            throw ConfigurationError("--digitalocean-url \"\(text)\" is not an http(s) URL with a host, like \(Self.defaultURL)")
        }
        return parsed
    }

    /// The token, from the first source that has one. Never echoed: errors name the source only.
    func token(environment: [String: String]) throws(ConfigurationError) -> DigitalOceanToken {
        if let tokenFile {
            return try Self.readToken(at: tokenFile, source: "--digitalocean-token-file")
        }
        if let directory = environment["CREDENTIALS_DIRECTORY"] {
            let path = URL(fileURLWithPath: directory).appendingPathComponent("digitalocean-token").path
            if FileManager.default.fileExists(atPath: path) {
                return try Self.readToken(at: path, source: "the systemd credential digitalocean-token")
            }
        }
        for name in ["DIGITALOCEAN_ACCESS_TOKEN", "DIGITALOCEAN_TOKEN"] {
            if let value = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty {
                return DigitalOceanToken(value)
            }
        }
        throw ConfigurationError(
            "no DigitalOcean token: give --digitalocean-token-file, a systemd credential named digitalocean-token (LoadCredential=), or DIGITALOCEAN_ACCESS_TOKEN"
        )
    }

    private static func readToken(at path: String, source: String) throws(ConfigurationError) -> DigitalOceanToken {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigurationError("the DigitalOcean token file from \(source) (\(path)) does not exist")
        }
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
            throw ConfigurationError("the DigitalOcean token file from \(source) (\(path)) is not readable by this user; check its owner and mode")
        }
        let contents = String(decoding: data, as: UTF8.self)
        let token = contents.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ConfigurationError("the DigitalOcean token file from \(source) (\(path)) is empty") }
        guard !token.contains(where: \.isWhitespace) else {
            throw ConfigurationError("the DigitalOcean token file from \(source) (\(path)) holds more than one word; it must hold the token alone")
        }
        return DigitalOceanToken(token)
    }
}
