import Foundation

// Reading a scale run as it goes: the simulator's request log (full lists, what each request was),
// the daemon's CPU time from /proc, and the daemon's log as it grows.

// MARK: The request log at scale

extension LoggedRequest {
    /// The query's items, percent-decoded.
    var queryItems: [(String, String)] {
        guard let query = path.split(separator: "?", maxSplits: 1).dropFirst().first else { return [] }
        return query.split(separator: "&").map { item in
            let parts = item.split(separator: "=", maxSplits: 1)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            return (name, value)
        }
    }

    /// For a list: the tag it asks for.
    var listTag: String? { queryItems.last { $0.0 == "tag_name" }?.1 }

    /// For a list: the page it asks for (1 when it names none).
    var listPage: Int { queryItems.last { $0.0 == "page" }.flatMap { Int($0.1) } ?? 1 }

    /// A list by one row's identity tag (`tag_name=citrus-server:<uuid>`): a targeted read.
    var isTargetedList: Bool { isList && listTag?.hasPrefix("citrus-server:") == true }

    /// A page of a list of the whole fleet (`tag_name=citrus-host`).
    var isFullListPage: Bool { isList && !isTargetedList }

    var isDropletGet: Bool { method == "GET" && route == "/v2/droplets/{droplet_id}" }
}

/// A window of the request log, by kind.
struct ScaleTally: Sendable {
    var total = 0
    var fullListPages = 0
    var targetedLists = 0
    var dropletGets = 0
    var creates = 0
    var other = 0
    var tooManyRequests = 0

    init<Requests: Sequence>(_ log: Requests) where Requests.Element == LoggedRequest {
        for request in log {
            total += 1
            if request.status == 429 { tooManyRequests += 1 }
            if request.isFullListPage {
                fullListPages += 1
            } else if request.isTargetedList {
                targetedLists += 1
            } else if request.isDropletGet {
                dropletGets += 1
            } else if request.isCreate {
                creates += 1
            } else {
                other += 1
            }
        }
    }

    var breakdown: String {
        var parts: [String] = []
        if fullListPages > 0 { parts.append("full-list pages \(fullListPages)") }
        if targetedLists > 0 { parts.append("lists by identity tag \(targetedLists)") }
        if dropletGets > 0 { parts.append("GETs by id \(dropletGets)") }
        if creates > 0 { parts.append("creates \(creates)") }
        if other > 0 { parts.append("other \(other)") }
        if tooManyRequests > 0 { parts.append("answered 429: \(tooManyRequests)") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }
}

/// One full list of the fleet as the simulator logged it: from its first page answered 200 to the
/// last page it read before the next list's first page.
struct FullListSpan: Sendable {
    var start: Date
    var end: Date
    /// The highest page answered 200.
    var pages: Int
    /// Every `/v2` request from its first page to its last, both included (targeted reads between
    /// its pages too).
    var tally: ScaleTally
    var seconds: Double { end.timeIntervalSince(start) }

    static func all(in log: [LoggedRequest]) -> [FullListSpan] {
        let sorted = log.sorted { $0.sequence < $1.sequence }
        let starts = sorted.indices.filter {
            sorted[$0].isFullListPage && sorted[$0].listPage == 1 && sorted[$0].status == 200
        }
        return starts.enumerated().map { k, first in
            let limit = k + 1 < starts.count ? starts[k + 1] : sorted.count
            let pages = (first..<limit).filter { sorted[$0].isFullListPage && sorted[$0].status == 200 }
            let last = pages.last ?? first
            return FullListSpan(
                start: sorted[first].time,
                end: sorted[last].time,
                pages: pages.map { sorted[$0].listPage }.max() ?? 1,
                tally: ScaleTally(sorted[first...last])
            )
        }
    }
}

// MARK: The daemon as a process

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`, in seconds.
func processCPUSeconds(pid: Int32) -> Double? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    // After "comm)": state(3) ppid(4) ... utime(14) stime(15); index 0 here is field 3.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Lines a process appends to its log file, read from where the last call stopped.
final class LogTail {
    let url: URL
    private var offset: UInt64 = 0
    private var partial = Data()

    init(_ url: URL) { self.url = url }

    func newLines() -> [String] {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return [] }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return [] }
        offset += UInt64(data.count)
        partial.append(data)
        guard let lastNewline = partial.lastIndex(of: UInt8(ascii: "\n")) else { return [] }
        let complete = partial[partial.startIndex..<lastNewline]
        partial = Data(partial[partial.index(after: lastNewline)...])
        return String(decoding: complete, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}

/// The daemon's line for a completed full list, from "full list:" to the end of the line (the
/// text log handler puts the time, level and label before it, and metadata after).
func fullListMessage(in line: String) -> String? {
    guard let range = line.range(of: "full list: "), !line.contains("pages read so far") else { return nil }
    // The text handler appends metadata as ` KEY=value`; the message is what comes before.
    var words: [Substring] = []
    for word in line[range.lowerBound...].split(separator: " ", omittingEmptySubsequences: false) {
        if let equals = word.firstIndex(of: "="), word[..<equals].allSatisfy({ $0.isUppercase || $0 == "_" }) {
            break
        }
        words.append(word)
    }
    let message = words.joined(separator: " ")
    return message.count > 200 ? String(message.prefix(200)) + "…" : message
}
