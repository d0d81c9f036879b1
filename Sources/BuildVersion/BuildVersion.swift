/// citrus-reconciler's version, written in this one place and compiled into every binary: the
/// daemon's `--version`, its User-Agent at DigitalOcean, and the Debian package's version
/// (`scripts/package-deb.sh` asks the built binary) all come from here.
public enum BuildVersion {
    public static let current = "0.2.0"
}
