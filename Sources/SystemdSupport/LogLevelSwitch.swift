import Logging
import Synchronization

/// The daemon's minimum log level, changeable while it runs (`systemctl reload`).
///
/// Loggers made by ``bootstrapLogging(format:identifier:level:)`` with a switch read it at every
/// log call, so a change applies at once to every logger, including copies made before it. A
/// logger whose own `logLevel` was set keeps that level.
public final class LogLevelSwitch: Sendable {
    private let current: Atomic<Int>

    public init(_ level: Logger.Level) {
        current = Atomic(Self.index(level))
    }

    public var level: Logger.Level {
        get { Logger.Level.allCases[current.load(ordering: .relaxed)] }
        set { current.store(Self.index(newValue), ordering: .relaxed) }
    }

    private static func index(_ level: Logger.Level) -> Int {
        Logger.Level.allCases.firstIndex(of: level) ?? Logger.Level.allCases.firstIndex(of: .info)!
    }
}

/// Wraps a handler so that its level follows a ``LogLevelSwitch`` until someone sets it.
public struct SwitchedLogHandler<Base: LogHandler>: LogHandler {
    private var base: Base
    private let levelSwitch: LogLevelSwitch
    /// Set through `logLevel`: this logger's own level, which the switch no longer changes.
    private var pinned: Logger.Level?

    public init(_ base: Base, levelSwitch: LogLevelSwitch) {
        var base = base
        // The base sees every entry the switch lets through.
        base.logLevel = .trace
        self.base = base
        self.levelSwitch = levelSwitch
    }

    public var logLevel: Logger.Level {
        get { pinned ?? levelSwitch.level }
        set { pinned = newValue }
    }

    public var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        guard event.level >= logLevel else { return }
        base.log(event: event)
    }
}
