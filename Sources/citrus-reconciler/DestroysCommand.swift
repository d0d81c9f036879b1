import ArgumentParser
import CommandLineSupport
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import OperatorReports
import ReconcileCore
import ServerStore
import Timekeeping

/// `citrus-reconciler destroys`: the destroy brake from the operator's side.
struct Destroys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The destroy brake: allow destroys past the budget, or see where it stands.",
        subcommands: [Allow.self, Show.self]
    )

    struct Allow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allow destroys past the destroy budget until a time.",
            discussion: """
                While the allowance is in force the running daemon sends every destroy that waits \
                (rows with delete_requested_at, and orphans under --orphans delete), whatever the \
                budget says; it is woken at once (NOTIFY). The allowance is recorded in \
                destroy_allowances with the database user and the reason. It stands for: \
                INSERT INTO destroy_allowances (allowed_until, reason) VALUES (now() + interval '2 hours', '…'); \
                SELECT pg_notify('citrus_servers', 'destroys-allowed');
                """
        )

        @OptionGroup var database: DatabaseOptions

        @Option(
            help: ArgumentHelp(
                "An ISO-8601 time (2026-12-07T22:00:00Z) or a duration from now (30m, 2h), up to 7 days.",
                valueName: "time"
            )
        )
        var until: String

        @Option(help: ArgumentHelp("Why, for the record (destroy_allowances.reason).", valueName: "text"))
        var reason: String?

        func run() async throws {
            let when: (date: Date?, duration: Duration?)
            do throws(ConfigurationError) {
                when = try Self.parse(until, now: Date())
            } catch {
                throw error.report(command: "destroys allow")
            }
            let connection = try await database.connect(
                command: "destroys allow",
                environment: ProcessInfo.processInfo.environment
            )
            let outcome: Result<String, Events.Failure>
            do {
                let allowance = try await ServerStore(connection: connection).allowDestroys(
                    until: when.date,
                    for: when.duration,
                    reason: reason
                )
                outcome = .success(
                    "destroys allowed past the budget until \(allowance.allowedUntil.formatted(.iso8601)) "
                        + "(by \(Reports.escaped(allowance.createdBy))"
                        + (allowance.reason.map { ": \(Reports.escaped($0))" } ?? "")
                        + "); the daemon sends those that wait at once"
                )
            } catch {
                outcome = .failure(Events.Failure("\(error)"))
            }
            await connection.close()
            try Events.Failure.finish(outcome, command: "destroys allow")
        }

        /// `--until`: an ISO-8601 time in the future, or a duration; either up to 7 days ahead.
        static func parse(_ text: String, now: Date) throws(ConfigurationError) -> (date: Date?, duration: Duration?) {
            let week: Duration = .seconds(7 * 24 * 3600)
            if let duration = DurationText.parse(text) {
                guard duration > .zero, duration <= week else {
                    throw ConfigurationError("--until \"\(text)\" must be a duration from 1s to 7d")
                }
                return (nil, duration)
            }
            guard let date = try? Date(text, strategy: .iso8601) else {
                throw ConfigurationError(
                    "--until \"\(text)\" is neither an ISO-8601 time (2026-12-07T22:00:00Z) nor a duration (2h)"
                )
            }
            guard date > now, date.timeIntervalSince(now) <= week.timeInterval else {
                throw ConfigurationError("--until \(text) must be in the future, at most 7 days ahead")
            }
            return (date, nil)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Destroys in the last hour, allowances in force, and whether the daemon brakes."
        )

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let connection = try await database.connect(
                command: "destroys status",
                environment: ProcessInfo.processInfo.environment
            )
            let outcome: Result<String, Events.Failure>
            do {
                let store = ServerStore(connection: connection)
                outcome = .success(try await Destroys.report(store, now: try await store.now()))
            } catch {
                outcome = .failure(Events.Failure("\(error)"))
            }
            await connection.close()
            try Events.Failure.finish(outcome, command: "destroys status")
        }
    }

    /// The brake in a few lines, for `destroys status` and `status`.
    static func report(_ store: ServerStore, now: Date) async throws -> String {
        let (destroyed, allowances, lastWord) = try await store.destroyBrakeReport()
        var lines = ["Destroys in the last hour: \(destroyed) (duplicates' aside)"]
        if let word = lastWord, word.kind == .destroysBraked {
            let ago = DurationText.format(.seconds(max(0, Int64(now.timeIntervalSince(word.at)))))
            lines.append(
                "Destroys BRAKED since \(word.at.formatted(.iso8601)) (\(ago) ago): \(Reports.escaped(word.message))"
            )
        } else {
            lines.append("Destroys braked: no")
        }
        for allowance in allowances {
            lines.append(
                "Destroys allowed past the budget until \(allowance.allowedUntil.formatted(.iso8601)) by "
                    + Reports.escaped(allowance.createdBy)
                    + (allowance.reason.map { " (\(Reports.escaped($0)))" } ?? "")
            )
        }
        return lines.joined(separator: "\n")
    }
}
