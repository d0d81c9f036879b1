// swift-tools-version: 6.2
import PackageDescription

/// The project's own targets treat every warning as an error; dependencies are not affected.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

/// The simulation's own parts (the world and the DigitalOcean model it runs the daemon against)
/// and the DigitalOcean client (JSON for every request) are optimised in debug builds too:
/// `swift test` runs 2,000 seeds, and unoptimised they spent most of the time on JSON bytes and
/// bookkeeping rather than in the daemon's decisions. Measured with the debug `citrus-simulate`,
/// 300 seeds: 26.0 s of CPU with the client unoptimised, 21.2 s optimised; the loop and the core
/// as well would save 4% more, not worth their debuggability. No target here uses `assert`, and
/// `Invariants` stay on in debug builds whatever the optimiser does.
let optimisedInDebug: [SwiftSetting] = strict + [.unsafeFlags(["-O"], .when(configuration: .debug))]

/// How a release build links the daemon (BENCHMARKS.md, "Idle resident size"): with lld, which
/// packs the relative relocations (DT_RELR: about 20 KiB instead of a 2.9 MiB table that the
/// dynamic loader reads whole at every start), and without exporting the executable's own
/// symbols, which the static Swift runtime's link file asks for (`-export-dynamic`) but nothing
/// looks up (their tables were 2 MiB resident). Release builds are made with
/// `--static-swift-stdlib` (scripts/bench.sh, scripts/package-deb.sh, README).
let daemonLinking: [LinkerSetting] = [
    .unsafeFlags(
        ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"],
        .when(platforms: [.linux], configuration: .release)
    )
]

// The dependencies' products, each named once.
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let asyncHTTPClient: Target.Dependency = .product(name: "AsyncHTTPClient", package: "async-http-client")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let metrics: Target.Dependency = .product(name: "Metrics", package: "swift-metrics")
let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let nioFoundationCompat: Target.Dependency = .product(name: "NIOFoundationCompat", package: "swift-nio")
let nioHTTP1: Target.Dependency = .product(name: "NIOHTTP1", package: "swift-nio")
let nioPosix: Target.Dependency = .product(name: "NIOPosix", package: "swift-nio")
let nioWebSocket: Target.Dependency = .product(name: "NIOWebSocket", package: "swift-nio")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let serviceLifecycleTestKit: Target.Dependency = .product(
    name: "ServiceLifecycleTestKit",
    package: "swift-service-lifecycle"
)
let unixSignals: Target.Dependency = .product(name: "UnixSignals", package: "swift-service-lifecycle")

