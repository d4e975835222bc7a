-- The orchestrator's own database role: what it needs, and nothing else (docs/database.md).
--
-- Run once, on the Paris primary, as the RDS master user, in the database the plan names
-- (`dbname` of `database.credentials_secret`); it replicates to the Ireland replica with the
-- rest of the database. Then keep `{"username": "dr_orchestrator", "password": ...,
-- "dbname": ...}` in that secret.
--
--   psql "host=<primary endpoint> dbname=<database> user=<master> sslmode=verify-full \
--         sslrootcert=crates/dr-core/certs/rds-ca-bundle.pem" \
--        -v password='<the role password>' -f docs/database.sql
--
-- The local stack runs this very file on every PostgreSQL pair it starts
-- (crates/dr-emulator/src/postgres.rs), and the fence, the barrier and the heartbeat are tested
-- under this role (tests/database.rs).
\set ON_ERROR_STOP on

-- Logs in; owns nothing but its heartbeat table.
SELECT format('CREATE ROLE dr_orchestrator LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dr_orchestrator') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO dr_orchestrator', current_database()) \gexec

-- The heartbeat (RPO check, barrier of a planned move): its own schema, owned by the master, in
-- which the role creates and owns one table, dr_orchestrator.heartbeat.
CREATE SCHEMA IF NOT EXISTS dr_orchestrator;
GRANT USAGE, CREATE ON SCHEMA dr_orchestrator TO dr_orchestrator;
ALTER TABLE IF EXISTS dr_orchestrator.heartbeat OWNER TO dr_orchestrator;

-- The read-only fence, setting: `ALTER DATABASE ... SET default_transaction_read_only` needs the
-- database's owner. The role gets that one statement, for this database only, through a function
-- that runs as its owner (SECURITY DEFINER, a fixed search_path), not the ownership.
CREATE OR REPLACE FUNCTION dr_orchestrator.fence_writes(fenced boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF fenced THEN
    EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database());
  ELSE
    EXECUTE format('ALTER DATABASE %I RESET default_transaction_read_only', current_database());
  END IF;
END
$$;
REVOKE ALL ON FUNCTION dr_orchestrator.fence_writes(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dr_orchestrator.fence_writes(boolean) TO dr_orchestrator;

-- The read-only fence, ending the application's open sessions (they reconnect read-only):
-- pg_terminate_backend on sessions of roles that are not superusers.
GRANT pg_signal_backend TO dr_orchestrator;
