import Foundation
import ReconcileCore
import Testing

/// Changes to a live row (design.md, "Changes to a live row"): what the pure decision does with a
/// bound, active row whose droplet differs from it, step by step and across lost answers.
@Suite("Live changes")
struct LiveChangeTests {
    /// An active row bound to droplet 100, which matches it.
    static func live(
        name: String = "web-1",
        size: String = "s-1vcpu-1gb",
        region: String = "nyc3",
        status: ServerStatus = .active,
        change: LiveChange? = nil,
        refused: RefusedChange? = nil,
        failures: Int = 0,
        nextAttemptAt: Date? = nil
    ) -> ServerRecord {
        var r = row(1, status: status, dropletID: 100, ipv4: ipv4, ipv6: ipv6)
        r.name = name
        r.size = size
        r.region = region
        r.state.observed = DropletFacts(name: "web-1", region: "nyc3", size: "s-1vcpu-1gb", image: "debian-12-x64")
        r.state.change = change
        r.state.refused = refused
        r.state.transientFailures = failures
        r.state.nextAttemptAt = nextAttemptAt
        return r
    }

    static func fleetDroplet(
        name: String = "web-1",
        size: String = "s-1vcpu-1gb",
        region: String = "nyc3",
        image: String = "debian-12-x64",
        status: DropletStatus = .active,
        locked: Bool = false
    ) -> ObservedDroplet {
        var d = droplet(100, for: 1, status: status)
        d.name = name
        d.size = size
        d.region = region
        d.image = image
        d.locked = locked
        return d
    }

    static func configuration(resize: LiveChangePolicy.Resize = .off, powerOn: Bool = false) -> DecisionConfiguration {
        var c = DecisionConfiguration()
        c.liveChanges = LiveChangePolicy(resize: resize, powerOnWhenOff: powerOn)
        return c
    }

    struct Sent {
        var order: DropletActionOrder
        var from: DaemonState
        var state: DaemonState
    }

    static func sent(_ plan: Plan) -> [Sent] {
        plan.actions.compactMap {
            if case let .dropletAction(order, _, from, state) = $0 {
                Sent(order: order, from: from, state: state)
            } else {
                nil
            }
        }
    }

    // MARK: Rename

    @Test("a changed name is renamed in place: one rename action carrying the row's update, no separate write")
    func renameStarts() throws {
        let r = Self.live(name: "web-1-renamed")
        let plan = decide([r], observe([Self.fleetDroplet()]))
        let send = try #require(Self.sent(plan).first)
        #expect(send.order == DropletActionOrder(rowID: r.id, dropletID: 100, kind: .rename(to: "web-1-renamed")))
        #expect(send.state.change?.goal == .rename(to: "web-1-renamed"))
        #expect(send.state.change?.sentAt == nil, "the loop stamps the intent")
        #expect(send.state.status == .active, "a rename never changes the row's status")
        #expect(send.state.drift == nil, "a change being applied is not drift")
        #expect(plan.updates.isEmpty, "the row's write goes with the action's intent")
        #expect(plan.waitingOnCloud)
    }

    @Test("a rename in progress is followed by its action: nothing is sent again while it runs")
    func renameInProgress() {
        let change = LiveChange(goal: .rename(to: "web-1-renamed"), actionID: 555, sentAt: seconds(-3))
        let r = Self.live(name: "web-1-renamed", change: change)
        var observation = observe([Self.fleetDroplet(locked: true)])
        observation.actions[555] = .inProgress
        let plan = decide([r], observation)
        #expect(Self.sent(plan).isEmpty)
        #expect(plan.after(r).change == change)
        #expect(plan.waitingOnCloud)
    }

    @Test("a completed rename ends the change: the row records the droplet's new name, with no drift")
    func renameCompletes() throws {
        let change = LiveChange(goal: .rename(to: "web-1-renamed"), actionID: 555, sentAt: seconds(-3))
        let r = Self.live(name: "web-1-renamed", change: change)
        var observation = observe([Self.fleetDroplet(name: "web-1-renamed")])
        observation.actions[555] = .completed
        let plan = decide([r], observation)
        let after = try #require(plan.written(r))
        #expect(after.change == nil)
        #expect(after.observed?.name == "web-1-renamed")
        #expect(after.drift == nil)
        #expect(Self.sent(plan).isEmpty)
    }

