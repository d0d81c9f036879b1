import Foundation

/// Per-token sliding windows, as DigitalOcean counts: 250 a minute, 5,000 an hour.
extension SimulatedAccount {
    /// Counts a request against `token`'s windows, or refuses it with a 429 (not counted) when a
    /// window is full. Sets the rate headers every answer carries.
    mutating func count(
        token: String,
        now: Date,
        context: inout ResponseContext
    ) -> SimulatedDigitalOcean.Response? {
        var window = windows[token] ?? TokenWindow()
        let nowSeconds = now.timeIntervalSince1970
        window.prune(now: nowSeconds, limits: rateLimits)
        defer { windows[token] = window }
        if window.inHour >= rateLimits.perHour {
            context.rateHeaders = rateHeaders(window: window, now: now)
            return error(429, "too_many_requests", "API rate limit exceeded.", context)
        }
        if window.inMinute >= rateLimits.perMinute {
            context.rateHeaders = rateHeaders(window: window, now: now)
            let oldest = window.oldestInMinute ?? nowSeconds
            let retryAfter = max(1, Int((oldest + rateLimits.minuteWindowSeconds - nowSeconds).rounded(.up)))
            var response = error(429, "too_many_requests", "API rate limit exceeded.", context)
            response.headers.append(("retry-after", String(retryAfter)))
            return response
        }
        window.times.append(nowSeconds)
        context.rateHeaders = rateHeaders(window: window, now: now)
        return nil
    }

    func rateHeaders(window: TokenWindow, now: Date) -> [(name: String, value: String)] {
        let reset =
            window.oldestInHour.map { Int64(($0 + rateLimits.hourWindowSeconds).rounded(.up)) }
            ?? Int64(now.timeIntervalSince1970)
        return [
            ("ratelimit-limit", String(rateLimits.perHour)),
            ("ratelimit-remaining", String(max(0, rateLimits.perHour - window.inHour))),
            ("ratelimit-reset", String(reset)),
        ]
    }
}
