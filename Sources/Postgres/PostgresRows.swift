import CLibPQ
import TerminalText
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The rows of one statement's result, copied out of libpq (the `PGresult` is already freed).
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// Column names, in result order.
    public let columns: [String]
    /// What the server said it did, e.g. `UPDATE 1`.
    public let commandTag: String
    /// Rows inserted, updated, deleted, selected, ... as the command tag reports; 0 when it does not.
    public let affectedRows: Int
    private let rows: [PostgresRow]

    init(columns: [String], commandTag: String, affectedRows: Int, rows: [PostgresRow]) {
        self.columns = columns
        self.commandTag = commandTag
        self.affectedRows = affectedRows
        self.rows = rows
    }

    public var startIndex: Int { rows.startIndex }
    public var endIndex: Int { rows.endIndex }
    public subscript(position: Int) -> PostgresRow { rows[position] }

    /// The only row; throws when there is none or more than one.
    public func single() throws(PostgresError) -> PostgresRow {
        guard rows.count == 1 else {
            throw PostgresError(code: .invalidQuery, message: "expected exactly one row, got \(rows.count)")
        }
        return rows[0]
    }
}

/// One row: text values by column, decoded on demand.
public struct PostgresRow: Sendable {
    let names: ColumnNames
    let values: [String?]

    public var columns: [String] { names.names }

    /// Decodes the value in the column called `column` (the first such, if several share a name).
    public func decode<Value: PostgresDecodable>(
        _ type: Value.Type = Value.self,
        _ column: String
    ) throws(PostgresError) -> Value {
        guard let index = names.index[column] else {
            throw PostgresError(
                code: .invalidQuery,
                message: "no column \"\(column)\" in the result (columns: \(names.names.joined(separator: ", ")))",
                column: column
            )
        }
        return try decode(Value.self, at: index)
    }

    /// Decodes the value at `index` (0-based).
    public func decode<Value: PostgresDecodable>(
        _ type: Value.Type = Value.self,
        at index: Int
    ) throws(PostgresError) -> Value {
        guard values.indices.contains(index) else {
            throw PostgresError(
                code: .invalidQuery,
                message: "no column at index \(index); the result has \(values.count)"
            )
        }
        let column = names.names[index]
        guard let text = values[index] else {
            guard let null = Value.postgresNull else {
                throw PostgresError(
                    code: .decoding,
                    message: "column \"\(column)\" is NULL, which does not fit \(Value.self)",
                    column: column
                )
            }
            return null
        }
        guard let value = Value(postgresText: text) else {
            throw PostgresError(
                code: .decoding,
                message: "column \"\(column)\" holds \(Self.quoted(text)), which does not fit \(Value.self)",
                column: column
            )
        }
        return value
    }

    /// Whether the value at `column` is SQL NULL.
    public func isNull(_ column: String) -> Bool {
        names.index[column].map { values[$0] == nil } ?? true
    }

    private static func quoted(_ text: String) -> String {
        text.count <= 64 ? "'\(text)'" : "'\(text.prefix(61))...'"
    }
}

/// Column names shared by all rows of a result.
final class ColumnNames: Sendable {
    let names: [String]
    let index: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        for (position, name) in names.enumerated() where index[name] == nil {
            index[name] = position
        }
        self.index = index
    }
}

/// A Swift type a result value can be decoded into, from libpq's text format.
public protocol PostgresDecodable: Sendable {
    /// nil when `postgresText` does not represent a value of this type.
    init?(postgresText: String)
    /// The value SQL NULL decodes to; nil when NULL does not fit (every non-Optional type).
    static var postgresNull: Self? { get }
}

extension PostgresDecodable {
    public static var postgresNull: Self? { nil }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public init?(postgresText: String) {
        guard let value = Wrapped(postgresText: postgresText) else { return nil }
        self = .some(value)
    }

    public static var postgresNull: Self? { .some(.none) }
}

extension String: PostgresDecodable {
    public init?(postgresText: String) { self = postgresText }
}

extension Int: PostgresDecodable {
    public init?(postgresText: String) { self.init(postgresText, radix: 10) }
}

extension Int64: PostgresDecodable {
    public init?(postgresText: String) { self.init(postgresText, radix: 10) }
}

extension Int32: PostgresDecodable {
    public init?(postgresText: String) { self.init(postgresText, radix: 10) }
}

extension Bool: PostgresDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension UUID: PostgresDecodable {
    public init?(postgresText: String) { self.init(uuidString: postgresText) }
}

extension Double: PostgresDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(postgresText)
        }
    }
}

extension Date: PostgresDecodable {
    public init?(postgresText: String) {
        guard let date = PostgresTimestamp.parse(postgresText) else { return nil }
        self = date
    }
}

/// Owns one `PGresult`; `PQclear` runs when the owner goes away, after values were copied out.
final class ResultHandle {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { PQclear(pointer) }

    var status: ExecStatusType { PQresultStatus(pointer) }

    func field(_ code: Character) -> String? {
        guard let ascii = code.asciiValue, let value = PQresultErrorField(pointer, Int32(ascii)) else { return nil }
        return String(cString: value)
    }

    /// Copies every value out as Swift strings.
    func rows() -> PostgresRows {
        let names = columnNames()
        let rowCount = PQntuples(pointer)
        var rows: [PostgresRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount { rows.append(self.row(row, names: names)) }
        let tag = PQcmdStatus(pointer).map { String(cString: $0) } ?? ""
        let affected = PQcmdTuples(pointer).flatMap { Int(String(cString: $0)) } ?? 0
        return PostgresRows(columns: names.names, commandTag: tag, affectedRows: affected, rows: rows)
    }

    func columnNames() -> ColumnNames {
        ColumnNames((0..<PQnfields(pointer)).map { String(cString: PQfname(pointer, $0)) })
    }

    /// Row `row`'s values, copied out as Swift strings.
    func row(_ row: Int32, names: ColumnNames) -> PostgresRow {
        let columnCount = PQnfields(pointer)
        var values: [String?] = []
        values.reserveCapacity(Int(columnCount))
        for column in 0..<columnCount {
            if PQgetisnull(pointer, row, column) == 1 {
                values.append(nil)
            } else {
                values.append(String(cString: PQgetvalue(pointer, row, column)))
            }
        }
        return PostgresRow(names: names, values: values)
    }

    /// What the server said when the statement failed.
    func serverError() -> PostgresError {
        let message = field("M") ?? String(cString: PQresultErrorMessage(pointer)).trimmingWhitespace()
        return PostgresError(
            code: .server,
            message: message.isEmpty ? "the statement failed" : message,
            sqlState: field("C"),
            detail: field("D")
        )
    }
}