    @Test("a rename whose answer was lost is not sent again before a look a settle period later shows it undone")
    func renameLostAnswer() throws {
        let sentAt = seconds(-20)
        let change = LiveChange(goal: .rename(to: "web-1-renamed"), sentAt: sentAt)
        let r = Self.live(name: "web-1-renamed", change: change)
        let decider = Decider()
        let deadline = decider.actionSettleDeadline(sentAt: sentAt)

        // Before the deadline: wait for it, even though the droplet still has its old name.
        let early = decide([r], observe([Self.fleetDroplet()], listedAt: seconds(-1)))
        #expect(Self.sent(early).isEmpty)
        #expect(early.nextWakeUp == deadline)

        // Locked (an action in progress, maybe this one): wait, whatever the time.
        var late = Self.live(name: "web-1-renamed", change: change)
        late.state.change?.sentAt = seconds(-1_000)
        #expect(Self.sent(decide([late], observe([Self.fleetDroplet(locked: true)]))).isEmpty)

        // The droplet shows the new name: carried out; done, nothing sent.
        let done = decide([r], observe([Self.fleetDroplet(name: "web-1-renamed")]))
        #expect(Self.sent(done).isEmpty)
        #expect(try #require(done.written(r)).change == nil)

        // After the deadline, unlocked and not renamed, but the droplet's history was not read:
        // nothing proves the rename never arrived.
        #expect(Self.sent(decide([late], observe([Self.fleetDroplet()], listedAt: seconds(-1)))).isEmpty)

        // After the deadline, with a history that lacks it: it goes again.
        var unsent = observe([Self.fleetDroplet()], listedAt: seconds(-1))
        unsent.actionHistory[100] = [
            ObservedAction(id: 3, type: "power_on", progress: .completed, startedAt: seconds(-900))
        ]
        #expect(Self.sent(decide([late], unsent)).map(\.order.kind) == [.rename(to: "web-1-renamed")])
    }

    @Test(
        "a power-on whose answer was lost, then undone by hand: the history proves it arrived, so it is not sent again"
    )
    func lostAnswerFoundInHistory() throws {
        let configuration = Self.configuration(resize: .allow)
        let sentAt = seconds(-200)
        let change = LiveChange(goal: .resize(to: "s-2vcpu-2gb", disk: false), stepIndex: 2, sentAt: sentAt)
        let r = Self.live(size: "s-2vcpu-2gb", change: change)
        var observation = observe([Self.fleetDroplet(size: "s-2vcpu-2gb", status: .off)], listedAt: seconds(-1))
        observation.actionHistory[100] = [
            ObservedAction(id: 12, type: "power_off", progress: .completed, startedAt: seconds(-100)),  // by hand
            ObservedAction(id: 11, type: "power_on", progress: .completed, startedAt: seconds(-199)),  // this daemon's
            ObservedAction(id: 10, type: "resize", progress: .completed, startedAt: seconds(-260)),
        ]
        let plan = decide([r], observation, configuration: configuration)
        #expect(Self.sent(plan).isEmpty, "powered on once already; off again is a person's doing")
        let after = try #require(plan.written(r))
        #expect(after.change == nil)
        #expect(after.drift?.contains("powered off") == true)

        // Still running in the history: wait for it.
        observation.actionHistory[100] = [
            ObservedAction(id: 11, type: "power_on", progress: .inProgress, startedAt: seconds(-199))
        ]
        let waiting = decide([r], observation, configuration: configuration)
        #expect(Self.sent(waiting).isEmpty)
        #expect(waiting.after(r).change?.actionID == 11, "the action found is followed by its id")
    }

    @Test("an action DigitalOcean no longer knows (404) is settled by the droplet, as a lost answer is")
    func unknownAction() throws {
        let change = LiveChange(goal: .rename(to: "web-1-renamed"), actionID: 555, sentAt: seconds(-20))
        let r = Self.live(name: "web-1-renamed", change: change)
        var renamed = observe([Self.fleetDroplet(name: "web-1-renamed")])
        renamed.actions[555] = .unknown
        #expect(try #require(decide([r], renamed).written(r)).change == nil)

        var notYet = observe([Self.fleetDroplet()])
        notYet.actions[555] = .unknown
        let plan = decide([r], notYet)
        #expect(Self.sent(plan).isEmpty, "not resent before the settle deadline")
        #expect(plan.nextWakeUp == Decider().actionSettleDeadline(sentAt: seconds(-20)))
    }

