-- Intents reach organisations in batches (issue 17, the polling link): a new
-- intent is pending (visible_hour NULL) until a batch boundary at which
-- enough intents are pending, or the oldest has waited long enough; then
-- every pending intent becomes visible at that boundary together, and its
-- deadline counts from there. Organisations see visible_hour as the hour it
-- was published, so a feed polled every minute shows a batch at once, in the
-- order of the random ids, instead of each intent the moment it was made.
-- Intents stored before this migration were visible from their hour.

ALTER TABLE intents ADD COLUMN visible_hour BIGINT;
UPDATE intents SET visible_hour = published_hour;

DROP INDEX intents_by_hour;
CREATE INDEX intents_by_hour ON intents
    (visible_hour DESC, intent_id, topic, region, deadline, closed, closed_visible_at);
CREATE INDEX intents_pending ON intents (published_hour) WHERE visible_hour IS NULL;
