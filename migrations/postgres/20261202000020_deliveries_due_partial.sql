-- The index of due work covers only the rows that can be due (queued and retry). Over all
-- statuses, the planner took it for "this issue's rows in `sending`" when recording the
-- outcome of one claimed row, instead of the primary key, whenever the table had no
-- statistics yet (right after a large enqueue): every outcome then read every row in
-- flight, and recording a batch took time quadratic in its size. Claims and the next-due
-- lookups read it as before.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (issue_id, status, next_attempt_at)
    WHERE status IN ('queued', 'retry');
