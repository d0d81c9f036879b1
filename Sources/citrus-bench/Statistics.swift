import Foundation

/// Small statistics over measured samples.
enum Statistics {
    static func median(_ values: [Double]) -> Double? {
        percentile(values, 50)
    }

    /// Nearest-rank percentile: the smallest sample with at least `p`% of samples at or below it.
    static func percentile(_ values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}

/// CPU time consumed by the calling thread, in seconds (`CLOCK_THREAD_CPUTIME_ID`).
func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// A process's memory from `/proc/PID/status`, in MiB.
struct ResidentSize: Sendable {
    /// `VmRSS`: resident now.
    var current: Double
    /// `VmHWM`: the peak resident size so far.
    var peak: Double

    static func of(pid: Int32) -> ResidentSize? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        func kibibytes(_ field: String) -> Double? {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
            return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }
        }
        guard let rss = kibibytes("VmRSS"), let hwm = kibibytes("VmHWM") else { return nil }
        return ResidentSize(current: rss / 1024, peak: hwm / 1024)
    }
}

extension Date {
    func seconds(since start: Date) -> Double { timeIntervalSince(start) }
}
