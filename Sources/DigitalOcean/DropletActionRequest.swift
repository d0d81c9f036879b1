/// A `POST /v2/droplets/{droplet_id}/actions` body (`resources/droplets/models/droplet_actions.yml`):
/// the four actions the reconciler takes.
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

    /// The action's `type`, as the request sends it and the resulting ``DropletAction`` reports it.
    public var type: String {
        switch self {
        case .rename: "rename"
        case .powerOff: "power_off"
        case .powerOn: "power_on"
        case .resize: "resize"
        }
    }

    /// Checks what DigitalOcean would refuse, so a bad request fails locally with an operator's message.
    public func validate() throws(DigitalOceanError) {
        switch self {
        case .rename(let name): try DropletCreateRequest.validateName(name)
        case .resize(let size, _): try DropletCreateRequest.validateSize(size)
        case .powerOff, .powerOn: break
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
        case .powerOff, .powerOn:
            break
        }
    }

    public var description: String {
        switch self {
        case .rename(let name): "rename to \(name)"
        case .powerOff: "power_off"
        case .powerOn: "power_on"
        case .resize(let size, let disk): "resize to \(size)" + (disk ? " with its disk" : " without its disk")
        }
    }
}
