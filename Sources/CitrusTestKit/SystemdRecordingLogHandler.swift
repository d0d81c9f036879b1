import Logging
import Synchronization

/// Collects log entries in memory so tests can assert on what was logged (never on stdout).
///
///     let recorder = RecordingLogHandler.Recorder()
///     let logger = Logger(label: "test") { RecordingLogHandler(label: $0, recorder: recorder) }
///     ...
///     #expect(recorder.entries.contains { $0.metadata["MESSAGE_ID"] == "…" })
public struct RecordingLogHandler: LogHandler {
    public struct Entry: Sendable {
        public var label: String
        public var level: Logger.Level
        public var message: String
        /// Handler, provider and call-site metadata merged, values rendered as strings.
        public var metadata: [String: String]
        public var source: String
        public var file: String
        public var function: String
        public var line: UInt
    }

    public final class Recorder: Sendable {
        private let storage = Mutex<[Entry]>([])
        public init() {}
        public var entries: [Entry] { storage.withLock { $0 } }
        public func removeAll() { storage.withLock { $0.removeAll() } }
        func append(_ entry: Entry) { storage.withLock { $0.append(entry) } }
    }

    public let label: String
    public let recorder: Recorder
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(
        label: String,
        recorder: Recorder,
        logLevel: Logger.Level = .trace,
        metadataProvider: Logger.MetadataProvider? = nil
    ) {
        self.label = label
        self.recorder = recorder
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadataProvider?.get() ?? [:]
        merged.merge(metadata) { _, new in new }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        recorder.append(
            Entry(
                label: label,
                level: event.level,
                message: event.message.description,
                metadata: merged.mapValues { "\($0)" },
                source: event.source,
                file: event.file,
                function: event.function,
                line: event.line
            )
        )
    }
}
