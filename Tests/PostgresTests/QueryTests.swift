import CitrusTestKit
import Foundation
import Postgres
import Testing

@Suite("Queries against a real server")
struct QueryTests {
    @Test("bind parameters carry quotes, NULL, unicode and SQL metacharacters as plain data")
    func bindsAreData() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("CREATE TABLE notes (id serial PRIMARY KEY, body text, other text)")
            let hostile = [
                "O'Reilly", "'; DROP TABLE notes; --", "$1", "\"quoted\"", "back\\slash\\", "Zürich 🍋 ⅓", "",
                "line\nbreak\ttab", "%_*", "E'\\x41'",
            ]
            for body in hostile {
                let none: String? = nil
                try await connection.query("INSERT INTO notes (body, other) VALUES (\(body), \(none))")
            }
            let rows = try await connection.query("SELECT body, other FROM notes ORDER BY id")
            #expect(try rows.map { try $0.decode(String.self, "body") } == hostile)
            #expect(try rows.allSatisfy { try $0.decode(String?.self, "other") == nil })
            let count = try await connection.query("SELECT count(*) AS n FROM notes WHERE body = \("O'Reilly")")
                .single()
            #expect(try count.decode(Int.self, "n") == 1)
        }
    }

    @Test("every supported type decodes, by name and by index")
    func decodesEveryType() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let id = UUID()
            let when = Date(timeIntervalSince1970: 1_700_000_000.123456)
            let row = try await connection.query(
                """
                SELECT \("hé") AS text, \(id) AS id, \(Int64.max) AS big, \(Int32(-7)) AS small,
                       \(42) AS int, \(true) AS yes, false AS no, \(when) AS at, \(2.5) AS ratio,
                       'NaN'::float8 AS nan, NULL::int AS missing, \(Int?.none) AS bound_null
                """
            ).single()
            #expect(try row.decode(String.self, "text") == "hé")
            #expect(try row.decode(UUID.self, "id") == id)
            #expect(try row.decode(Int64.self, "big") == Int64.max)
            #expect(try row.decode(Int32.self, "small") == -7)
            #expect(try row.decode(Int.self, "int") == 42)
            #expect(try row.decode(Bool.self, "yes") == true)
            #expect(try row.decode(Bool.self, "no") == false)
            #expect(abs(try row.decode(Date.self, "at").timeIntervalSince(when)) < 0.000_001)
            #expect(try row.decode(Double.self, "ratio") == 2.5)
            #expect(try row.decode(Double.self, "nan").isNaN)
            #expect(try row.decode(Int?.self, "missing") == nil)
            #expect(try row.decode(Int?.self, "bound_null") == nil)
            #expect(try row.decode(String.self, at: 0) == "hé")
            #expect(try row.decode(Int32?.self, at: 3) == -7)
        }
    }

    @Test("timestamps decode correctly whatever the session time zone")
    func timestampsInAnyZone() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let when = Date(timeIntervalSince1970: 1_234_567_890.5)
            for zone in ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"] {
                try await connection.query(PostgresQuery(unsafeSQL: "SET TIME ZONE '\(zone)'"))
                let row = try await connection.query(
                    "SELECT \(when)::timestamptz AS at, '1900-01-01 00:00:00+00'::timestamptz AS old"
                ).single()
                #expect(try row.decode(Date.self, "at") == when, "zone \(zone)")
                #expect(try row.decode(Date.self, "old") == Date(timeIntervalSince1970: -2_208_988_800), "zone \(zone)")
            }
        }
    }

    @Test("a value that does not fit names the column and the type")
    func decodingErrorNamesColumn() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let row = try await connection.query(
                "SELECT 'abc' AS droplet, NULL::int8 AS attempts, 3000000000::int8 AS large"
            ).single()
            let notANumber = #expect(throws: PostgresError.self) { try row.decode(Int64.self, "droplet") }
            #expect(notANumber?.code == .decoding)
            #expect(notANumber?.column == "droplet")
            #expect(notANumber?.description.contains("droplet") == true)
            #expect(notANumber?.description.contains("Int64") == true)
            let null = #expect(throws: PostgresError.self) { try row.decode(Int.self, "attempts") }
            #expect(null?.code == .decoding)
            #expect(null?.description.contains("NULL") == true)
            let overflow = #expect(throws: PostgresError.self) { try row.decode(Int32.self, "large") }
            #expect(overflow?.column == "large")
            let missing = #expect(throws: PostgresError.self) { try row.decode(Int.self, "nope") }
            #expect(missing?.code == .invalidQuery)
        }
    }

    @Test("server errors carry SQLSTATE and the primary message")
    func serverErrors() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT * FROM no_such_table")
            }
            #expect(error?.code == .server)
            #expect(error?.sqlState == PostgresError.SQLState.undefinedTable)
            #expect(error?.message.contains("no_such_table") == true)
            // The session is still usable after a statement error.
            #expect(try await connection.query("SELECT 1 AS one").single().decode(Int.self, "one") == 1)
        }
    }

    @Test("transactions commit, and roll back when the body throws")
    func transactions() async throws {
        struct Boom: Error {}
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("CREATE TABLE t (v int)")
            try await connection.transaction { try await $0.query("INSERT INTO t VALUES (1)") }
            await #expect(throws: Boom.self) {
                try await connection.transaction { connection in
                    try await connection.query("INSERT INTO t VALUES (2)")
                    throw Boom()
                }
            }
            // A swallowed statement error makes COMMIT a rollback; that must not pass silently.
            await #expect(throws: PostgresError.self) {
                try await connection.transaction { connection in
                    try await connection.query("INSERT INTO t VALUES (3)")
                    _ = try? await connection.query("SELECT 1/0")
                }
            }
            let values = try await connection.query("SELECT v FROM t ORDER BY v").map { try $0.decode(Int.self, "v") }
            #expect(values == [1])
        }
    }

    @Test("a long query is cancelled with its task")
    func cancellation() async throws {
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let started = ContinuousClock.now
            let task = Task { try await connection.query("SELECT pg_sleep(30)") }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            let error = await #expect(throws: PostgresError.self) { try await task.value }
            #expect(error?.sqlState == PostgresError.SQLState.queryCanceled)
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(try await connection.query("SELECT 2 AS two").single().decode(Int.self, "two") == 2)
        }
    }

    @Test("a read row by row gives what the whole read gives, and fails cleanly midway")
    func rowByRow() async throws {
        struct Refused: Error {}
        try await withTestDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            let series: PostgresQuery =
                "SELECT g AS n, 'row ' || g AS label, NULLIF(g % 3, 0) AS rest FROM generate_series(1, \(5_000)) g ORDER BY g"
            let whole = try await connection.query(series).map {
                "\(try $0.decode(Int.self, "n")) \(try $0.decode(String.self, "label")) \(try $0.decode(Int?.self, "rest") ?? -1)"
            }
            let streamed = try await connection.query(series) {
                "\(try $0.decode(Int.self, "n")) \(try $0.decode(String.self, "label")) \(try $0.decode(Int?.self, "rest") ?? -1)"
            }
            #expect(streamed.count == 5_000)
            #expect(streamed == whole)
            #expect(try await connection.query("SELECT 1 AS n WHERE false") { try $0.decode(Int.self, "n") } == [])

            // The server fails the statement after sending rows: the error is the server's.
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT 1 / (4000 - g) AS q FROM generate_series(1, 5000) g") {
                    try $0.decode(Int.self, "q")
                }
            }
            #expect(error?.sqlState == "22012")
            // A row the caller cannot take fails the read with the caller's error.
            await #expect(throws: Refused.self) {
                try await connection.query(series) { row in
                    if try row.decode(Int.self, "n") == 10 { throw Refused() }
                    return 0
                }
            }
            let nul = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT \("a\u{0}b") AS v") { try $0.decode(String.self, "v") }
            }
            #expect(nul?.code == .invalidQuery)
            // After each failure the session is still usable.
            #expect(try await connection.query("SELECT 3 AS three").single().decode(Int.self, "three") == 3)
        }
    }
}
