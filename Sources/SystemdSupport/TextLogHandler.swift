#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif
import Logging
import TerminalText

/// A swift-log handler that writes one readable line per entry to stderr (or another descriptor):
///
///     2025-05-20T14:03:07.125Z warning citrus-reconciler: droplet create failed server_id=3f2… status=503
///
/// Timestamps are UTC with milliseconds. Metadata is sorted `key=value`; values with spaces,
/// quotes, `=` or control characters are quoted, and control characters are escaped (see
/// ``escape(_:)``) so one entry is always one line and cannot drive a terminal.
/// Each line is written with a single `write(2)` so lines from concurrent tasks never interleave.
public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    /// Printed before the message, like syslog's identifier.
    public let identifier: String
    private let fileDescriptor: Int32

    public init(
        label: String,
        identifier: String,
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider,
        fileDescriptor: Int32 = STDERR_FILENO
    ) {
        self.label = label
        self.identifier = identifier
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
        self.fileDescriptor = fileDescriptor
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = format(event, at: Date())
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }

    /// The line for one event, without the trailing newline. Pure, for tests.
    public func format(_ event: LogEvent, at date: Date) -> String {
        var line = Self.timestamp(date)
        line += " \(event.level.rawValue) \(identifier): "
        line += Self.escape(event.message.description)
        let merged = JournalLogHandler.mergedMetadata(
            provider: metadataProvider,
            handler: metadata,
            event: event.metadata
        )
        for key in merged.keys.sorted() {
            line += " \(Self.escape(key))=\(Self.quoteIfNeeded("\(merged[key]!)"))"
        }
        if let error = event.error {
            line += " error=\(Self.quoteIfNeeded("\(error)"))"
        }
        return line
    }

    static func timestamp(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        let millis = Int((interval - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let date =
            "\(digits(Int(parts.tm_year) + 1900, 4))-\(digits(Int(parts.tm_mon) + 1, 2))-\(digits(Int(parts.tm_mday), 2))"
        let time = "\(digits(Int(parts.tm_hour), 2)):\(digits(Int(parts.tm_min), 2)):\(digits(Int(parts.tm_sec), 2))"
        return "\(date)T\(time).\(digits(min(millis, 999), 3))Z"
    }

    /// `value` in decimal, zero-padded to `width` digits (`%0*d`).
    private static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    /// One entry is one line, and nothing in it can drive the terminal that shows it
    /// (`TerminalText.escaped`).
    static func escape(_ text: String) -> String {
        TerminalText.escaped(text)
    }

    static func quoteIfNeeded(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty
            || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || TerminalText.needsEscape($0) }
        guard needsQuotes else { return value }
        let escaped = escape(
            value.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"")
        )
        return "\"\(escaped)\""
    }
}
