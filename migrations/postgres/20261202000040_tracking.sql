-- Click and open tracking (`[tracking]`), and the per-issue report's indexes. See the
-- SQLite twin, which explains the tables and columns.
CREATE TABLE tracked_links (
    issue_id  BIGINT  NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    link      TEXT    NOT NULL CHECK (length(link) BETWEEN 1 AND 16),
    url       TEXT    NOT NULL CHECK (length(url) BETWEEN 1 AND 8192),
    position  BIGINT  NOT NULL CHECK (position >= 0),
    clicks    BIGINT  NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    readers   BIGINT  NOT NULL DEFAULT 0 CHECK (readers >= 0),
    PRIMARY KEY (issue_id, link)
);

CREATE TABLE tracking_readers (
    issue_id  BIGINT  NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    scope     TEXT    NOT NULL CHECK (length(scope) BETWEEN 1 AND 16),
    reader    BYTEA   NOT NULL CHECK (length(reader) = 16),
    PRIMARY KEY (issue_id, scope, reader)
);

CREATE TABLE tracking_hours (
    issue_id       BIGINT  NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    hour           BIGINT  NOT NULL CHECK (hour % 3600 = 0),
    clicks         BIGINT  NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    opens          BIGINT  NOT NULL DEFAULT 0 CHECK (opens >= 0),
    machine_opens  BIGINT  NOT NULL DEFAULT 0 CHECK (machine_opens >= 0),
    PRIMARY KEY (issue_id, hour)
);

CREATE TABLE tracking_agents (
    issue_id  BIGINT  NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    kind      TEXT    NOT NULL CHECK (kind IN ('click', 'open')),
    agent     TEXT    NOT NULL CHECK (agent IN ('mail_client', 'browser', 'scanner', 'unknown')),
    hits      BIGINT  NOT NULL DEFAULT 0 CHECK (hits >= 0),
    PRIMARY KEY (issue_id, kind, agent)
);

CREATE TABLE tracking_subscribers (
    issue_id       BIGINT  NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    subscriber_id  BIGINT  NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('click', 'open')),
    link           TEXT    NOT NULL DEFAULT '',
    first_at       BIGINT  NOT NULL,
    last_at        BIGINT  NOT NULL,
    hits           BIGINT  NOT NULL DEFAULT 1 CHECK (hits >= 1),
    PRIMARY KEY (issue_id, subscriber_id, kind, link)
);

CREATE INDEX tracking_subscribers_by_subscriber ON tracking_subscribers (subscriber_id);

CREATE INDEX events_by_issue ON events (issue_id, kind, occurred_at) WHERE issue_id IS NOT NULL;
