/// A `POST /v2/droplets/{droplet_id}/actions` body (`resources/droplets/models/droplet_actions.yml`):
/// the actions the reconciler takes.
///
/// Call ``validate()`` to reject a bad request without sending anything; the client calls it too.
public enum DropletActionRequest: Sendable, Hashable, Encodable, CustomStringConvertible {
    /// `{"type":"rename","name":…}`: the new name follows the create request's hostname rules.
    case rename(name: String)
    /// `{"type":"power_off"}`: a hard power-off.
    case powerOff
    /// `{"type":"power_on"}`.
    case powerOn
    /// `{"type":"resize","size":…,"disk":…}`. The droplet must be off. `disk: true` grows the disk
    /// too, which can never be undone (a disk cannot shrink); `false` changes CPU and memory only.
    case resize(size: String, disk: Bool)
    /// `{"type":"enable_backups"}`: DigitalOcean's default policy (daily).
    case enableBackups
    /// `{"type":"disable_backups"}`.
    case disableBackups
    /// `{"type":"shutdown"}`: a graceful power-off (ACPI), which the system may take its time over
    /// or ignore; `powerOff` is the hard one.
    case shutdown

    /// The action's `type`, as the request sends it and the resulting ``DropletAction`` reports it.
    public var type: String {
        switch self {
        case .rename: "rename"
        case .powerOff: "power_off"
        case .powerOn: "power_on"
        case .resize: "resize"
        case .enableBackups: "enable_backups"
        case .disableBackups: "disable_backups"
        case .shutdown: "shutdown"
        }
    }

    /// Checks what DigitalOcean would refuse, so a bad request fails locally with an operator's message.
    public func validate() throws(DigitalOceanError) {
        switch self {
        case .rename(let name): try DropletCreateRequest.validateName(name)
        case .resize(let size, _): try DropletCreateRequest.validateSize(size)
        case .powerOff, .powerOn, .enableBackups, .disableBackups, .shutdown: break
        }
    }

    enum CodingKeys: String, CodingKey { case type, name, size, disk }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        switch self {
        case .rename(let name):
            try c.encode(name, forKey: .name)
        case .resize(let size, let disk):
            try c.encode(size, forKey: .size)
            try c.encode(disk, forKey: .disk)
        case .powerOff, .powerOn, .enableBackups, .disableBackups, .shutdown:
            break
        }
    }

    public var description: String {
        switch self {
        case .rename(let name): "rename to \(name)"
        case .powerOff, .powerOn, .enableBackups, .disableBackups, .shutdown: type
        case .resize(let size, let disk): "resize to \(size)" + (disk ? " with its disk" : " without its disk")
        }
    }
}
