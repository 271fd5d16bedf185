"""The PostgreSQL schema and its migrations, applied by `migrate` and on every server start.

Everything lives in its own schema (`pokitdok_sandbox`), so the sandbox can share a
database with other tables. `schema_version` names the format and its version; a
schema of that name without it, or with another format's name, is refused untouched.
"""

from __future__ import annotations

from .base import FORMAT_MARK, StoreError

SCHEMA = "pokitdok_sandbox"
# Taken around a migration, so several processes starting at once migrate once.
_MIGRATION_LOCK = 0x706F6B6974646F6B  # "pokitdok"

MIGRATIONS: list[str] = [
    # 1: the first schema. (Its first release also created the extension btree_gist and, on slots, the
    # exclusion constraint slots_no_overlap; version 2 drops that constraint, so a new database needs
    # neither.)
    """
    CREATE TABLE meta (key text PRIMARY KEY, doc text NOT NULL);
    CREATE TABLE tenants (tenant text PRIMARY KEY, settings text NOT NULL);
    CREATE TABLE clients (client_id text PRIMARY KEY, doc text NOT NULL);
    CREATE TABLE tokens (access_token text PRIMARY KEY, expires_at double precision NOT NULL, doc text NOT NULL);
    CREATE INDEX tokens_by_expiry ON tokens (expires_at);
    -- Catalogue records, patients, providers, registrations; `seq` keeps the stored order.
    CREATE TABLE records (
        tenant text NOT NULL,
        kind text NOT NULL,
        key text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        doc text NOT NULL,
        PRIMARY KEY (tenant, kind, key)
    );
    -- Slots and appointments: the record as JSON text in `doc` (exactly as answered),
    -- plus the columns the queries and constraints need.
    CREATE TABLE slots (
        tenant text NOT NULL,
        uuid text NOT NULL,
        provider text NOT NULL,
        patient text,                -- lower-case patient uuid of a booking
        booked boolean NOT NULL,
        start_at timestamp NOT NULL, -- UTC
        end_at timestamp NOT NULL,
        place_lat bigint NOT NULL,   -- micro-degrees: one place as geo.same_place sees it
        place_lon bigint NOT NULL,
        cell bigint NOT NULL,        -- map cell of slot_index.cell_of, for location searches
        doc text NOT NULL,
        PRIMARY KEY (tenant, uuid)
    );
    CREATE INDEX slots_by_provider ON slots (tenant, provider, start_at);
    CREATE INDEX slots_by_patient ON slots (tenant, patient) WHERE patient IS NOT NULL;
    CREATE INDEX slots_by_start ON slots (tenant, start_at);
    CREATE INDEX slots_by_cell ON slots (tenant, cell, start_at);
    """,
    # 2: no exclusion constraint (its GiST index cost four fifths of a million-slot seed); the store
    # keeps slots of one provider at one place apart itself, under the calendar's advisory lock, with
    # two probes of slots_by_calendar (see postgres.py). Each tenant's slot count kept beside its
    # settings, so counting stays cheap. Written to be re-run safely.
    """
    ALTER TABLE slots DROP CONSTRAINT IF EXISTS slots_no_overlap;
    CREATE INDEX IF NOT EXISTS slots_by_calendar ON slots (tenant, provider, place_lat, place_lon, start_at);
    ALTER TABLE tenants ADD COLUMN IF NOT EXISTS slot_count bigint;
    UPDATE tenants SET slot_count = (SELECT count(*) FROM slots WHERE slots.tenant = tenants.tenant);
    ALTER TABLE tenants ALTER COLUMN slot_count SET DEFAULT 0, ALTER COLUMN slot_count SET NOT NULL;
    """,
    # 3: a provider's open slots in the order searches page them, with what their filter reads, so
    # a page is read from the index in order and its matches counted from the index alone, instead
    # of fetching every matching row from a table that no longer fits in memory (a million slots).
    """
    CREATE INDEX IF NOT EXISTS slots_open_by_provider ON slots (tenant, provider, start_at, uuid)
        INCLUDE (end_at) WHERE NOT booked;
    """,
    # 4: each token's client beside it, so a client's live tokens are counted and the oldest dropped
    # (the cap of live tokens per client) from an index.
    """
    ALTER TABLE tokens ADD COLUMN IF NOT EXISTS client_id text;
    UPDATE tokens SET client_id = (doc::json ->> 'client_id') WHERE client_id IS NULL;
    CREATE INDEX IF NOT EXISTS tokens_by_client ON tokens (client_id, expires_at);
    """,
]


def migrate(conn, where: str) -> int:
    """Create or bring the schema up to date on an open connection; answer its version.

    `where` names the database in errors (the URL without password).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.schema_version",)).fetchone()[0] is None:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (SCHEMA,)).fetchone()[0]
            if tables:
                raise StoreError(f"{where}: schema {SCHEMA} holds tables but no schema_version; it is not a "
                                 f"pokitdok-sandbox database, refusing to touch it")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(f"CREATE TABLE {SCHEMA}.schema_version (name text NOT NULL, version integer NOT NULL)")
            conn.execute(f"INSERT INTO {SCHEMA}.schema_version VALUES (%s, 0)", (FORMAT_MARK,))
        rows = conn.execute(f"SELECT name, version FROM {SCHEMA}.schema_version").fetchall()
        if len(rows) != 1 or rows[0][0] != FORMAT_MARK:
            raise StoreError(f"{where}: schema {SCHEMA} is not a pokitdok-sandbox database "
                             f"(schema_version says {rows!r}); refusing to touch it")
        version = rows[0][1]
        if version > len(MIGRATIONS):
            raise StoreError(f"{where} has schema version {version}, this sandbox knows up to {len(MIGRATIONS)}; "
                             "upgrade pokitdok-sandbox")
        conn.execute(f"SET LOCAL search_path TO {SCHEMA}")
        for number in range(version, len(MIGRATIONS)):
            conn.execute(MIGRATIONS[number])
        if version < len(MIGRATIONS):
            conn.execute("UPDATE schema_version SET version = %s", (len(MIGRATIONS),))
        return len(MIGRATIONS)
