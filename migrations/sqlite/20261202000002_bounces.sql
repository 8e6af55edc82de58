-- Returned mail: one row per recipient of every report that came in (bounce, delay,
-- complaint, auto-reply, success notice, or none of these), from any channel, and from
-- refusals during herald's own SMTP session.
--
-- The same report received twice is one row: `report_hash` is a SHA-256 of what came in
-- (the raw mail, or the webhook event), and `recipient_index` tells apart the recipients of
-- one report. The policy reads this table: a subscriber is `bounced` after a hard bounce, or
-- after soft bounces on `bounces.soft_limit` consecutive issues sent to them.
CREATE TABLE bounces (
    id               INTEGER PRIMARY KEY,
    report_hash      TEXT    NOT NULL CHECK (length(report_hash) = 64),
    recipient_index  INTEGER NOT NULL CHECK (recipient_index >= 0),
    received_at      INTEGER NOT NULL,
    channel          TEXT    NOT NULL
                             CHECK (channel IN ('smtp', 'imap', 'import', 'session', 'ses',
                                                'postmark', 'mailgun', 'sendgrid')),
    kind             TEXT    NOT NULL
                             CHECK (kind IN ('bounce', 'delay', 'complaint', 'auto-reply',
                                             'delivered', 'none')),
    -- The delivery it is about, when found; erasing a subscriber removes their rows (a
    -- diagnostic can quote the address).
    issue_id         INTEGER REFERENCES issues (id) ON DELETE SET NULL,
    subscriber_id    INTEGER REFERENCES subscribers (id) ON DELETE CASCADE,
    -- RFC 3463 enhanced status (`5.1.1`) and SMTP reply code, when the report shows them.
    status           TEXT    CHECK (status IS NULL OR length(status) <= 9),
    reply            INTEGER CHECK (reply IS NULL OR reply BETWEEN 200 AND 599),
    diagnostic       TEXT    NOT NULL DEFAULT '' CHECK (length(diagnostic) <= 1000),
    hard             INTEGER NOT NULL DEFAULT 0 CHECK (hard IN (0, 1)),
    reason           TEXT    NOT NULL,
    feedback_type    TEXT,
    -- What the policy did with it: 'bounced', 'complained', 'counted' (a soft bounce), or
    -- 'recorded' (nothing to change, or the subscriber was already out).
    effect           TEXT    NOT NULL
                             CHECK (effect IN ('bounced', 'complained', 'counted', 'recorded')),
    UNIQUE (report_hash, recipient_index)
);

-- A subscriber's history, and the soft-bounce streak check.
CREATE INDEX bounces_by_subscriber ON bounces (subscriber_id, issue_id) WHERE subscriber_id IS NOT NULL;
-- Per-issue counts.
CREATE INDEX bounces_by_issue ON bounces (issue_id, kind) WHERE issue_id IS NOT NULL;
-- The list of recent reports.
CREATE INDEX bounces_by_time ON bounces (received_at);

-- Reports are looked up by our Message-ID when they quote only the original's headers.
CREATE INDEX deliveries_by_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;

-- Every report is written to the event trail as a 'report' event (a status change it causes
-- is a 'bounce' or 'complain' event of its own, as before). SQLite cannot change a CHECK in
-- place, so the table is rebuilt with the same columns, indexes and triggers; nothing
-- references it, and every row is copied as it is.
CREATE TABLE events_with_reports (
    id               INTEGER PRIMARY KEY,
    occurred_at      INTEGER NOT NULL,
    kind             TEXT    NOT NULL
                             CHECK (kind IN ('subscribe', 'confirm', 'unsubscribe', 'bounce', 'complain',
                                             'status_change', 'erase', 'import', 'send_request',
                                             'report')),
    subscriber_id    INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    issue_id         INTEGER REFERENCES issues (id) ON DELETE SET NULL,
    ip               TEXT,
    user_agent       TEXT,
    source           TEXT    NOT NULL,
    idempotency_key  TEXT,
    detail           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
);

INSERT INTO events_with_reports
    (id, occurred_at, kind, subscriber_id, issue_id, ip, user_agent, source, idempotency_key, detail)
SELECT id, occurred_at, kind, subscriber_id, issue_id, ip, user_agent, source, idempotency_key, detail
FROM events;

DROP TABLE events;
ALTER TABLE events_with_reports RENAME TO events;

CREATE INDEX events_by_subscriber ON events (subscriber_id, id) WHERE subscriber_id IS NOT NULL;
CREATE UNIQUE INDEX events_by_idempotency_key ON events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TRIGGER events_are_never_deleted
BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_are_never_rewritten
BEFORE UPDATE OF id, occurred_at, kind, issue_id, source, idempotency_key ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
