import Logging

/// Log lines of the daemon's own code, in the trace (verbose runs only).
struct TraceLogHandler: LogHandler {
    unowned let world: SimulationWorld
    let process: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        world.trace("\(process) [\(event.level)] \(world.stableIDs(in: "\(event.message)"))", logged: true)
    }
}