let package = Package(
    name: "citrus-reconciler",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "citrus-reconciler", targets: ["citrus-reconciler"]),
        .executable(name: "citrus-do-sim", targets: ["citrus-do-sim"]),
        .executable(name: "citrus-bench", targets: ["citrus-bench"]),
        .executable(name: "citrus-simulate", targets: ["citrus-simulate"]),
        .executable(name: "citrus-engine-sim", targets: ["citrus-engine-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // C system libraries.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // prctl(2) is variadic in C, so Swift cannot call it: one small C function instead.
        .target(name: "CProcessHardening"),

        // What every executable shares: exit 78 for bad configuration, stderr logging for the tools.
        .target(
            name: "CommandLineSupport",
            dependencies: [argumentParser, logging],
            swiftSettings: strict
        ),
        // The version, in one place.
        .target(name: "BuildVersion", swiftSettings: strict),
        // Untrusted text made safe for terminals and logs; the string searching and trimming that
        // FoundationEssentials lacks.
        .target(name: "TerminalText", swiftSettings: strict),
        // The one injectable clock: wall time, uptime and sleeping; duration texts.
        .target(name: "Timekeeping", dependencies: ["TerminalText"], swiftSettings: strict),
        // libpq wrapper: connections, parameterised queries, transactions, LISTEN/NOTIFY, advisory locks.
        .target(
            name: "Postgres",
            dependencies: ["CLibPQ", "Timekeeping", "TerminalText", logging],
            swiftSettings: strict
        ),
        // DigitalOcean API v2 client: droplet models, typed errors, shared rate budget, retries;
        // the bytes go through a `DigitalOceanTransport`, so it needs no HTTP stack of its own.
        .target(
            name: "DigitalOcean",
            dependencies: ["Timekeeping", "BuildVersion", "TerminalText", metrics, logging],
            swiftSettings: optimisedInDebug
        ),
        // The client's transport over HTTPS (AsyncHTTPClient), as the daemon and the tests use it.
        .target(
            name: "DigitalOceanHTTP",
            dependencies: ["DigitalOcean", "Timekeeping", asyncHTTPClient, nioCore, nioPosix, nioHTTP1, logging],
            swiftSettings: strict
        ),
        // DigitalOcean as a model without sockets: account, droplets, actions, rate limits, faults,
        // agents' records; `handle(_:)` turns a request into an answer. `citrus-do-sim` serves it
        // over HTTP, the deterministic simulation in virtual time.
        .target(name: "DigitalOceanModel", dependencies: ["Timekeeping"], swiftSettings: optimisedInDebug),
        // The model behind an HTTP server, with stand-in agents over WebSocket (tests run it in-process).
        .target(
            name: "DigitalOceanSimulator",
            dependencies: [
                "DigitalOceanModel", "Timekeeping", nioCore, nioPosix, nioHTTP1, nioWebSocket, nioFoundationCompat,
                logging, serviceLifecycle,
            ],
            swiftSettings: strict
        ),
        // A local stand-in for the Engine Hub: accepts agents over WebSocket, authenticates their
        // keys against agents.key_sha256 and keeps connected_at/last_seen_at.
        .target(
            name: "EngineHubSimulator",
            dependencies: [
                "Postgres", crypto, nioCore, nioPosix, nioHTTP1, nioWebSocket, nioFoundationCompat, logging,
                serviceLifecycle,
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "citrus-engine-sim",
            dependencies: [
                "EngineHubSimulator", "Postgres", "CommandLineSupport", argumentParser, logging, serviceLifecycle,
            ],
            swiftSettings: strict
        ),
        // The pure reconcile decision: no I/O, no libpq, no HTTP.
        .target(name: "ReconcileCore", dependencies: ["Timekeeping"], swiftSettings: strict),
        // Schema migrations and the servers/events tables over Postgres.
        .target(
            name: "ServerStore",
            dependencies: ["Postgres", "ReconcileCore", "TerminalText", logging],
            swiftSettings: strict
        ),
        // sd_notify, the watchdog and the journald log handler.
        .target(
            name: "SystemdSupport",
            dependencies: ["Timekeeping", "TerminalText", "CSystemd", logging, serviceLifecycle],
            swiftSettings: strict
        ),
        // The loop: observe, decide, act; wake-ups, leadership, the audit trail, configuration and
        // metrics, and the ports the adapters below implement (ServerRepository, DropletCloud,
        // LeaderSession). No libpq, no HTTP client, no NIO, and no provider's client either
        // (Tests/ArchitectureTests fails if one appears).
        .target(
            name: "Reconciler",
            dependencies: [
                "ReconcileCore", "Timekeeping", "TerminalText", crypto, metrics, logging, serviceLifecycle,
            ],
            swiftSettings: strict
        ),
        // The loop's ports over Postgres: the repository and the leader session on the leader's
        // connection, NOTIFY wake-ups, start-up (wait for the database, migrate) and its checks.
        .target(
            name: "PostgresAdapter",
            dependencies: [
                "Reconciler", "ServerStore", "Postgres", "ReconcileCore", "Timekeeping", "TerminalText", logging,
                serviceLifecycle,
            ],
            swiftSettings: strict
        ),
        // The loop's cloud port over the DigitalOcean client; the shipped cloud-init template.
        .target(
            name: "DigitalOceanAdapter",
            dependencies: ["Reconciler", "DigitalOcean", "ReconcileCore", "Timekeeping"],
            swiftSettings: strict
        ),
        // What the CLI prints: plan, status and events, as text for people and JSON for scripts.
        .target(
            name: "OperatorReports",
            dependencies: ["ReconcileCore", "Timekeeping", "TerminalText"],
            swiftSettings: strict
        ),
        // The Prometheus endpoint: /metrics and /healthz over a small SwiftNIO server.
        .target(
            name: "MetricsEndpoint",
            dependencies: [metrics, prometheus, nioCore, nioPosix, nioHTTP1, logging, serviceLifecycle],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "citrus-reconciler",
            dependencies: [
                "Reconciler", "PostgresAdapter", "DigitalOceanAdapter", "OperatorReports", "ServerStore",
                "SystemdSupport", "DigitalOcean", "DigitalOceanHTTP", "Postgres", "ReconcileCore", "Timekeeping",
                "MetricsEndpoint", "CommandLineSupport", "CProcessHardening", "BuildVersion", "TerminalText",
                argumentParser, logging, serviceLifecycle, unixSignals,
            ],
            swiftSettings: strict,
            linkerSettings: daemonLinking
        ),
        .executableTarget(
            name: "citrus-do-sim",
            dependencies: ["DigitalOceanSimulator", "CommandLineSupport", argumentParser, logging, serviceLifecycle],
            swiftSettings: strict
        ),
        // The deterministic simulation: the daemon's own loop, reconciler, leadership and rate
        // budget in a seeded world of simulated Postgres, DigitalOcean and operators.
        .target(
            name: "Simulation",
            dependencies: [
                "Reconciler", "DigitalOceanAdapter", "ReconcileCore", "DigitalOcean", "DigitalOceanModel",
                "Timekeeping", logging,
            ],
            swiftSettings: optimisedInDebug
        ),
        .executableTarget(
            name: "citrus-simulate",
            dependencies: ["Simulation", argumentParser],
            swiftSettings: strict
        ),
        // Benchmarks: the real binaries against Postgres and the simulator, beside a naive baseline.
        .executableTarget(
            name: "citrus-bench",
            dependencies: [
                "ReconcileCore", "Postgres", "CitrusTestKit", "Timekeeping", asyncHTTPClient, nioCore, nioHTTP1,
                nioFoundationCompat, argumentParser,
            ],
            swiftSettings: strict
        ),

        // Shared test support: a throwaway Postgres cluster, the simulator in-process, process helpers.
        .target(
            name: "CitrusTestKit",
            dependencies: ["Postgres", "DigitalOceanSimulator", "Timekeeping", logging],
            swiftSettings: strict
        ),

        // Package.swift itself: no edge from the core, the loop or the simulation to libpq,
        // AsyncHTTPClient or NIO (it reads `swift package dump-package`).
        .testTarget(name: "ArchitectureTests", swiftSettings: strict),
        .testTarget(name: "TimekeepingTests", dependencies: ["Timekeeping"], swiftSettings: strict),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "Timekeeping", "CitrusTestKit"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DigitalOceanTests",
            dependencies: [
                "DigitalOcean", "DigitalOceanHTTP", "DigitalOceanModel", "DigitalOceanSimulator", "CitrusTestKit",
                "Timekeeping", asyncHTTPClient, nioCore, nioHTTP1, nioWebSocket, nioPosix, logging, serviceLifecycle,
                serviceLifecycleTestKit,
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ReconcileCoreTests", dependencies: ["ReconcileCore", "Timekeeping"], swiftSettings: strict),
        .testTarget(
            name: "EngineHubTests",
            dependencies: [
                "EngineHubSimulator", "Postgres", "ServerStore", "CitrusTestKit", crypto, nioCore, nioPosix, nioHTTP1,
                nioWebSocket, logging,
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "DigitalOceanModel"], swiftSettings: strict),
        .testTarget(name: "CommandLineSupportTests", dependencies: ["CommandLineSupport"], swiftSettings: strict),
        .testTarget(
            name: "MetricsEndpointTests",
            dependencies: [
                "MetricsEndpoint", asyncHTTPClient, prometheus, nioCore, nioHTTP1, nioPosix, logging, serviceLifecycle,
                serviceLifecycleTestKit,
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ServerStoreTests",
            // Every module a target imports is named, so an incremental build recompiles it when
            // that module changes (an undeclared one can leave a stale, crashing test binary).
            dependencies: ["ServerStore", "ReconcileCore", "Postgres", "CitrusTestKit"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReconcilerTests",
            dependencies: [
                "Reconciler", "PostgresAdapter", "DigitalOceanAdapter", "OperatorReports", "ReconcileCore",
                "ServerStore", "Postgres", "DigitalOcean", "DigitalOceanHTTP", "DigitalOceanSimulator", "CitrusTestKit",
                "Timekeeping", "EngineHubSimulator", "SystemdSupport", logging, serviceLifecycle,
                serviceLifecycleTestKit,
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SystemdSupportTests",
            dependencies: [
                "SystemdSupport", "CitrusTestKit", "ReconcileCore", "Timekeeping", logging, serviceLifecycle,
                serviceLifecycleTestKit,
            ],
            swiftSettings: strict
        ),
        // The real daemon, installed by deploy/install.sh, under a real systemd (needs root).
        .testTarget(
            name: "SystemTests",
            dependencies: [
                "CitrusTestKit", "Postgres", "DigitalOceanSimulator", "EngineHubSimulator", "ReconcileCore",
            ],
            swiftSettings: strict
        ),
    ]
)
