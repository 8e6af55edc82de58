-- When the scheduler first ran on this database: ticks before it are not "missed" (herald
-- was not running them yet), so they are neither run nor warned about at start.
--
-- One row. A database that has run ticks already starts at its first one.
CREATE TABLE schedule_start (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    started_at  INTEGER NOT NULL
);

INSERT INTO schedule_start (id, started_at)
SELECT 1, MIN(tick_at) FROM schedule_runs HAVING COUNT(*) > 0;