    @Test("a rename DigitalOcean refuses is recorded, becomes drift, and is not sent again until the name changes")
    func renameRefused() throws {
        let decider = Decider()
        var intent = DaemonState(status: .active, dropletID: 100)
        intent.change = LiveChange(goal: .rename(to: "bad_name"), sentAt: seconds(-1))
        let next = decider.afterAction(.refused(reason: "invalid hostname"), intent: intent, at: now, jitter: 0.5)
        #expect(next.change == nil)
        #expect(next.refused?.value == "bad_name")

        var r = Self.live(name: "bad_name")
        r.state = next
        r.state.observed = DropletFacts(name: "web-1", region: "nyc3", size: "s-1vcpu-1gb", image: "debian-12-x64")
        let plan = decide([r], observe([Self.fleetDroplet()]))
        #expect(Self.sent(plan).isEmpty)
        let drift = try #require(plan.after(r).drift)
        #expect(drift.contains("invalid hostname") && drift.contains("refused_change"))

        var corrected = r
        corrected.name = "good-name"
        let retried = decide([corrected], observe([Self.fleetDroplet()]))
        #expect(Self.sent(retried).map(\.order.kind) == [.rename(to: "good-name")])
    }

    @Test("a droplet renamed at DigitalOcean is drift, not undone; the row taking the name clears it")
    func outOfBandRename() throws {
        let r = Self.live()
        let plan = decide([r], observe([Self.fleetDroplet(name: "renamed-by-hand")]))
        #expect(Self.sent(plan).isEmpty, "an out-of-band rename is not undone")
        let after = try #require(plan.written(r))
        #expect(after.drift?.contains("renamed renamed-by-hand at DigitalOcean") == true)
        #expect(after.status == .active)

        // The next pass (the droplet's name now recorded) still does not undo it.
        var next = r
        next.state = after
        #expect(Self.sent(decide([next], observe([Self.fleetDroplet(name: "renamed-by-hand")]))).isEmpty)

        // The operator accepts the name: drift clears.
        next.name = "renamed-by-hand"
        let accepted = decide([next], observe([Self.fleetDroplet(name: "renamed-by-hand")]))
        #expect(accepted.after(next).drift == nil && accepted.after(next).refused == nil)
    }

    // MARK: Resize

    @Test("a changed size without permission is drift that says how to allow it; the server keeps working")
    func resizeNotAllowed() throws {
        let r = Self.live(size: "s-2vcpu-2gb")
        let plan = decide([r], observe([Self.fleetDroplet()]))
        #expect(Self.sent(plan).isEmpty)
        let after = try #require(plan.written(r))
        #expect(after.status == .active)
        #expect(after.drift?.contains("--resize allow") == true)
        #expect(after.driftSince == now)
    }

    @Test("with --resize allow: power off, resize CPU and memory, power on; each step only after the last completed")
    func resizeSteps() throws {
        let configuration = Self.configuration(resize: .allow)
        var r = Self.live(size: "s-2vcpu-2gb")
        let first = decide([r], observe([Self.fleetDroplet()]), configuration: configuration)
        #expect(Self.sent(first).map(\.order.kind) == [.powerOff])
        #expect(Self.sent(first).first?.state.drift == nil)

        // Power-off accepted as action 1 and completed; the droplet is off: the resize goes, disk kept.
        r.state.change = LiveChange(goal: .resize(to: "s-2vcpu-2gb", disk: false), actionID: 1, sentAt: seconds(-10))
        var observation = observe([Self.fleetDroplet(status: .off)])
        observation.actions[1] = .completed
        let second = decide([r], observation, configuration: configuration)
        #expect(Self.sent(second).map(\.order.kind) == [.resize(to: "s-2vcpu-2gb", disk: false)])
        #expect(Self.sent(second).first?.state.status == .active, "the row keeps its status while off for a resize")
        #expect(Self.sent(second).first?.state.drift == nil, "powered off by this daemon: not drift")

        // Resize completed: power on.
        r.state.change = LiveChange(goal: .resize(to: "s-2vcpu-2gb", disk: false), stepIndex: 1, actionID: 2)
        observation = observe([Self.fleetDroplet(size: "s-2vcpu-2gb", status: .off)])
        observation.actions[2] = .completed
        let third = decide([r], observation, configuration: configuration)
        #expect(Self.sent(third).map(\.order.kind) == [.powerOn])

        // Powered on: done.
        r.state.change = LiveChange(goal: .resize(to: "s-2vcpu-2gb", disk: false), stepIndex: 2, actionID: 3)
        observation = observe([Self.fleetDroplet(size: "s-2vcpu-2gb")])
        observation.actions[3] = .completed
        let done = decide([r], observation, configuration: configuration)
        let after = try #require(done.written(r))
        #expect(after.change == nil && after.drift == nil && after.refused == nil)
        #expect(after.observed?.size == "s-2vcpu-2gb")
    }

