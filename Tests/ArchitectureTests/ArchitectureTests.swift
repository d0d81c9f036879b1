import Foundation
import Testing

/// The layers `Package.swift` promises: the decision core, the loop and the simulation reach
/// neither libpq, the HTTP client nor NIO; adapter targets implement the loop's ports with them.
enum Layers {
    /// The targets that must stay free of I/O libraries, directly and through other targets.
    static let ioFree = ["ReconcileCore", "Reconciler", "Simulation"]

    /// The targets that must not know any adapter or provider (the loop talks to its ports only).
    static let adapterFree = ["ReconcileCore", "Reconciler"]

    /// The adapters and what they adapt: a store, a provider's client and its transport.
    static func isAdapter(_ node: TargetGraph.Node) -> Bool {
        guard case .target(let name) = node else { return isIO(node) }
        return ["ServerStore", "PostgresAdapter", "DigitalOcean", "DigitalOceanHTTP", "DigitalOceanAdapter"]
            .contains(name) || name.hasSuffix("Model") || name.hasSuffix("Simulator") || isIO(node)
    }

    /// libpq and its wrapper, AsyncHTTPClient, and every product of a SwiftNIO package.
    static func isIO(_ node: TargetGraph.Node) -> Bool {
        switch node {
        case .target(let name): ["CLibPQ", "Postgres"].contains(name)
        case .product(let name, let package): name == "AsyncHTTPClient" || package.hasPrefix("swift-nio")
        }
    }
}

@Suite("Package.swift draws the architecture")
struct ArchitectureTests {
    @Test(
        "the core, the loop and the simulation reach neither libpq, AsyncHTTPClient nor NIO",
        arguments: Layers.ioFree
    )
    func ioFree(target: String) throws {
        let graph = try Self.packageGraph.get()
        try #require(graph.dependencies[target] != nil, "Package.swift has no target \(target)")
        let paths = graph.forbiddenPaths(from: target, isForbidden: Layers.isIO)
        if !paths.isEmpty { Issue.record("\(target) reaches I/O:\n\(Self.describe(paths))") }
    }

    @Test("the core and the loop know no adapter and no provider's client", arguments: Layers.adapterFree)
    func adapterFree(target: String) throws {
        let graph = try Self.packageGraph.get()
        try #require(graph.dependencies[target] != nil, "Package.swift has no target \(target)")
        let paths = graph.forbiddenPaths(from: target, isForbidden: Layers.isAdapter)
        if !paths.isEmpty { Issue.record("\(target) reaches an adapter:\n\(Self.describe(paths))") }
    }

    @Test("a library reached through other targets is found, with the chain that leads to it")
    func indirectPaths() {
        let graph = TargetGraph(dependencies: [
            "Loop": [.target("Core"), .target("Client")],
            "Core": [],
            "Client": [.target("Core"), .product(name: "NIOCore", package: "swift-nio")],
        ])
        let paths = graph.forbiddenPaths(from: "Loop", isForbidden: Layers.isIO)
        #expect(Self.describe(paths) == "Loop → Client → NIOCore (swift-nio)")
        #expect(graph.forbiddenPaths(from: "Core", isForbidden: Layers.isIO).isEmpty)
    }

    static func describe(_ paths: [[TargetGraph.Node]]) -> String {
        paths.map { $0.map(\.description).joined(separator: " → ") }.joined(separator: "\n")
    }

    /// This package's targets, read once. `CITRUS_PACKAGE_PATH` names another checkout to check
    /// instead (to see the check fail on an older `Package.swift`).
    static let packageGraph = Result {
        let root =
            ProcessInfo.processInfo.environment["CITRUS_PACKAGE_PATH"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        return try TargetGraph(dumpedPackage: try dumpPackage(at: root))
    }

    /// `swift package dump-package`, with a scratch directory of its own: the package's `.build` is
    /// locked by the `swift test` that runs this.
    static func dumpPackage(at root: String) throws -> Data {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("dump-package-\(UUID())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "swift", "package", "--package-path", root, "--scratch-path", scratch.path, "dump-package",
        ]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let json = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw DumpFailed(status: process.terminationStatus) }
        return json
    }

    struct DumpFailed: Error, CustomStringConvertible {
        var status: Int32
        var description: String { "swift package dump-package exited with status \(status)" }
    }
}
