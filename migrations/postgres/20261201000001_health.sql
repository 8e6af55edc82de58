-- The one row `GET /health` rewrites to prove the database still takes writes.
CREATE TABLE health_probe (
    id        BIGINT  PRIMARY KEY CHECK (id = 1),
    probed_at BIGINT  NOT NULL
);
