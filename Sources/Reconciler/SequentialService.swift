import ServiceLifecycle

/// Runs one service after another as a single service: start-up, then the loop. The second
/// never starts when the first ended because of graceful shutdown or cancellation.
public struct SequentialService: Service {
    let first: any Service
    let second: any Service

    public init(_ first: any Service, _ second: any Service) {
        self.first = first
        self.second = second
    }

    public func run() async throws {
        try await first.run()
        guard !Task.isShuttingDownGracefully, !Task.isCancelled else { return }
        try await second.run()
    }
}
