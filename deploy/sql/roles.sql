-- The roles of a leadsync database, with least privilege. Idempotent: run it when you create
-- the database, and again after every `leadsync migrate` that adds views (it grants the analyst
-- role whatever analyst relations exist at that moment, and nothing else).
--
--   psql "postgres://postgres@db.example/leadsync" -v app_password="$LEADSYNC_APP_PASSWORD" \
--        -f deploy/sql/roles.sql
--
-- Run it as a superuser, connected to leadsync's database (roles are cluster-wide; the grants
-- are per database). psql variables (-v name=value), all optional:
--
--   app_role      leadsync_app       the daemon's role: LOGIN; reads and writes leadsync's tables
--   analyst_role  leadsync_analyst   a NOLOGIN group for people: SELECT on `leads` and the
--                                    analyst views, nothing else (GRANT it to each person's login)
--   app_password  (unchanged)        sets the app role's password (or use psql's \password)
--   app_migrates  on                 on: the app role may CREATE in the schema, so `sync`/`run`
--                                    can apply migrations (database.migrate_on_start = true) and
--                                    owns what they create. off: the role running this script owns
--                                    the schema and runs `leadsync migrate` itself; the app role
--                                    only reads and writes (set migrate_on_start = false)

\set ON_ERROR_STOP on
\if :{?app_role}
\else
\set app_role leadsync_app
\endif
\if :{?analyst_role}
\else
\set analyst_role leadsync_analyst
\endif
\if :{?app_migrates}
\else
\set app_migrates on
\endif

BEGIN;

-- Roles are cluster-wide: create them only if missing, so the script runs again cleanly.
SELECT format('CREATE ROLE %I LOGIN', :'app_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role')
\gexec
SELECT format('CREATE ROLE %I NOLOGIN', :'analyst_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'analyst_role')
\gexec
\if :{?app_password}
SELECT format('ALTER ROLE %I PASSWORD %L', :'app_role', :'app_password')
\gexec
\endif

SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I',
              current_database(), :'app_role', :'analyst_role')
\gexec

-- Nobody creates objects in the schema by default (PostgreSQL 15 already says so; older
-- versions let every role create tables in public).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app_role", :"analyst_role";
\if :app_migrates
GRANT CREATE ON SCHEMA public TO :"app_role";
\else
REVOKE CREATE ON SCHEMA public FROM :"app_role";
\endif

-- The app: read and write every leadsync table and sequence, present (created by whoever
-- migrated before) and future (created by the role running this script, when it migrates).
-- Tables the app role creates itself are its own.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app_role";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
      GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public
      GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";

-- The analysts: first take back anything granted before (a re-run tightens, never widens), then
-- SELECT on the leads and the analyst views that exist now, by name. The bookkeeping tables
-- (sync_state, sync_runs, rejected_leads, forgotten_leads, bots) stay out of reach: the views
-- read them with their owner's rights. No default privileges here on purpose: a future table
-- must not become readable just because it exists; re-run this script after migrating.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"analyst_role";
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM :"analyst_role";
SELECT format('GRANT SELECT ON %I.%I TO %I', n.nspname, c.relname, :'analyst_role')
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public'
   AND c.relname IN ('leads', 'lead_changes', 'current_leads', 'leads_per_bot_day',
                     'latest_leads', 'sync_freshness')
 ORDER BY c.relname
\gexec

COMMIT;