    @Test("the disk is resized only with its own opt-in")
    func diskOptIn() {
        let r = Self.live(size: "s-2vcpu-4gb")
        let cpu = decide([r], observe([Self.fleetDroplet()]), configuration: Self.configuration(resize: .allow))
        #expect(Self.sent(cpu).first?.state.change?.goal == .resize(to: "s-2vcpu-4gb", disk: false))
        let disk = decide([r], observe([Self.fleetDroplet()]), configuration: Self.configuration(resize: .allowDisk))
        #expect(Self.sent(disk).first?.state.change?.goal == .resize(to: "s-2vcpu-4gb", disk: true))
    }

    @Test(
        "a power-off whose answer was lost: the droplet read off proves it, and the resize follows without a second power-off"
    )
    func powerOffLostAnswer() throws {
        let configuration = Self.configuration(resize: .allow)
        let decider = Decider(configuration: configuration)
        var intent = Self.live(size: "s-2vcpu-2gb").state
        intent.change = LiveChange(goal: .resize(to: "s-2vcpu-2gb", disk: false), sentAt: seconds(-5))
        let next = decider.afterAction(.unknown(reason: "timeout"), intent: intent, at: now, jitter: 0.5)
        #expect(next.change?.sentAt == seconds(-5), "the intent stands")
        #expect(next.change?.actionID == nil)

        var r = Self.live(size: "s-2vcpu-2gb")
        r.state = next
        // Still on and unlocked, before the deadline: nothing is sent.
        #expect(Self.sent(decide([r], observe([Self.fleetDroplet()]), configuration: configuration)).isEmpty)
        // Off: the power-off happened; the resize goes.
        let plan = decide([r], observe([Self.fleetDroplet(status: .off)]), configuration: configuration)
        #expect(Self.sent(plan).map(\.order.kind) == [.resize(to: "s-2vcpu-2gb", disk: false)])
    }

    @Test("a refused resize powers the droplet back on, then records why, and is not tried again for the same size")
    func resizeRefused() throws {
        let configuration = Self.configuration(resize: .allow)
        let decider = Decider(configuration: configuration)
        var intent = Self.live(size: "s-1vcpu-512mb-10gb").state
        intent.change = LiveChange(goal: .resize(to: "s-1vcpu-512mb-10gb", disk: false), stepIndex: 1, sentAt: now)
        let next = decider.afterAction(.refused(reason: "smaller disk"), intent: intent, at: now, jitter: 0.5)
        #expect(next.change?.step == .powerOn)
        #expect(next.change?.failure?.contains("smaller disk") == true)

        var r = Self.live(size: "s-1vcpu-512mb-10gb")
        r.state = next
        let recover = decide([r], observe([Self.fleetDroplet(status: .off)]), configuration: configuration)
        #expect(Self.sent(recover).map(\.order.kind) == [.powerOn])

        r.state.change?.actionID = 9
        var observation = observe([Self.fleetDroplet()])
        observation.actions[9] = .completed
        let recovered = decide([r], observation, configuration: configuration)
        let after = try #require(recovered.written(r))
        #expect(after.change == nil)
        #expect(after.refused?.column == "size")
        #expect(after.drift?.contains("smaller disk") == true)
        #expect(after.status == .active)

        r.state = after
        #expect(Self.sent(decide([r], observe([Self.fleetDroplet()]), configuration: configuration)).isEmpty)
    }

