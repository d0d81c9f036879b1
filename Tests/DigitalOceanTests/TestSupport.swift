import AsyncHTTPClient
import CitrusTestKit
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import DigitalOcean
@testable import DigitalOceanHTTP
@testable import DigitalOceanModel
@testable import DigitalOceanSimulator

/// A client for the harness's simulator with fast retries, shut down after `body`.
func withClient<T: Sendable>(
    simulator configuration: SimulatorConfiguration = SimulatorHarness.testConfiguration(),
    token: String? = nil,
    budget: RateBudget = RateBudget(),
    tweak: (inout DigitalOceanClient.Configuration) -> Void = { _ in },
    _ body: (DigitalOceanClient, SimulatorHarness.Running) async throws -> T
) async throws -> T {
    try await SimulatorHarness.withSimulator(configuration: configuration) { running in
        var config = DigitalOceanClient.Configuration(
            token: DigitalOceanToken(token ?? running.token),
            baseURL: running.baseURL,
            version: "test"
        )
        config.retry.initialBackoff = .milliseconds(10)
        config.retry.maximumBackoff = .milliseconds(80)
        config.connectTimeout = .seconds(2)
        config.requestTimeout = .seconds(10)
        tweak(&config)
        let client = DigitalOceanClient(
            configuration: config,
            rateBudget: budget,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        do {
            let result = try await body(client, running)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

/// Runs `operation` and returns the DigitalOcean error it throws (a test failure if it does not).
func expectFailure<T>(
    _ operation: () async throws(DigitalOceanError) -> T,
    sourceLocation: SourceLocation = #_sourceLocation
) async -> DigitalOceanError? {
    do {
        let value = try await operation()
        Issue.record("expected a DigitalOceanError, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// Polls `condition` every 10 ms for at most `timeout`.
func eventually(timeout: Duration = .seconds(5), _ condition: () async -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

let documentationPrefixes = ["192.0.2.", "198.51.100.", "203.0.113."]

/// A plain HTTP call to the simulator (to look at raw responses).
struct RawResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: Data

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

func raw(_ method: HTTPMethod, _ url: String, token: String?, body: String? = nil) async throws -> RawResponse {
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    if let body {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
    return RawResponse(
        status: Int(response.status.code),
        headers: response.headers.map { ($0.name, $0.value) },
        body: Data(bytes.readableBytesView)
    )
}
