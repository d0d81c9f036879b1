#if canImport(Glibc)
    import Glibc
#endif

/// Text straight to stdout or stderr with write(2), unbuffered, as `FileHandle.standardError.write`
/// did: FileHandle is not in FoundationEssentials, which is all the daemon's modules import
/// (BENCHMARKS.md, "Idle resident size").
public enum StandardStreams {
    public static func writeError(_ text: String) {
        write(text, to: STDERR_FILENO)
    }

    public static func writeOutput(_ text: String) {
        write(text, to: STDOUT_FILENO)
    }

    /// All of `text`, retrying after a signal or a short write; a closed or full stream loses it.
    private static func write(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { buffer in
                #if canImport(Darwin)
                    Darwin.write(descriptor, buffer.baseAddress, buffer.count)
                #elseif canImport(Musl)
                    Musl.write(descriptor, buffer.baseAddress, buffer.count)
                #else
                    Glibc.write(descriptor, buffer.baseAddress, buffer.count)
                #endif
            }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
