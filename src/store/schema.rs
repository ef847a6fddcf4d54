//! The schema: ordered migrations, each applied once, under an advisory lock so that
//! several instances can start together.

use super::error::StoreError;

/// Ordered schema migrations; a version is applied once.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE cameras (
        id TEXT PRIMARY KEY,
        folder_name TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE detections (
        id BIGSERIAL PRIMARY KEY,
        camera_id TEXT NOT NULL,
        file_path TEXT NOT NULL,
        file_hash TEXT NOT NULL,
        seq INT NOT NULL,
        object_type TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        bbox JSONB NOT NULL,
        detected_at TIMESTAMPTZ NOT NULL,
        UNIQUE (file_path, file_hash, seq)
    );
    CREATE INDEX detections_detected_at ON detections (detected_at);
    CREATE INDEX detections_camera ON detections (camera_id, detected_at);
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        batch_id TEXT NOT NULL UNIQUE,
        camera_id TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ NOT NULL,
        risk_score SMALLINT NOT NULL,
        risk_level TEXT NOT NULL,
        summary TEXT NOT NULL,
        reasoning TEXT NOT NULL,
        detection_ids BIGINT[] NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX events_created_at ON events (created_at);
    CREATE TABLE job_runs (
        job TEXT PRIMARY KEY,
        last_run_at TIMESTAMPTZ NOT NULL
    );",
    ),
    // The alert history: one row per firing, at most one firing row per fingerprint
    // (instances sharing the database never open it twice).
    (
        2,
        "CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            alertname TEXT NOT NULL,
            source TEXT NOT NULL,
            severity TEXT NOT NULL,
            summary TEXT NOT NULL,
            description TEXT NOT NULL,
            labels JSONB NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            ended_at TIMESTAMPTZ
        );
        CREATE INDEX alerts_started_at ON alerts (started_at DESC);
        CREATE UNIQUE INDEX alerts_one_firing ON alerts (fingerprint) WHERE ended_at IS NULL;",
    ),
    // What the camera registry learned about each camera (its rhythm, counts and
    // status), and a camera's newest events found without a scan.
    (
        3,
        "ALTER TABLE cameras ADD COLUMN state JSONB;
        CREATE INDEX events_camera ON events (camera_id, id DESC);",
    ),
    // When Alertmanager accepted an alert's end (a resolution not yet delivered is
    // sent again until one accepts it), and the silences, with the id each
    // Alertmanager gave its copy. Older resolutions count as delivered.
    (
        4,
        "ALTER TABLE alerts ADD COLUMN end_sent_at TIMESTAMPTZ;
        UPDATE alerts SET end_sent_at = ended_at WHERE ended_at IS NOT NULL;
        CREATE INDEX alerts_end_unsent ON alerts (ended_at) WHERE ended_at IS NOT NULL AND end_sent_at IS NULL;
        CREATE TABLE silences (
            id TEXT PRIMARY KEY,
            matchers JSONB NOT NULL,
            starts_at TIMESTAMPTZ NOT NULL,
            ends_at TIMESTAMPTZ NOT NULL,
            comment TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            remote JSONB NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX silences_ends_at ON silences (ends_at DESC);",
    ),
    // Batch membership in PostgreSQL: the batch a detection was handed to analysis in
    // (NULL until its batch closes), the events found by a detection, and what the
    // pipeline remembers of Redis (its run id: a new one means Redis forgot).
    (
        5,
        "ALTER TABLE detections ADD COLUMN batch_id TEXT;
        UPDATE detections d SET batch_id = e.batch_id FROM events e WHERE d.id = ANY (e.detection_ids);
        CREATE INDEX detections_unbatched ON detections (detected_at) WHERE batch_id IS NULL;
        CREATE INDEX detections_batch ON detections (batch_id) WHERE batch_id IS NOT NULL;
        CREATE INDEX events_detection_ids ON events USING GIN (detection_ids);
        CREATE TABLE pipeline_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );",
    ),
    // Who tells an alert's transition when several instances share the database and
    // Redis is away: the newest status told per fingerprint.
    (
        6,
        "CREATE TABLE notify_claims (
            fingerprint TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            decided_at TIMESTAMPTZ NOT NULL
        );",
    ),
    // A claim names the alert's episode too (its start), so a store that remembers an
    // earlier episode does not take a new one for told.
    (
        7,
        "ALTER TABLE notify_claims ADD COLUMN episode_start TIMESTAMPTZ;",
    ),
    // Coverage: the spans in which images would not have become detections and
    // events, and when that history begins (one row).
    (
        8,
        "CREATE TABLE coverage_spans (
            id TEXT PRIMARY KEY,
            subject_kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            cause TEXT NOT NULL,
            detail TEXT NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            ended_at TIMESTAMPTZ
        );
        CREATE INDEX coverage_spans_subject ON coverage_spans (subject_kind, subject, started_at);
        CREATE INDEX coverage_spans_ended ON coverage_spans (ended_at);
        CREATE INDEX coverage_spans_open ON coverage_spans (started_at) WHERE ended_at IS NULL;
        CREATE TABLE coverage_history (
            one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
            since TIMESTAMPTZ NOT NULL
        );",
    ),
    // Maintenance windows and snoozes made through the API (the config's recurring
    // windows are not stored).
    (
        9,
        "CREATE TABLE maintenance_windows (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            scope JSONB NOT NULL,
            schedule JSONB NOT NULL,
            comment TEXT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            ended_at TIMESTAMPTZ
        );",
    ),
    // One-tap actions: the key that signs their links (one row, made by the first
    // instance that needs it), the links used (so a replay anywhere is refused), and
    // the alerts acknowledged (per fingerprint, the newest).
    (
        10,
        "CREATE TABLE action_key (
            id SMALLINT PRIMARY KEY CHECK (id = 1),
            key BYTEA NOT NULL,
            created_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE actions_used (
            nonce TEXT PRIMARY KEY,
            used_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL
        );
        CREATE TABLE acknowledgements (
            fingerprint TEXT PRIMARY KEY,
            acknowledged_at TIMESTAMPTZ NOT NULL
        );",
    ),
    // The fleet: each instance's record, written every few heartbeats (read while
    // Redis is away).
    (
        11,
        "CREATE TABLE instances (
            id TEXT PRIMARY KEY,
            record JSONB NOT NULL,
            heartbeat_at TIMESTAMPTZ NOT NULL
        );",
    ),
    // Cameras belong to a camera root (its identity: hosts with folders of the same
    // name keep two cameras) and are written by one instance at a time, their owner
    // (another takes them over once the owner is no longer up). Rows from before
    // are adopted by the first root that reads them.
    (
        12,
        "ALTER TABLE cameras ADD COLUMN scope TEXT NOT NULL DEFAULT '';
        ALTER TABLE cameras ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        ALTER TABLE cameras DROP CONSTRAINT cameras_pkey;
        ALTER TABLE cameras ADD PRIMARY KEY (scope, id);",
    ),
];

pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // One instance migrates at a time; the lock ends with the transaction. Notices
    // ("relation … already exists, skipping") are not worth a log line at every start.
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(7457001)",
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INT PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "database migration applied");
    }
    tx.commit().await?;
    Ok(())
}
