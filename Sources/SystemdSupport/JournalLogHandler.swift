import CSystemd
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Logging

/// A swift-log handler that writes each entry to the systemd journal with `sd_journal_sendv(3)`,
/// keeping metadata as structured fields.
///
/// Every entry has `MESSAGE`, `PRIORITY` (see ``priority(for:)``), `SYSLOG_IDENTIFIER`, `LOGGER`
/// (the logger's label) and `CODE_FILE`/`CODE_LINE`/`CODE_FUNC`. Each metadata key becomes a field
/// named by ``fieldName(forMetadataKey:)``, so `logger.info("…", metadata: ["SERVER_ID": "…"])`
/// can be found with `journalctl SERVER_ID=…`. Values may span lines. If the journal refuses the
/// entry (no journald), the entry is written to stderr as text instead of being lost.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// The logger's label, recorded as `LOGGER`.
    public let label: String
    /// `SYSLOG_IDENTIFIER`: what `journalctl -t` and the short output show.
    public let identifier: String

    public init(
        label: String,
        identifier: String,
        logLevel: Logger.Level = .info,
        metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider
    ) {
        self.label = label
        self.identifier = identifier
        self.logLevel = logLevel
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let fields = journalFields(for: event)
        if Self.send(fields) != 0 {
            var text = TextLogHandler(
                label: label,
                identifier: identifier,
                logLevel: logLevel,
                metadataProvider: metadataProvider
            )
            text.metadata = metadata
            text.log(event: event)
        }
    }

    /// The journal fields for one event, in the order they are sent. Pure, for tests.
    public func journalFields(for event: LogEvent) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [
            ("MESSAGE", event.message.description),
            ("PRIORITY", String(Self.priority(for: event.level))),
            ("SYSLOG_IDENTIFIER", identifier),
            ("LOGGER", label),
            ("CODE_FILE", event.file),
            ("CODE_LINE", String(event.line)),
            ("CODE_FUNC", event.function),
        ]
        let merged = Self.mergedMetadata(provider: metadataProvider, handler: metadata, event: event.metadata)
        for key in merged.keys.sorted() {
            guard var name = Self.fieldName(forMetadataKey: key), let value = merged[key] else { continue }
            if Self.reservedFields.contains(name) { name = "META_" + name }
            fields.append((name, "\(value)"))
        }
        if let error = event.error {
            fields.append(("ERROR", "\(error)"))
        }
        return fields
    }

    /// Fields this handler sets itself; a metadata key that maps to one of them is prefixed with
    /// `META_` rather than creating a second, conflicting value.
    static let reservedFields: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERROR",
    ]

    /// The journal field name for a metadata key, or `nil` if nothing usable is left.
    ///
    /// Journal field names are `[A-Z0-9_]`, at most 64 characters, and may not start with a digit
    /// or an underscore (those are the journal's trusted fields). Letters are upper-cased, every
    /// other character becomes `_`, leading underscores are dropped, a leading digit gets an `F_`
    /// prefix, and the result is cut to 64 characters. `server_id` → `SERVER_ID`,
    /// `do.request-id` → `DO_REQUEST_ID`, `_pid` → `PID`, `2fa` → `F_2FA`.
    public static func fieldName(forMetadataKey key: String) -> String? {
        var name = ""
        name.reserveCapacity(key.utf8.count)
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                name.append(Character(Unicode.Scalar(byte)))
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                name.append(Character(Unicode.Scalar(byte - 32)))
            case 0x80..<0xC0:
                // Continuation byte of a multi-byte character: that character is already one `_`.
                continue
            default:
                name.append("_")
            }
        }
        while name.first == "_" { name.removeFirst() }
        guard let first = name.first else { return nil }
        if first.isNumber { name = "F_" + name }
        if name.count > 64 { name = String(name.prefix(64)) }
        return name
    }

    /// The syslog priority for a level: trace and debug 7, info 6, notice 5, warning 4, error 3,
    /// critical 2 (`crit`).
    public static func priority(for level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func mergedMetadata(
        provider: Logger.MetadataProvider?,
        handler: Logger.Metadata,
        event: Logger.Metadata?
    ) -> Logger.Metadata {
        var merged = provider?.get() ?? [:]
        merged.merge(handler) { _, new in new }
        if let event { merged.merge(event) { _, new in new } }
        return merged
    }

    /// Sends `NAME=value` fields with one `sd_journal_sendv` call; returns its result (0 or -errno).
    static func send(_ fields: [(name: String, value: String)]) -> Int32 {
        let encoded = fields.map { Array("\($0.name)=\($0.value)".utf8) }
        let total = encoded.reduce(0) { $0 + $1.count }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 1)
        defer { storage.deallocate() }
        var vectors = [iovec]()
        vectors.reserveCapacity(encoded.count)
        var offset = 0
        for bytes in encoded {
            let slice = UnsafeMutableRawBufferPointer(rebasing: storage[offset..<(offset + bytes.count)])
            slice.copyBytes(from: bytes)
            vectors.append(iovec(iov_base: slice.baseAddress, iov_len: bytes.count))
            offset += bytes.count
        }
        return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
    }
}
