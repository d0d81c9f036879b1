import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import DigitalOceanAdapter
import ReconcileCore
import Reconciler
import Timekeeping

/// Agent bootstrap (design.md, "Agent bootstrap and health"): on when the hub's address is given.
struct AgentOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The Engine Hub's address for new servers' agents: turns agent bootstrap on (env CITRUS_ENGINE_URL; wss://, ws:// only to loopback).",
            valueName: "url"
        )
    )
    var engineURL: String?

    @Option(
        help: ArgumentHelp(
            "The cloud-init script sent as user_data, with {AGENT_ID}, {AGENT_KEY}, {ENGINE_WS_URL} (env CITRUS_CLOUD_INIT_TEMPLATE; default: the built-in copy of deploy/cloud-init.sh.tmpl).",
            valueName: "path"
        )
    )
    var cloudInitTemplate: String?

    @Option(
        help: ArgumentHelp(
            "Fail a row whose agent has not connected this long after its droplet became active (env CITRUS_BOOTSTRAP_TIMEOUT; default 15m; \(DurationRange.text(DurationRange.bootstrapTimeout))).",
            valueName: "duration"
        )
    )
    var bootstrapTimeout: String?

    @Option(
        help: ArgumentHelp(
            "An active server whose agent the hub has not seen for this long is unreachable (env CITRUS_AGENT_STALE_AFTER; default 2m; \(DurationRange.text(DurationRange.agentStaleAfter)); the hub refreshes last_seen_at every 30s, so below that it flaps).",
            valueName: "duration"
        )
    )
    var agentStaleAfter: String?

    /// Whether agent bootstrap is on with the built-in template, whose download address for the
    /// agent is a placeholder: every new server would then fail to install its agent.
    func usesPlaceholderTemplate(environment: [String: String]) -> Bool {
        hubURL(environment) != nil && templatePath(environment) == nil
    }

    /// The hub's address, flag first, then the environment; nil (bootstrap off) when unset or empty.
    private func hubURL(_ environment: [String: String]) -> String? {
        guard let url = engineURL ?? environment["CITRUS_ENGINE_URL"], !url.isEmpty else { return nil }
        return url
    }

    private func templatePath(_ environment: [String: String]) -> String? {
        cloudInitTemplate ?? environment["CITRUS_CLOUD_INIT_TEMPLATE"]
    }

    static let placeholderTemplateWarning =
        "agent bootstrap uses the built-in cloud-init template, whose agent download address is a placeholder "
        + "(downloads.example.com): no new server can install its agent, and each would fail after "
        + "--bootstrap-timeout with its droplet left running; give your own with --cloud-init-template "
        + "(CITRUS_CLOUD_INIT_TEMPLATE), a copy of deploy/cloud-init.sh.tmpl with your release's address and checksum"

    /// Nil when bootstrap is off. Every problem is a configuration error (exit 78), found at start-up.
    func enrollment(environment: [String: String]) throws(ConfigurationError) -> AgentEnrollment? {
        let templatePath = templatePath(environment)
        var policy = AgentBootstrapPolicy()
        if let d = try ConfigurationError.duration(
            "bootstrap-timeout",
            bootstrapTimeout ?? environment["CITRUS_BOOTSTRAP_TIMEOUT"],
            in: DurationRange.bootstrapTimeout
        ) {
            policy.timeout = d
        }
        if let d = try ConfigurationError.duration(
            "agent-stale-after",
            agentStaleAfter ?? environment["CITRUS_AGENT_STALE_AFTER"],
            in: DurationRange.agentStaleAfter
        ) {
            policy.staleAfter = d
        }
        guard let url = hubURL(environment) else {
            if let templatePath {
                throw ConfigurationError(
                    "--cloud-init-template \(templatePath) is given but agent bootstrap is off; give the hub's address with --engine-url too"
                )
            }
            return nil
        }
        var template = AgentEnrollment.defaultTemplate
        if let templatePath { template = try Self.readTemplate(at: templatePath) }
        do {
            return try AgentEnrollment(engineURL: url, template: template, policy: policy)
        } catch {
            throw ConfigurationError(error.description)
        }
    }
}

extension AgentOptions {
    /// Refused above this size before more is read; far above the 64 KiB it may render to.
    static let maximumTemplateFileBytes = 1024 * 1024

    /// The template file's text, checked for owner and mode on the descriptor it is read from (so
    /// the file checked is the file read) like the token file, but refused rather than warned
    /// about: a template others may change is code others choose to run as root on every server.
    static func readTemplate(at path: String) throws(ConfigurationError) -> String {
        let what = "--cloud-init-template \(path)"
        // O_NONBLOCK: a FIFO put where the file should be must not hang start-up.
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw ConfigurationError("\(what) cannot be read: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigurationError("\(what) is not a regular file")
        }
        if let problem = AgentEnrollment.templateFileProblem(
            mode: UInt32(info.st_mode),
            owner: UInt32(info.st_uid),
            user: UInt32(geteuid())
        ) {
            throw ConfigurationError("\(what) \(problem)")
        }
        var data = [UInt8](repeating: 0, count: maximumTemplateFileBytes + 1)
        var count = 0
        while count < data.count {
            let n = data.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                throw ConfigurationError("\(what) cannot be read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumTemplateFileBytes else {
            throw ConfigurationError(
                "\(what) is over \(maximumTemplateFileBytes) bytes; a cloud-init script is far smaller"
            )
        }
        guard let text = String(validating: data.prefix(count), as: UTF8.self) else {
            throw ConfigurationError("\(what) cannot be read as UTF-8 text: not valid UTF-8")
        }
        return text
    }
}
