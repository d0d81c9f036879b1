import DigitalOcean
import DigitalOceanModel
import Foundation
import ReconcileCore
import Timekeeping

/// One replica's wire to DigitalOcean in virtual time, under the real `DigitalOceanClient`: the
/// request reaches the world's one model after a network delay drawn from the seed, and its
/// answer comes back after another, or never (the client's deadline passes). Delivery runs on
/// the world's timers, so a request on the wire takes effect even if its process freezes or dies.
struct VirtualTransport: DigitalOceanTransport {
    unowned let world: SimulationWorld
    unowned let process: SimulatedProcess

    func send(_ request: TransportRequest, timeout: Duration) async throws(TransportFailure) -> TransportResponse {
        let path = request.pathAndQuery.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        let creating = request.method == "POST" && path == "/v2/droplets" ? Self.identity(in: request.body) : nil
        let what = "\(request.method) \(request.pathAndQuery)" + (creating.map { " \(world.label($0))" } ?? "")
        process.recordSend(what, creating: creating, mutating: request.method != "GET")
        world.checkAsSent(request.method, path, body: request.body, by: process.name)

        let sentAt = world.time.now
        let deadline = sentAt.addingTimeInterval(timeout.timeInterval)
        let arrival = sentAt.addingTimeInterval(world.faults.networkDelay())
        let answerAt = arrival.addingTimeInterval(world.faults.networkDelay())
        let delivered = SimulatedDigitalOcean.Request(
            method: request.method,
            uri: request.pathAndQuery,
            headers: request.headers + [(SimulatedDigitalOcean.requestedByHeader, process.name)],
            body: request.body ?? []
        )
        let box = ValueBox<SimulatedDigitalOcean.Outcome>()
        let who = process.name
        world.time.schedule(at: arrival) { [world] in
            world.checkOnArrival(delivered, by: who)
            box.value = world.digitalOcean.handle(delivered)
            world.observeEffects()
        }
        do {
            if answerAt <= deadline {
                try await world.time.sleep(until: answerAt)
                if case .respond(let response, _) = box.value {
                    world.trace("\(process.name) ← \(what): \(response.status)", logged: true)
                    return TransportResponse(status: response.status, headers: response.headers, body: response.body)
                }
            }
            try await world.time.sleep(until: deadline)
        } catch {
            throw TransportFailure(summary: "cancelled", underlying: "CancellationError", mayHaveBeenSent: true)
        }
        world.trace("\(process.name) ← \(what): no answer", logged: true)
        return try Self.timedOut()
    }

    private static func timedOut() throws(TransportFailure) -> TransportResponse {
        throw TransportFailure(summary: "timed out", underlying: "deadline", mayHaveBeenSent: true)
    }

    /// The row whose identity tag a create's body carries.
    static func identity(in body: [UInt8]?) -> UUID? {
        guard let body, let document = try? JSONValue.parse(body) else { return nil }
        return document["tags"]?.arrayValue?.lazy.compactMap { $0.stringValue.flatMap(FleetTags.row(fromIdentityTag:)) }
            .first
    }
}

final class ValueBox<T>: @unchecked Sendable {
    var value: T?
}
