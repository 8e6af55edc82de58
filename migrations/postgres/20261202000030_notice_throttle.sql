-- The ten-minute limit on confirmation mails looks for a confirmation queued, sent or on its
-- way to one subscriber. A sign-up that sends nothing (the address is subscribed, or was
-- sent one a moment ago) leaves a `skipped` row; with the status in the index those rows are
-- stepped over, not read one by one, so repeated sign-ups of one address stay as fast as
-- the first.
DROP INDEX notices_by_subscriber;
CREATE INDEX notices_by_subscriber ON notices (subscriber_id, kind, status, queued_at);
