-- Click and open tracking (`[tracking]`), and the per-issue report's indexes. What each
-- mode stores is in the README ("What each tracking mode stores"). No table holds an IP
-- address or a user agent: a hit's agent is kept only as a coarse class, counted.

-- The links of an issue that go through /l/{link}/{token}: `link` is a short id derived
-- from the URL (the same URL is one link however often the issue shows it), `position`
-- its order of first appearance. `clicks` counts every counted click, `readers` the
-- distinct readers who followed it.
CREATE TABLE tracked_links (
    issue_id  INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    link      TEXT    NOT NULL CHECK (length(link) BETWEEN 1 AND 16),
    url       TEXT    NOT NULL CHECK (length(url) BETWEEN 1 AND 8192),
    position  INTEGER NOT NULL CHECK (position >= 0),
    clicks    INTEGER NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    readers   INTEGER NOT NULL DEFAULT 0 CHECK (readers >= 0),
    PRIMARY KEY (issue_id, link)
) WITHOUT ROWID;

-- Unique readers, as keyed hashes (HMAC under web.secret_key of the issue and subscriber
-- ids, 16 bytes): one row per reader who clicked (`scope` 'click'), opened ('open'), or
-- followed one link (`scope` is the link id). The hash differs per issue and cannot be
-- joined back to a subscriber without the secret key.
CREATE TABLE tracking_readers (
    issue_id  INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    scope     TEXT    NOT NULL CHECK (length(scope) BETWEEN 1 AND 16),
    reader    BLOB    NOT NULL CHECK (length(reader) = 16),
    PRIMARY KEY (issue_id, scope, reader)
) WITHOUT ROWID;

-- Counted hits per issue and hour (`hour`: Unix seconds at the start of the hour, UTC).
-- Machine opens (privacy proxies and scanners fetching the image) are apart from opens.
CREATE TABLE tracking_hours (
    issue_id       INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    hour           INTEGER NOT NULL CHECK (hour % 3600 = 0),
    clicks         INTEGER NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    opens          INTEGER NOT NULL DEFAULT 0 CHECK (opens >= 0),
    machine_opens  INTEGER NOT NULL DEFAULT 0 CHECK (machine_opens >= 0),
    PRIMARY KEY (issue_id, hour)
) WITHOUT ROWID;

-- Counted hits per issue by coarse agent class.
CREATE TABLE tracking_agents (
    issue_id  INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    kind      TEXT    NOT NULL CHECK (kind IN ('click', 'open')),
    agent     TEXT    NOT NULL CHECK (agent IN ('mail_client', 'browser', 'scanner', 'unknown')),
    hits      INTEGER NOT NULL DEFAULT 0 CHECK (hits >= 0),
    PRIMARY KEY (issue_id, kind, agent)
) WITHOUT ROWID;

-- Only in "individual" mode: who clicked (which link) or opened, for list cleaning. Erasing
-- a subscriber removes their rows.
CREATE TABLE tracking_subscribers (
    issue_id       INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('click', 'open')),
    -- The link id for a click, '' for an open.
    link           TEXT    NOT NULL DEFAULT '',
    first_at       INTEGER NOT NULL,
    last_at        INTEGER NOT NULL,
    hits           INTEGER NOT NULL DEFAULT 1 CHECK (hits >= 1),
    PRIMARY KEY (issue_id, subscriber_id, kind, link)
) WITHOUT ROWID;

CREATE INDEX tracking_subscribers_by_subscriber ON tracking_subscribers (subscriber_id);

-- The report's unsubscribes per issue (an issue's unsubscribe link names it).
CREATE INDEX events_by_issue ON events (issue_id, kind, occurred_at) WHERE issue_id IS NOT NULL;
