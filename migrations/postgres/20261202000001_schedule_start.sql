-- When the scheduler first ran on this database. See the SQLite twin of this migration.
CREATE TABLE schedule_start (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    started_at  BIGINT  NOT NULL
);

INSERT INTO schedule_start (id, started_at)
SELECT 1, MIN(tick_at) FROM schedule_runs HAVING COUNT(*) > 0;
