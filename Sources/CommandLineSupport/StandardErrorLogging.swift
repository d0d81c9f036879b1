import ArgumentParser
import Logging

/// Bootstraps swift-log with swift-log's own text handler on stderr at `level`, for the
/// development tools (the simulators); call once, from `main` only. The daemon logs through
/// SystemdSupport's handlers instead.
public func bootstrapStandardErrorLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// `--log-level trace|debug|info|notice|warning|error|critical`.
extension Logger.Level: @retroactive ExpressibleByArgument {}
