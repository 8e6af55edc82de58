-- herald's schema: subscribers, issues, the per-recipient delivery ledger, the append-only
-- event trail, and the hashes of erased addresses.
--
-- Conventions:
-- * Every time is INTEGER Unix seconds (UTC). Comparisons such as
--   `next_attempt_at <= now` stay plain integer comparisons.
-- * Status columns are TEXT with a CHECK listing the allowed values.
-- * JSON columns are TEXT with a json_valid CHECK.

CREATE TABLE subscribers (
    id                  INTEGER PRIMARY KEY,
    -- As parsed by EmailAddress: ASCII only (dot-atom local part, punycode domain), domain
    -- lower-cased, local part as given. NOCASE makes the uniqueness case-insensitive; it
    -- folds ASCII letters only, which covers every address EmailAddress admits.
    email               TEXT    NOT NULL COLLATE NOCASE UNIQUE
                                CHECK (length(email) BETWEEN 3 AND 254),
    name                TEXT    CHECK (name IS NULL OR length(name) <= 100),
    status              TEXT    NOT NULL
                                CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
    attributes          TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
    created_at          INTEGER NOT NULL,
    confirmed_at        INTEGER,
    unsubscribed_at     INTEGER,
    consent_ip          TEXT,
    consent_user_agent  TEXT,
    -- Where the subscriber came from: 'cli', 'import', 'web', ...
    source              TEXT    NOT NULL
);

-- The dispatcher's "every active subscriber" scan, and `list --status`.
CREATE INDEX subscribers_by_status ON subscribers (status, id);

-- Erasure (`herald subscribers remove`) deletes the subscriber and keeps only a keyed hash
-- (HMAC-SHA256 under the instance secret) of the lower-cased address, so that a later import
-- cannot silently add the person back.
CREATE TABLE erased_addresses (
    address_hash  BLOB    PRIMARY KEY CHECK (length(address_hash) = 32),
    erased_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE issues (
    id             INTEGER PRIMARY KEY,
    slug           TEXT    NOT NULL UNIQUE,
    title          TEXT    NOT NULL,
    subject        TEXT    NOT NULL,
    -- Hash of the issue file as enqueued, to notice edits after a send started.
    source_hash    TEXT    NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'draft'
                           CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled')),
    scheduled_for  INTEGER,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER
);

-- One row per (issue, recipient): the durable truth of what was sent.
--
-- Life of a row: 'queued' (enqueue) -> 'sending' (claimed under a lease) -> 'sent', 'retry'
-- (claimable again once next_attempt_at has passed), 'failed' or 'skipped'. A 'sending' row
-- whose lease expired (a dispatcher crashed) goes back to 'retry'.
CREATE TABLE deliveries (
    issue_id         INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    -- Erasing a subscriber removes their ledger rows too: SMTP replies can quote the address.
    subscriber_id    INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status           TEXT    NOT NULL DEFAULT 'queued'
                             CHECK (status IN ('queued', 'sending', 'sent', 'retry', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the row was enqueued: the start of its retry lifetime (give_up_after_hours).
    queued_at        INTEGER NOT NULL,
    -- When a 'queued' or 'retry' row is due. A queued row is due at queued_at, so one range
    -- scan of deliveries_due per status serves the claim, oldest due first.
    next_attempt_at  INTEGER NOT NULL,
    -- Set while 'sending': until when the claim holds, and which dispatcher run holds it.
    lease_until      INTEGER,
    lease_token      INTEGER,
    -- 1 when the row failed with a permanent (5xx) reply, so "retry failed" can skip it.
    permanent        INTEGER NOT NULL DEFAULT 0 CHECK (permanent IN (0, 1)),
    last_reply       TEXT,
    message_id       TEXT,
    sent_at          INTEGER,
    PRIMARY KEY (issue_id, subscriber_id),
    CHECK ((status = 'sending') = (lease_until IS NOT NULL AND lease_token IS NOT NULL))
) WITHOUT ROWID;

-- Claiming work: rows of one issue that are queued or due for retry, oldest due first (one
-- range scan per status; the primary key's subscriber_id breaks ties in index order). Also
-- serves the counts by status and the renewal of one issue's leases.
CREATE INDEX deliveries_due ON deliveries (issue_id, status, next_attempt_at);
-- Expired leases after a crash.
CREATE INDEX deliveries_leased ON deliveries (status, lease_until) WHERE status = 'sending';
-- Needed by the ON DELETE CASCADE from subscribers.
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);

-- The append-only audit trail and consent record. Rows are never deleted; erasure may only
-- strip personal data (subscriber link, IP, user agent, detail) from a row.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    occurred_at      INTEGER NOT NULL,
    kind             TEXT    NOT NULL
                             CHECK (kind IN ('subscribe', 'confirm', 'unsubscribe', 'bounce', 'complain',
                                             'status_change', 'erase', 'import', 'send_request')),
    subscriber_id    INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    issue_id         INTEGER REFERENCES issues (id) ON DELETE SET NULL,
    ip               TEXT,
    user_agent       TEXT,
    -- Who or what caused it: 'cli', 'import', 'web', 'api', 'dispatcher', ...
    source           TEXT    NOT NULL,
    -- Set for requests that may be retried (API sends, web forms): a repeat is a no-op.
    idempotency_key  TEXT,
    detail           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
);

CREATE INDEX events_by_subscriber ON events (subscriber_id, id) WHERE subscriber_id IS NOT NULL;
-- Partial: most events (every imported subscriber's) have no key, and need no index entry.
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
