-- Every herald process that serves or sends (a node) keeps a row here, rewritten every few
-- seconds while it runs and removed when it stops cleanly: `herald status` and the
-- dashboard list the nodes whose heartbeat is recent. `role` is `web`, `worker` or `all`
-- for `herald serve`, `send` for `herald send`.
CREATE TABLE nodes (
    id            TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    role          TEXT    NOT NULL CHECK (role IN ('web', 'worker', 'all', 'send')),
    started_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);

-- The node that sent each `sent` row (NULL for rows sent before nodes had ids).
ALTER TABLE deliveries ADD COLUMN sent_by TEXT;
CREATE INDEX deliveries_sent_by ON deliveries (sent_by) WHERE sent_by IS NOT NULL;
