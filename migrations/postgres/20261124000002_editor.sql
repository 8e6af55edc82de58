-- The editor API's idempotency keys and the dashboard sessions ended early. See the SQLite
-- twin.
CREATE TABLE api_idempotency_keys (
    idempotency_key  TEXT    PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    fingerprint      TEXT    NOT NULL,
    status           BIGINT  NOT NULL CHECK (status BETWEEN 100 AND 599),
    body             TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL
);

CREATE TABLE admin_sessions_ended (
    session_id  BIGINT  PRIMARY KEY,
    expires_at  BIGINT  NOT NULL
);