    @Test("an errored action is retried after the row's backoff; the backoff survives the droplet's good health")
    func erroredAction() throws {
        let change = LiveChange(goal: .rename(to: "web-1-renamed"), actionID: 7, sentAt: seconds(-10))
        let r = Self.live(name: "web-1-renamed", change: change)
        var observation = observe([Self.fleetDroplet()])
        observation.actions[7] = .errored
        let plan = decide([r], observation)
        #expect(Self.sent(plan).isEmpty)
        let after = try #require(plan.written(r))
        #expect(after.transientFailures == 1)
        let retryAt = try #require(after.nextAttemptAt)
        #expect(retryAt > now)
        #expect(plan.nextWakeUp == retryAt)

        var waiting = r
        waiting.state = after
        #expect(Self.sent(decide([waiting], observe([Self.fleetDroplet()]))).isEmpty)
    }

    @Test("resizes wait for a server in service: not while its agent is awaited; a rename does not")
    func noResizeWhileInitializing() {
        var configuration = Self.configuration(resize: .allow)
        configuration.agentBootstrap = AgentBootstrapPolicy()
        var r = Self.live(size: "s-2vcpu-2gb", status: .initializing)
        r.state.agentID = UUID()
        r.state.agentAwaitedSince = seconds(-10)
        r.agent = AgentPresence()
        let plan = decide([r], observe([Self.fleetDroplet()]), configuration: configuration)
        #expect(Self.sent(plan).isEmpty)
        #expect(plan.after(r).status == .initializing)
        #expect(plan.after(r).drift == nil, "a permitted resize on its way is not drift")

        r.name = "web-1-renamed"
        let rename = decide([r], observe([Self.fleetDroplet()]), configuration: configuration)
        #expect(Self.sent(rename).map(\.order.kind) == [.rename(to: "web-1-renamed")])
    }

    // MARK: Drift

    @Test("region and image cannot change in place: drift with what to do, one per column, clearing when they match")
    func regionAndImageDrift() throws {
        let r = Self.live(region: "sfo3")
        let plan = decide([r], observe([Self.fleetDroplet(image: "ubuntu-22-04-x64")]))
        let drift = try #require(plan.written(r)?.drift)
        #expect(drift.contains("region: the row asks sfo3, the droplet is in nyc3"))
        #expect(drift.contains("image: the row asks debian-12-x64, the droplet runs ubuntu-22-04-x64"))
        #expect(drift.contains("delete_requested_at"))
        #expect(Self.sent(plan).isEmpty)

        var drifting = r
        drifting.state = plan.after(r)
        drifting.region = "nyc3"
        drifting.image = "ubuntu-22-04-x64"
        let cleared = decide([drifting], observe([Self.fleetDroplet(image: "ubuntu-22-04-x64")]))
        #expect(cleared.after(drifting).drift == nil)
        #expect(cleared.after(drifting).driftSince == nil)
    }

    @Test("an out-of-band power-off is reported, and powered on only by policy")
    func poweredOffOutOfBand() {
        let r = Self.live()
        let report = decide([r], observe([Self.fleetDroplet(status: .off)]))
        #expect(Self.sent(report).isEmpty)
        #expect(report.after(r).drift?.contains("--powered-off power-on") == true)
        #expect(report.after(r).status == .active)

        let policy = decide(
            [r],
            observe([Self.fleetDroplet(status: .off)]),
            configuration: Self.configuration(powerOn: true)
        )
        #expect(Self.sent(policy).map(\.order.kind) == [.powerOn])
    }

    @Test("a droplet resized at DigitalOcean is drift, not undone even with --resize allow")
    func outOfBandResize() throws {
        let r = Self.live()
        let plan = decide(
            [r],
            observe([Self.fleetDroplet(size: "s-4vcpu-8gb")]),
            configuration: Self.configuration(resize: .allow)
        )
        #expect(Self.sent(plan).isEmpty)
        #expect(try #require(plan.written(r)).drift?.contains("resized to s-4vcpu-8gb at DigitalOcean") == true)
    }
}
