-- The editor API's idempotency keys: a `POST /api/issues/{slug}/send` repeated with the same
-- `Idempotency-Key` gets the first answer back instead of acting again, also after a
-- restart. `fingerprint` names the request the key was first used for (method and path),
-- so the same key on another issue is refused rather than answered with the wrong issue.
CREATE TABLE api_idempotency_keys (
    idempotency_key  TEXT    PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    fingerprint      TEXT    NOT NULL,
    status           INTEGER NOT NULL CHECK (status BETWEEN 100 AND 599),
    body             TEXT    NOT NULL,
    created_at       INTEGER NOT NULL
) WITHOUT ROWID;

-- Dashboard sessions ended by logging out. A session cookie is signed and carries its own
-- expiry, so only the sessions ended early need a row: a logged-out cookie stops working
-- even if someone kept a copy. Rows are purged once the session would have expired anyway.
CREATE TABLE admin_sessions_ended (
    session_id  INTEGER PRIMARY KEY,
    expires_at  INTEGER NOT NULL
);
