-- One row that `GET /health` rewrites (at most every few seconds) to prove the database
-- still takes writes: a full disk, a file gone read-only or a lock held elsewhere shows
-- there, not only in the requests that fail.
CREATE TABLE health_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at INTEGER NOT NULL
);
