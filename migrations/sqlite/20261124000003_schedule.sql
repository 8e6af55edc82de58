-- The scheduler: the date each issue carries, and one row per schedule tick.
--
-- issues.issue_date is the issue file's front matter `date` (Unix seconds, UTC), written
-- whenever the issue is enqueued (by the scheduler, `herald send` or the API). The scheduler
-- sends only issues newer than the newest date stored here. NULL for issues enqueued before
-- this migration or without a date.
ALTER TABLE issues ADD COLUMN issue_date INTEGER;

CREATE INDEX issues_by_issue_date ON issues (issue_date) WHERE issue_date IS NOT NULL;

-- One row per cron tick the scheduler has dealt with, inserted before it acts: the primary
-- key is what stops a restart, or a second herald process, from running a tick twice.
--
-- outcome: 'running' (claimed; stays so if the process died mid-tick), 'enqueued' (slug is
-- the issue it enqueued), 'nothing' (no issue qualified), 'skipped' (found later than
-- schedule.max_lateness_minutes), 'failed' (detail says why).
CREATE TABLE schedule_runs (
    tick_at  INTEGER PRIMARY KEY,
    ran_at   INTEGER NOT NULL,
    outcome  TEXT    NOT NULL
                     CHECK (outcome IN ('running', 'enqueued', 'nothing', 'skipped', 'failed')),
    slug     TEXT,
    detail   TEXT
);
