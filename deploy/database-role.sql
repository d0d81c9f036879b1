-- Least-privileged database role for the citrus-reconciler daemon.
--
-- Run as the owner of the tables (the role that runs `citrus-reconciler migrate`), in the
-- daemon's database, after the migrations:
--     psql -v ON_ERROR_STOP=1 -d citrus -f deploy/database-role.sql
-- It is idempotent; run it again after migrations that add tables the daemon must read.
--
-- The daemon (`citrus-reconciler run`) then connects as citrus_reconciler. It cannot create,
-- alter or drop anything: migrations are run by the table owner, never by this role. Give the
-- role a way to log in that suits the site (a password with `\password citrus_reconciler`,
-- stored in /etc/citrus-reconciler/citrus-reconciler.env or a .pgpass; a client certificate);
-- none is set here.
--
-- What the daemon needs and nothing more:
--   servers          SELECT; UPDATE of the daemon's own columns only (column privileges).
--                    The trigger that bumps `revision` and sends NOTIFY runs with the table's
--                    rules, and column privileges apply only to the columns an UPDATE names,
--                    so neither needs a grant. User columns (name, region, size, image,
--                    delete_requested_at) stay read-only for the daemon; no INSERT, no DELETE.
--   server_events    INSERT and SELECT (the durable audit trail), USAGE on its id sequence.
--   agents           SELECT; INSERT, and UPDATE of key_sha256, connected_at, last_seen_at and
--                    hub_credential_sha256 (agent bootstrap: a row's agent is made, or re-keyed,
--                    with each create; its key is cleared once the hub has let the agent in).
--   schema_migrations SELECT (to check the schema is current before READY=1).
--   fleet_view       SELECT, INSERT, UPDATE (its one row: when the leader last listed the whole
--                    fleet at DigitalOcean, which `status` shows; written as an upsert).
--   destroy_allowances SELECT only: operators (`citrus-reconciler destroys allow`, as a role
--                    that may INSERT there) allow destroys past the budget; the daemon reads it.
--   create_intents   SELECT only. Every create intent written to a row is appended here by a
--                    trigger whose function runs as the table's owner (SECURITY DEFINER), so the
--                    daemon can neither forge nor erase a record of a create it sent.
--   the database     CONNECT; schema public USAGE (PostgreSQL 15+ gives PUBLIC no CREATE there).
-- LISTEN/NOTIFY and the advisory-lock functions (leadership) are allowed to every role.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'citrus_reconciler') THEN
        CREATE ROLE citrus_reconciler LOGIN;
    END IF;
END
$$;

ALTER ROLE citrus_reconciler LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO citrus_reconciler', current_database());
END
$$;

GRANT USAGE ON SCHEMA public TO citrus_reconciler;

-- Start from nothing on the tables, so re-running removes privileges granted by hand.
REVOKE ALL ON TABLE servers, server_events, agents, schema_migrations, fleet_view, create_intents, destroy_allowances
    FROM citrus_reconciler;

GRANT SELECT ON TABLE servers TO citrus_reconciler;
GRANT UPDATE (
    status,
    digital_ocean_id,
    ip_address,
    ipv6_address,
    last_error,
    create_attempted_at,
    create_reachable_until,
    create_attempts,
    failed_placements,
    transient_failures,
    next_attempt_at,
    agent_id,
    agent_awaited_since,
    droplet_name,
    droplet_region,
    droplet_size,
    droplet_image,
    drift,
    drift_since,
    created_with,
    project_assigned,
    change_goal,
    change_target,
    change_step,
    change_action_id,
    change_sent_at,
    change_failure,
    refused_change,
    refused_value,
    refused_reason,
    updated_at
) ON TABLE servers TO citrus_reconciler;

-- Agent bootstrap: the daemon makes (or re-keys) a row's agent before each create. It reads what
-- the hub records (connected_at, last_seen_at, the hub's own credential) and resets them on a
-- re-key; it clears the key once the agent has connected (single-use); it never deletes.
GRANT SELECT, INSERT ON TABLE agents TO citrus_reconciler;
GRANT UPDATE (key_sha256, connected_at, last_seen_at, hub_credential_sha256) ON TABLE agents TO citrus_reconciler;

GRANT SELECT, INSERT ON TABLE server_events TO citrus_reconciler;

-- The events id is a serial or identity column; INSERT draws from its sequence.
DO $$
DECLARE
    sequence_name text := pg_catalog.pg_get_serial_sequence('server_events', 'id');
BEGIN
    IF sequence_name IS NOT NULL THEN
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO citrus_reconciler', sequence_name);
    END IF;
END
$$;

GRANT SELECT ON TABLE schema_migrations TO citrus_reconciler;

-- The last full view of the fleet (migration 9): one row, replaced after each full list.
-- INSERT … ON CONFLICT DO UPDATE needs INSERT, UPDATE of the columns it sets, and SELECT.
GRANT SELECT, INSERT, UPDATE ON TABLE fleet_view TO citrus_reconciler;
GRANT SELECT ON TABLE create_intents TO citrus_reconciler;
-- The destroy brake (migration 16): the daemon reads allowances; operators write them.
GRANT SELECT ON TABLE destroy_allowances TO citrus_reconciler;
