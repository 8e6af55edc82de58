-- The scheduler: the date each issue carries, and one row per schedule tick. See the SQLite
-- twin.
ALTER TABLE issues ADD COLUMN issue_date BIGINT;

CREATE INDEX issues_by_issue_date ON issues (issue_date) WHERE issue_date IS NOT NULL;

CREATE TABLE schedule_runs (
    tick_at  BIGINT  PRIMARY KEY,
    ran_at   BIGINT  NOT NULL,
    outcome  TEXT    NOT NULL
                     CHECK (outcome IN ('running', 'enqueued', 'nothing', 'skipped', 'failed')),
    slug     TEXT,
    detail   TEXT
);
