import Testing
import Timekeeping

@Suite("Durations as operators write and read them")
struct DurationTextTests {
    @Test(
        "parse reads units, compounds, fractions and bare seconds, to the millisecond",
        arguments: [
            ("500ms", Duration.milliseconds(500)), ("30s", .seconds(30)), ("1.5s", .milliseconds(1500)),
            (".25s", .milliseconds(250)),
            ("5m", .seconds(300)), ("1h", .seconds(3600)), ("1h30m", .seconds(5400)), ("2m30s", .seconds(150)),
            ("1d", .seconds(86_400)),
            ("1m0.5s", .milliseconds(60_500)), ("45", .seconds(45)), ("0.1", .milliseconds(100)),
            (" 10S ", .seconds(10)), ("0s", .zero),
        ]
    )
    func parses(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected, "\(text)")
    }

    @Test(
        "parse refuses what is not a duration, negative, non-finite or absurdly long, instead of trapping",
        arguments: [
            "", "s", "ms", "soon", "-5s", "5 s", "1e300s", "1e3", "inf", "nan", "infs", "1.2.3s", "5x", "5sm", "1h-30m",
            "99999999999999999999h", "3650000d", String(repeating: "9", count: 400), "1.7976931348623157e308",
        ]
    )
    func refuses(text: String) {
        #expect(DurationText.parse(text) == nil, "\(text)")
    }

    @Test("the longest accepted duration is 100 years; one millisecond more is refused")
    func maximum() {
        #expect(DurationText.parse("36500d") == DurationText.maximum)
        #expect(DurationText.parse("36500d1ms") == nil)
    }

    @Test(
        "format prints what an operator reads: 1.5s, 2m30s, never 1.5456844615905658 seconds",
        arguments: [
            (Duration.milliseconds(1500), "1.5s"), (.seconds(1.5456844615905658), "1.546s"), (.seconds(150), "2m30s"),
            (.milliseconds(250), "250ms"), (.zero, "0s"), (.seconds(-3), "0s"), (.seconds(30), "30s"),
            (.milliseconds(1005), "1.005s"),
            (.seconds(900), "15m"), (.seconds(5400), "1h30m"), (.seconds(86_400), "1d"), (.seconds(90_061), "1d1h1m1s"),
            (.milliseconds(150_400), "2m30s"), (.milliseconds(59_999), "59.999s"), (.microseconds(59_999_600), "1m"),
        ]
    )
    func formats(duration: Duration, expected: String) {
        #expect(DurationText.format(duration) == expected)
    }

    @Test("whatever format prints, parse reads back (to the millisecond below a minute, the second above)")
    func formatRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let milliseconds = Int64.random(in: 0...(3 * 86_400_000), using: &generator)
            let duration = Duration.milliseconds(milliseconds)
            let text = DurationText.format(duration)
            let back = DurationText.parse(text)
            let precision: Duration = milliseconds < 60_000 ? .zero : .milliseconds(500)
            #expect(
                back.map { abs($0 - duration) <= precision } == true,
                "\(milliseconds) ms → \(text) → \(back.map { "\($0)" } ?? "nil")"
            )
        }
        #expect(!DurationText.format(.seconds(1e12)).isEmpty)  // far past anything parse accepts: still no trap
    }
}

private func abs(_ duration: Duration) -> Duration { duration < .zero ? .zero - duration : duration }
