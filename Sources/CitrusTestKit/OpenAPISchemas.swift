import Foundation

/// DigitalOcean's official OpenAPI files, and `scripts/validate-do-schemas.py` (jsonschema +
/// PyYAML), which checks JSON documents against them: a request body as the simulator received
/// it, an answer as the simulator gave it.
public enum OpenAPISchemas {
    /// The repository root (this file is Sources/CitrusTestKit/…).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// `CITRUS_SHARED_DIR`, else the first `shared/digitalocean-openapi` found walking up from the repo root.
    public static func specDirectory() -> URL? {
        if let dir = ProcessInfo.processInfo.environment["CITRUS_SHARED_DIR"], !dir.isEmpty {
            let url = URL(fileURLWithPath: dir).appendingPathComponent("digitalocean-openapi")
            return FileManager.default.fileExists(atPath: specFile(in: url).path) ? url : nil
        }
        var dir = repositoryRoot
        for _ in 0..<8 {
            let candidate = dir.appendingPathComponent("shared/digitalocean-openapi")
            if FileManager.default.fileExists(atPath: specFile(in: candidate).path) { return candidate }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        return nil
    }

    private static func specFile(in directory: URL) -> URL {
        directory.appendingPathComponent("specification/DigitalOcean-public.v2.yaml")
    }

    public struct Validation: Sendable {
        public var status: Int32
        public var output: String
    }

    public struct SpecificationMissing: Error, CustomStringConvertible {
        public var description: String {
            "shared/digitalocean-openapi not found above \(OpenAPISchemas.repositoryRoot.path); set CITRUS_SHARED_DIR"
        }
    }

    /// Checks each document against its schema (a name of the script's SCHEMAS), writing them into
    /// `directory`; status 0 when every one holds.
    public static func validate(_ documents: [(schema: String, json: Data)], in directory: URL) throws -> Validation {
        guard let spec = specDirectory() else { throw SpecificationMissing() }
        var manifest: [[String: String]] = []
        for (index, document) in documents.enumerated() {
            let file = directory.appendingPathComponent("\(index)-\(document.schema).json")
            try document.json.write(to: file)
            manifest.append(["file": file.path, "schema": document.schema])
        }
        let manifestFile = directory.appendingPathComponent("manifest-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: manifest).write(to: manifestFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", repositoryRoot.appendingPathComponent("scripts/validate-do-schemas.py").path, spec.path,
            manifestFile.path,
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Validation(status: process.terminationStatus, output: String(decoding: output, as: UTF8.self))
    }
}
