/// One schema change. Migrations only add (`IF NOT EXISTS`, `SET DEFAULT`, `CREATE OR REPLACE`),
/// never drop or rename, so they also upgrade the platform's original `servers` table in place.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

extension Migration {
    /// All migrations, in the order they apply.
    public static let all: [Migration] = firstFourteen + [dropletSpecification, destroyBrake] + agentKeys

    /// Migrations 1 to 14, from before later ones were kept in files of their own.
    static let firstFourteen: [Migration] = [
        Migration(
            version: 1,
            name: "create servers",
            sql: """
                -- The platform's original schema; a no-op where it already exists. A minimal agents
                -- table stands in for the hub's own when the database has none.
                CREATE TABLE IF NOT EXISTS agents (
                    id UUID PRIMARY KEY DEFAULT gen_random_uuid()
                );
                CREATE TABLE IF NOT EXISTS servers (
                    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
                    name VARCHAR(255) NOT NULL,
                    digital_ocean_id VARCHAR(255),
                    region VARCHAR(50) NOT NULL,
                    size VARCHAR(50) NOT NULL,
                    ip_address VARCHAR(45),
                    status VARCHAR(50) NOT NULL DEFAULT 'creating',
                    agent_id UUID REFERENCES agents(id),
                    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP,
                    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
                );
                CREATE INDEX IF NOT EXISTS idx_servers_status ON servers(status);
                CREATE INDEX IF NOT EXISTS idx_servers_digital_ocean_id ON servers(digital_ocean_id);
                CREATE INDEX IF NOT EXISTS idx_servers_agent_id ON servers(agent_id);
                """
        ),
        Migration(
            version: 2,
            name: "servers user columns and defaults",
            sql: """
                ALTER TABLE servers
                    ALTER COLUMN region SET DEFAULT 'sfo3',
                    ALTER COLUMN size SET DEFAULT 's-1vcpu-512mb-10gb',
                    ADD COLUMN IF NOT EXISTS image VARCHAR(100) NOT NULL DEFAULT 'ubuntu-22-04-x64',
                    ADD COLUMN IF NOT EXISTS delete_requested_at TIMESTAMPTZ;
                """
        ),
        Migration(
            version: 3,
            name: "servers daemon bookkeeping and revision",
            sql: """
                ALTER TABLE servers
                    ADD COLUMN IF NOT EXISTS ipv6_address VARCHAR(64),
                    ADD COLUMN IF NOT EXISTS last_error TEXT,
                    ADD COLUMN IF NOT EXISTS create_attempted_at TIMESTAMPTZ,
                    ADD COLUMN IF NOT EXISTS create_attempts INT NOT NULL DEFAULT 0,
                    ADD COLUMN IF NOT EXISTS transient_failures INT NOT NULL DEFAULT 0,
                    ADD COLUMN IF NOT EXISTS next_attempt_at TIMESTAMPTZ,
                    ADD COLUMN IF NOT EXISTS revision BIGINT NOT NULL DEFAULT 0;

                -- Every update bumps the revision, whoever makes it, so the daemon's compare-and-set
                -- writes never overwrite a change they did not see.
                CREATE OR REPLACE FUNCTION citrus_servers_bump_revision() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    NEW.revision := OLD.revision + 1;
                    RETURN NEW;
                END
                $$;
                CREATE OR REPLACE TRIGGER citrus_servers_bump_revision
                    BEFORE UPDATE ON servers
                    FOR EACH ROW EXECUTE FUNCTION citrus_servers_bump_revision();
                """
        ),
        Migration(
            version: 4,
            name: "server events",
            sql: """
                -- No foreign key: the audit trail outlives the rows it tells about.
                CREATE TABLE IF NOT EXISTS server_events (
                    id BIGSERIAL PRIMARY KEY,
                    server_id UUID,
                    server_name TEXT,
                    kind TEXT NOT NULL,
                    message TEXT NOT NULL,
                    droplet_id BIGINT,
                    from_status VARCHAR(50),
                    to_status VARCHAR(50),
                    do_request_id TEXT,
                    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
                );
                CREATE INDEX IF NOT EXISTS idx_server_events_server_id ON server_events(server_id, id);
                """
        ),
        Migration(
            version: 5,
            name: "notify on user changes",
            sql: """
                -- Wakes the daemon on inserts, deletes, and changes to the columns users own. The
                -- daemon's own writes touch none of those, so they never wake it.
                CREATE OR REPLACE FUNCTION citrus_servers_notify() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP = 'DELETE' THEN
                        PERFORM pg_notify('citrus_servers', OLD.id::text);
                        RETURN OLD;
                    END IF;
                    IF TG_OP = 'UPDATE'
                       AND (NEW.name, NEW.region, NEW.size, NEW.image, NEW.delete_requested_at)
                           IS NOT DISTINCT FROM (OLD.name, OLD.region, OLD.size, OLD.image, OLD.delete_requested_at)
                    THEN
                        RETURN NEW;
                    END IF;
                    PERFORM pg_notify('citrus_servers', NEW.id::text);
                    RETURN NEW;
                END
                $$;
                CREATE OR REPLACE TRIGGER citrus_servers_notify
                    AFTER INSERT OR UPDATE OR DELETE ON servers
                    FOR EACH ROW EXECUTE FUNCTION citrus_servers_notify();
                """
        ),
        Migration(
            version: 6,
            name: "servers create reachable-until",
            sql: """
                -- The last instant a row's latest create could have reached DigitalOcean; its settle
                -- period counts from here, not from the intent.
                ALTER TABLE servers ADD COLUMN IF NOT EXISTS create_reachable_until TIMESTAMPTZ;
                """
        ),
        Migration(
            version: 7,
            name: "agent bootstrap",
            sql: """
                -- What the daemon and the Engine Hub share (design.md, "Agent bootstrap and health"),
                -- added to the platform's own agents table where it exists. Only the SHA-256 of an
                -- agent's key is ever stored. servers.status gains 'unreachable' (no constraint to
                -- change: it is free text).
                ALTER TABLE agents
                    ADD COLUMN IF NOT EXISTS key_sha256 TEXT,
                    ADD COLUMN IF NOT EXISTS created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    ADD COLUMN IF NOT EXISTS connected_at TIMESTAMPTZ,
                    ADD COLUMN IF NOT EXISTS last_seen_at TIMESTAMPTZ;
                -- When the droplet was first seen active and the agent awaited: the bootstrap
                -- timeout counts from here.
                ALTER TABLE servers ADD COLUMN IF NOT EXISTS agent_awaited_since TIMESTAMPTZ;

                -- An agent's first connection wakes the daemon at once (its row becomes active);
                -- the payload is no row id, so the daemon answers with a full pass. Heartbeats do
                -- not notify: the periodic resync watches health.
                CREATE OR REPLACE FUNCTION citrus_agents_notify() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM pg_notify('citrus_servers', 'agent:' || NEW.id::text);
                    RETURN NEW;
                END
                $$;
                CREATE OR REPLACE TRIGGER citrus_agents_notify
                    AFTER UPDATE OF connected_at ON agents
                    FOR EACH ROW WHEN (OLD.connected_at IS NULL AND NEW.connected_at IS NOT NULL)
                    EXECUTE FUNCTION citrus_agents_notify();
                """
        ),
        Migration(
            version: 8,
            name: "changes to a live row",
            sql: """
                -- design.md, "Changes to a live row". What DigitalOcean last showed of the droplet,
                -- beside the row's own columns (which stay the operator's): compare name with
                -- droplet_name, and so on.
                ALTER TABLE servers
                    ADD COLUMN IF NOT EXISTS droplet_name TEXT,
                    ADD COLUMN IF NOT EXISTS droplet_region TEXT,
                    ADD COLUMN IF NOT EXISTS droplet_size TEXT,
                    ADD COLUMN IF NOT EXISTS droplet_image TEXT,
                -- What differs and is not being changed, and what to do about it; NULL when nothing.
                    ADD COLUMN IF NOT EXISTS drift TEXT,
                    ADD COLUMN IF NOT EXISTS drift_since TIMESTAMPTZ,
                -- A rename or resize in progress: its goal, current step (0-based), the action
                -- DigitalOcean accepted for the step, when the step was sent, and why it failed
                -- while the droplet is powered back on.
                    ADD COLUMN IF NOT EXISTS change_goal TEXT,
                    ADD COLUMN IF NOT EXISTS change_target TEXT,
                    ADD COLUMN IF NOT EXISTS change_step INTEGER,
                    ADD COLUMN IF NOT EXISTS change_action_id BIGINT,
                    ADD COLUMN IF NOT EXISTS change_sent_at TIMESTAMPTZ,
                    ADD COLUMN IF NOT EXISTS change_failure TEXT,
                -- The last change DigitalOcean refused: not tried again while the row asks for the
                -- same value. Set refused_change to NULL to have it tried again.
                    ADD COLUMN IF NOT EXISTS refused_change TEXT,
                    ADD COLUMN IF NOT EXISTS refused_value TEXT,
                    ADD COLUMN IF NOT EXISTS refused_reason TEXT;
                """
        ),
        Migration(
            version: 9,
            name: "live rows index and fleet view",
            sql: """
                -- Each pass reads only live rows (status <> 'deleted'), oldest first. Deleted rows are
                -- history and pile up; this partial index holds the live rows alone, in the read's
                -- order, so the read costs what the live rows cost however long the history grows.
                -- The predicate must stay exactly the read's WHERE clause for the planner to use it.
                CREATE INDEX IF NOT EXISTS servers_live_by_age ON servers (created_at, id) WHERE status <> 'deleted';

                -- The last full list of the fleet at DigitalOcean (the daemon lists in full only now
                -- and then at large fleets, and follows what changes in between), so that `status`
                -- can say how stale that view is. One row at most: the CHECK admits only id = true.
                CREATE TABLE IF NOT EXISTS fleet_view (
                    id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
                    listed_at TIMESTAMPTZ NOT NULL,
                    pages INT NOT NULL,
                    droplets INT NOT NULL,
                    took_ms BIGINT NOT NULL,
                    next_list_at TIMESTAMPTZ,
                    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
                );
                """
        ),
        Migration(
            version: 10,
            name: "create intents outlive their row",
            sql: """
                -- design.md, identity rule 6: every create intent the daemon records in a row is also
                -- appended here, by a trigger in the same transaction as the row's write. Nothing here
                -- refers to servers: `DELETE FROM servers` leaves the record, so a row deleted and
                -- inserted again with the same id is known to have a create that may still be in
                -- flight or unlisted, and waits the settle period instead of sending a second one.
                CREATE TABLE IF NOT EXISTS create_intents (
                    id BIGSERIAL PRIMARY KEY,
                    server_id UUID NOT NULL,
                    attempted_at TIMESTAMPTZ NOT NULL,
                    reachable_until TIMESTAMPTZ NOT NULL,
                    attempt INT NOT NULL,
                    agent_id UUID,
                    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
                );
                CREATE INDEX IF NOT EXISTS create_intents_by_server ON create_intents (server_id, attempted_at DESC);
                -- The rows that record a droplet, read right before each destroy leaves. Not unique:
                -- a unique index would make every write of the column a key update, which waits on
                -- any transaction holding FOR KEY SHARE on the row (a foreign key's insert).
                CREATE INDEX IF NOT EXISTS servers_by_droplet ON servers (digital_ocean_id);

                -- SECURITY DEFINER: the daemon's role needs no privilege on the table but SELECT, so
                -- it can neither forge nor erase a record. A record matters for the settle period
                -- only; one a day older than the server's newest is dropped, so the table holds about
                -- one row per server ever created.
                CREATE OR REPLACE FUNCTION citrus_record_create_intent() RETURNS trigger
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
                BEGIN
                    INSERT INTO create_intents (server_id, attempted_at, reachable_until, attempt, agent_id)
                    VALUES (
                        NEW.id, NEW.create_attempted_at,
                        COALESCE(NEW.create_reachable_until, NEW.create_attempted_at + interval '35 seconds'),
                        NEW.create_attempts, NEW.agent_id
                    );
                    DELETE FROM create_intents
                    WHERE server_id = NEW.id AND attempted_at < NEW.create_attempted_at - interval '1 day';
                    RETURN NULL;
                END
                $$;
                CREATE OR REPLACE TRIGGER citrus_servers_create_intent
                    AFTER UPDATE OF create_attempted_at ON servers
                    FOR EACH ROW WHEN (
                        NEW.create_attempted_at IS NOT NULL
                        AND NEW.create_attempted_at IS DISTINCT FROM OLD.create_attempted_at
                    )
                    EXECUTE FUNCTION citrus_record_create_intent();
                """
        ),
        Migration(
            version: 11,
            name: "backlog in fleet_view",
            sql: """
                -- What the leader's last pass left waiting (rows on the full list being read, lookups,
                -- follow-ups) and about how long it takes at the budget, for `status`. Written by every
                -- pass while something waits, so the row exists before the first full list ends: the
                -- list's own columns may be empty until then.
                ALTER TABLE fleet_view
                    ALTER COLUMN listed_at DROP NOT NULL,
                    ALTER COLUMN pages DROP NOT NULL,
                    ALTER COLUMN droplets DROP NOT NULL,
                    ALTER COLUMN took_ms DROP NOT NULL,
                    ADD COLUMN IF NOT EXISTS backlog TEXT,
                    ADD COLUMN IF NOT EXISTS backlog_at TIMESTAMPTZ;
                """
        ),
        Migration(
            version: 12,
            name: "revisions from one sequence",
            sql: """
                -- A row deleted and inserted again with the same id started again at revision 0, so
                -- a write decided on the row before it (a pass that read it earlier) could find the
                -- new row at the same revision after as many updates, and land on it. Revisions now
                -- come from one sequence, on every insert and every update: no two versions of any
                -- row, in any of its lives, share one, and a compare-and-set can only match the
                -- version it read. SECURITY DEFINER: the roles that write rows need no privilege on
                -- the sequence.
                CREATE SEQUENCE IF NOT EXISTS servers_revision_seq;
                SELECT setval('servers_revision_seq', GREATEST(1, (SELECT COALESCE(max(revision), 0) FROM servers)));
                CREATE OR REPLACE FUNCTION citrus_servers_bump_revision() RETURNS trigger
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
                BEGIN
                    NEW.revision := nextval('servers_revision_seq');
                    RETURN NEW;
                END
                $$;
                DROP TRIGGER IF EXISTS citrus_servers_bump_revision ON servers;
                CREATE TRIGGER citrus_servers_bump_revision
                    BEFORE INSERT OR UPDATE ON servers
                    FOR EACH ROW EXECUTE FUNCTION citrus_servers_bump_revision();
                """
        ),
        Migration(
            version: 13,
            name: "failed placements",
            sql: """
                -- Droplets made for the row whose placement failed (accepted, then gone before they
                -- were ever active): each is created again, up to a bound, before the row fails.
                ALTER TABLE servers ADD COLUMN IF NOT EXISTS failed_placements INT NOT NULL DEFAULT 0;
                -- Every role that may write the daemon's columns (deploy/database-role.sql grants them
                -- one by one) may write this one too: an upgraded daemon writes it with each row.
                DO $$
                DECLARE
                    writer text;
                BEGIN
                    FOR writer IN
                        SELECT DISTINCT grantee FROM information_schema.column_privileges
                        WHERE table_schema = current_schema() AND table_name = 'servers'
                          AND column_name = 'create_attempts' AND privilege_type = 'UPDATE'
                          AND grantee <> current_user AND grantee <> 'PUBLIC'
                    LOOP
                        EXECUTE format('GRANT UPDATE (failed_placements) ON TABLE servers TO %I', writer);
                    END LOOP;
                END
                $$;
                """
        ),
        Migration(
            version: 14,
            name: "protected rows",
            sql: """
                -- The platform's (or an operator's) brake on one server: while true, its droplet is
                -- never destroyed, whatever delete_requested_at says; the row says why it waits.
                ALTER TABLE servers ADD COLUMN IF NOT EXISTS protected BOOLEAN NOT NULL DEFAULT false;
                -- A row unprotected with its deletion still requested wakes the daemon like any
                -- other change of the platform's columns.
                CREATE OR REPLACE FUNCTION citrus_servers_notify() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    IF TG_OP = 'DELETE' THEN
                        PERFORM pg_notify('citrus_servers', OLD.id::text);
                        RETURN OLD;
                    END IF;
                    IF TG_OP = 'UPDATE'
                       AND (NEW.name, NEW.region, NEW.size, NEW.image, NEW.delete_requested_at, NEW.protected)
                           IS NOT DISTINCT FROM
                           (OLD.name, OLD.region, OLD.size, OLD.image, OLD.delete_requested_at, OLD.protected)
                    THEN
                        RETURN NEW;
                    END IF;
                    PERFORM pg_notify('citrus_servers', NEW.id::text);
                    RETURN NEW;
                END
                $$;
                """
        ),
    ]

    /// The channel the notify trigger sends on; the payload is the row's id.
    public static let notificationChannel = "citrus_servers"
}
