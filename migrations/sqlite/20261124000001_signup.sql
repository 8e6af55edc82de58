-- Sign-up with double opt-in: the durable queue of notices (confirmation and welcome mails).
--
-- A notice is one transactional mail to one subscriber. Sign-up inserts a 'confirm' row in
-- the same transaction as the pending subscriber and its consent event, so an accepted
-- sign-up always has its mail queued; a worker in `herald serve` sends it. The life of a row
-- follows the delivery ledger: 'queued' -> 'sending' (claimed under a lease) -> 'sent',
-- 'retry' (claimable again once next_attempt_at has passed), 'failed' or 'skipped' (the
-- subscriber no longer needs it, e.g. already confirmed).

CREATE TABLE notices (
    id               INTEGER PRIMARY KEY,
    subscriber_id    INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL CHECK (kind IN ('confirm', 'welcome')),
    status           TEXT    NOT NULL DEFAULT 'queued'
                             CHECK (status IN ('queued', 'sending', 'sent', 'retry', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the row was queued: the start of its retry lifetime, and the per-address limit
    -- of one confirmation mail per ten minutes.
    queued_at        INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    lease_token      INTEGER,
    last_reply       TEXT,
    message_id       TEXT,
    sent_at          INTEGER,
    CHECK ((status = 'sending') = (lease_until IS NOT NULL AND lease_token IS NOT NULL))
);

-- Claiming work: queued or retry rows, oldest due first; also expired leases.
CREATE INDEX notices_due ON notices (status, next_attempt_at);
-- The per-address limit, and the ON DELETE CASCADE from subscribers (erasure).
CREATE INDEX notices_by_subscriber ON notices (subscriber_id, kind, queued_at);
