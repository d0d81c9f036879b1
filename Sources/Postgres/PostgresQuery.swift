#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TerminalText

/// A SQL statement whose interpolated values travel as bind parameters, never as SQL text.
///
///     let query: PostgresQuery = "SELECT id FROM servers WHERE name = \(name) AND size = \(size)"
///     // sql: "SELECT id FROM servers WHERE name = $1 AND size = $2", binds: [name, size]
///
/// SQL text that is not a literal in the source must be written as `PostgresQuery(unsafeSQL:)`.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The statement with `$1, $2, …` placeholders.
    public private(set) var sql: String
    public private(set) var binds: [PostgresBind]

    /// Raw SQL, sent as is. The name says what the caller takes responsibility for.
    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// Shows the statement and the types of its parameters, never their values.
    public var description: String {
        binds.isEmpty ? sql : sql + " -- binds: " + binds.map(\.typeName).joined(separator: ", ")
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// A value, sent as bind parameter `$n`.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            binds.append(value.postgresBind)
            sql += "$\(binds.count)"
        }

        /// An optional value; `nil` is sent as SQL NULL.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(value?.postgresBind ?? PostgresBind(type: Value.postgresType, text: nil))
            sql += "$\(binds.count)"
        }

        /// An identifier (table, column, channel), quoted and escaped: `"my ""table"""`.
        public mutating func appendInterpolation(identifier: String) {
            sql += PostgresQuery.quoteIdentifier(identifier)
        }

        /// SQL text spliced in as is; only for text the program itself controls.
        public mutating func appendInterpolation(unsafeSQL text: String) {
            sql += text
        }
    }

    /// Quotes an identifier the way the server expects (`"` doubled inside double quotes).
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingAll("\"", with: "\"\"") + "\""
    }
}

/// One bind parameter in libpq's text format, with its type so NULLs are typed too.
public struct PostgresBind: Sendable, Hashable {
    public var type: PostgresType
    /// nil is SQL NULL.
    public var text: String?

    public init(type: PostgresType, text: String?) {
        self.type = type
        self.text = text
    }

    var typeName: String { type.name }
}

/// The server type of a bind parameter, by OID.
public struct PostgresType: Sendable, Hashable {
    public var oid: UInt32
    public var name: String

    public init(oid: UInt32, name: String) {
        self.oid = oid
        self.name = name
    }

    public static let bool = PostgresType(oid: 16, name: "bool")
    public static let int8 = PostgresType(oid: 20, name: "int8")
    public static let int4 = PostgresType(oid: 23, name: "int4")
    public static let text = PostgresType(oid: 25, name: "text")
    public static let float8 = PostgresType(oid: 701, name: "float8")
    public static let timestamptz = PostgresType(oid: 1184, name: "timestamptz")
    public static let uuid = PostgresType(oid: 2950, name: "uuid")
}

/// A Swift value that can be sent as a bind parameter.
public protocol PostgresEncodable: Sendable {
    static var postgresType: PostgresType { get }
    /// The value in the server's text input format.
    var postgresText: String { get }
}

extension PostgresEncodable {
    public var postgresBind: PostgresBind { PostgresBind(type: Self.postgresType, text: postgresText) }
}

extension String: PostgresEncodable {
    public static var postgresType: PostgresType { .text }
    public var postgresText: String { self }
}

extension Substring: PostgresEncodable {
    public static var postgresType: PostgresType { .text }
    public var postgresText: String { String(self) }
}

extension Int: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public var postgresText: String { String(self) }
}

extension Int64: PostgresEncodable {
    public static var postgresType: PostgresType { .int8 }
    public var postgresText: String { String(self) }
}

extension Int32: PostgresEncodable {
    public static var postgresType: PostgresType { .int4 }
    public var postgresText: String { String(self) }
}

extension Bool: PostgresEncodable {
    public static var postgresType: PostgresType { .bool }
    public var postgresText: String { self ? "true" : "false" }
}

extension UUID: PostgresEncodable {
    public static var postgresType: PostgresType { .uuid }
    public var postgresText: String { uuidString.lowercased() }
}

extension Double: PostgresEncodable {
    public static var postgresType: PostgresType { .float8 }
    public var postgresText: String {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return description
    }
}

extension Date: PostgresEncodable {
    public static var postgresType: PostgresType { .timestamptz }
    /// ISO 8601 in UTC with microseconds, which timestamptz input reads under any DateStyle.
    public var postgresText: String { PostgresTimestamp.format(self) }
}
