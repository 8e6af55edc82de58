-- The index of due work in claim order. A claim takes the first rows of an issue by
-- (next_attempt_at, subscriber_id); with the status as the index's second column the rows
-- came out in that order only per status, so every claim read and sorted every due row of
-- the issue before keeping a batch of them, and a send took time quadratic in its size.
-- Read in this order, a claim stops at its batch. The next-due lookups read it too.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (issue_id, next_attempt_at, subscriber_id)
    WHERE status IN ('queued', 'retry');

-- A lease token only on a row in flight (the first check already ties `sending` to a
-- lease, not yet a lease to `sending`). Marking a group sent then asks only for each row's
-- token, which the planner does not misjudge the way it does a status right after an
-- enqueue (see store/postgres/bulk.rs).
ALTER TABLE deliveries ADD CONSTRAINT deliveries_token_only_in_flight
    CHECK (lease_token IS NULL OR status = 'sending');
