import Logging
import SystemdSupport
import Testing

@Suite("Where a reload finds the token and the log level")
struct ReloadSourcesTests {
    @Test("the token comes from the copy ExecReload= left in the runtime directory, else from the start's sources")
    func tokenEnvironment() {
        let start = ["CREDENTIALS_DIRECTORY": "/run/credentials/citrus", "RUNTIME_DIRECTORY": "/run/citrus:/run/other"]
        let refreshed = ReloadSources.tokenEnvironment(start) { $0 == "/run/citrus/digitalocean-token" }
        #expect(refreshed.environment["CREDENTIALS_DIRECTORY"] == "/run/citrus")
        #expect(refreshed.source.contains("/run/citrus/digitalocean-token"))
        let unrefreshed = ReloadSources.tokenEnvironment(start) { _ in false }
        #expect(unrefreshed.environment == start)
        #expect(unrefreshed.source == "the sources read at start")
    }

    @Test("--log-level is fixed; else the level file ExecReload= wrote; else CITRUS_LOG_LEVEL; else info")
    func logLevel() {
        let environment = ["RUNTIME_DIRECTORY": "/run/citrus", "CITRUS_LOG_LEVEL": "debug"]
        #expect(ReloadSources.logLevel(flag: .error, environment: environment) { _ in "trace" } == .fixed(.error))
        #expect(
            ReloadSources.logLevel(flag: nil, environment: environment) { _ in " Trace\n" }
                == .level(.trace, origin: "CITRUS_LOG_LEVEL (the environment file, read by ExecReload=)")
        )
        #expect(
            ReloadSources.logLevel(flag: nil, environment: environment) { _ in nil }
                == .level(.debug, origin: "CITRUS_LOG_LEVEL")
        )
        #expect(
            ReloadSources.logLevel(flag: nil, environment: environment) { _ in "loud" }
                == .invalid("loud", origin: "CITRUS_LOG_LEVEL (the environment file, read by ExecReload=)")
        )
        #expect(
            ReloadSources.startLevel(flag: nil, variable: "  ")
                == .level(.info, origin: "the default (CITRUS_LOG_LEVEL unset)")
        )
    }

    @Test(
        "the runtime directory is the first absolute one systemd names",
        arguments: [
            (["RUNTIME_DIRECTORY": "/run/a:/run/b"], "/run/a"),
            (["RUNTIME_DIRECTORY": "relative"], nil),
            (["RUNTIME_DIRECTORY": ""], nil),
            ([:], nil),
        ] as [([String: String], String?)]
    )
    func runtimeDirectory(environment: [String: String], expected: String?) {
        #expect(ReloadSources.runtimeDirectory(environment) == expected)
    }
}
