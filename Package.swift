// swift-tools-version: 6.2
import PackageDescription

/// The project's own targets treat every warning as an error; dependencies are not affected.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

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
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The version, in one place.
        .target(name: "BuildVersion", swiftSettings: strict),
        // Untrusted text made safe for terminals and logs.
        .target(name: "TerminalText", swiftSettings: strict),
        // The one injectable clock: wall time, uptime and sleeping (Foundation only).
        .target(name: "Timekeeping", swiftSettings: strict),
        // libpq wrapper: connections, parameterised queries, transactions, LISTEN/NOTIFY, advisory locks.
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ", "Timekeeping",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // DigitalOcean API v2 client: droplet models, typed errors, shared rate budget.
        .target(
            name: "DigitalOcean",
            dependencies: [
                "Timekeeping", "BuildVersion",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // A DigitalOcean droplet API simulator as a library (tests run it in-process).
        .target(
            name: "DigitalOceanSimulator",
            dependencies: [
                "Timekeeping",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // A local stand-in for the Engine Hub: accepts agents over WebSocket, authenticates their
        // keys against agents.key_sha256 and keeps connected_at/last_seen_at.
        .target(
            name: "EngineHubSimulator",
            dependencies: [
                "Postgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "citrus-engine-sim",
            dependencies: [
                "EngineHubSimulator", "Postgres", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The pure reconcile decision: no I/O, no libpq, no HTTP.
        .target(name: "ReconcileCore", dependencies: ["Timekeeping"], swiftSettings: strict),
        // Schema migrations and the servers/events tables over Postgres.
        .target(
            name: "ServerStore",
            dependencies: [
                "Postgres", "ReconcileCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // sd_notify, the watchdog and the journald log handler.
        .target(
            name: "SystemdSupport",
            dependencies: [
                "Timekeeping", "TerminalText",
                "CSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The loop: observe, decide, act.
        .target(
            name: "Reconciler",
            dependencies: [
                "ReconcileCore", "ServerStore", "DigitalOcean", "Postgres", "Timekeeping", "TerminalText",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The Prometheus endpoint: /metrics and /healthz over a small SwiftNIO server.
        .target(
            name: "MetricsEndpoint",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "citrus-reconciler",
            dependencies: [
                "Reconciler", "ServerStore", "SystemdSupport", "DigitalOcean", "Postgres", "ReconcileCore",
                "Timekeeping", "MetricsEndpoint", "CommandLineSupport",
                "CProcessHardening", "BuildVersion",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "citrus-do-sim",
            dependencies: [
                "DigitalOceanSimulator", "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The deterministic simulation: the daemon's own loop, reconciler, leadership and rate
        // budget in a seeded world of simulated Postgres, DigitalOcean and operators.
        .target(
            name: "Simulation",
            dependencies: [
                "Reconciler", "ReconcileCore", "DigitalOcean", "DigitalOceanSimulator", "Timekeeping",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "citrus-simulate",
            dependencies: [
                "Simulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Benchmarks: the real binaries against Postgres and the simulator, beside a naive baseline.
        .executableTarget(
            name: "citrus-bench",
            dependencies: [
                "ReconcileCore", "Postgres", "CitrusTestKit", "Timekeeping",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        // Shared test support: a throwaway Postgres cluster, the simulator in-process, process helpers.
        .target(
            name: "CitrusTestKit",
            dependencies: [
                "Postgres", "DigitalOceanSimulator", "Timekeeping",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "TimekeepingTests", dependencies: ["Timekeeping"], swiftSettings: strict),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "Timekeeping", "CitrusTestKit"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DigitalOceanTests",
            dependencies: [
                "DigitalOcean", "DigitalOceanSimulator", "CitrusTestKit", "Timekeeping",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "ReconcileCoreTests", dependencies: ["ReconcileCore", "Timekeeping"], swiftSettings: strict),
        .testTarget(
            name: "EngineHubTests",
            dependencies: [
                "EngineHubSimulator", "Postgres", "ServerStore", "CitrusTestKit",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation"], swiftSettings: strict),
        .testTarget(name: "CommandLineSupportTests", dependencies: ["CommandLineSupport"], swiftSettings: strict),
        .testTarget(
            name: "MetricsEndpointTests",
            dependencies: [
                "MetricsEndpoint",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
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
                "Reconciler", "ReconcileCore", "ServerStore", "Postgres", "DigitalOcean", "DigitalOceanSimulator",
                "CitrusTestKit", "Timekeeping",
                "EngineHubSimulator",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SystemdSupportTests",
            dependencies: [
                "SystemdSupport", "CitrusTestKit", "ReconcileCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
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
