-- HubSpot's real windows (issue 12): the per-portal budget becomes a rolling window of granted
-- request slots instead of a token bucket of capacity 1, so a run may burst up to what the
-- window has left; and a daily count per portal.
--
-- `slots`: the epoch seconds (the database's clock, the one every worker shares) of the last
-- `limit` requests granted in the bucket, ascending, including reservations a little in the
-- future. A new request's slot is the later of now and (the oldest of the last `limit` slots
-- + the window), so no `window` seconds ever hold more than `limit` slots. `held_until`: a 429
-- holds every caller of the portal back until then. The row of bucket 'daily' counts the
-- requests of the UTC day `day`.
ALTER TABLE ledger.hubspot_rate_buckets
    ADD COLUMN slots      double precision[] NOT NULL DEFAULT '{}',
    ADD COLUMN held_until numeric,  -- epoch seconds; numeric like every column (no float)
    ADD COLUMN day        date,
    ADD COLUMN day_count  bigint NOT NULL DEFAULT 0,
    DROP CONSTRAINT hubspot_rate_buckets_bucket_check,
    ADD CONSTRAINT hubspot_rate_buckets_bucket_check
        CHECK (bucket IN ('general', 'search', 'daily'));

-- One request's slot, taken atomically (the bucket's row is locked for the few microseconds
-- this takes): the seconds the caller waits before sending, or NULL when the portal's daily
-- budget is spent (the caller stops; the next run resumes). `p_max_hold` bounds what a 429 or
-- a poisoned row can make anyone wait.
CREATE FUNCTION ledger.hubspot_take_slot(p_portal text, p_bucket text, p_limit integer,
                                         p_window double precision,
                                         p_max_hold double precision, p_daily bigint)
RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    now_s  double precision := extract(epoch FROM clock_timestamp());
    today  date := (clock_timestamp() AT TIME ZONE 'UTC')::date;
    ring   double precision[];
    held   double precision;
    slot   double precision;
    n      integer;
BEGIN
    IF p_daily IS NOT NULL THEN
        INSERT INTO ledger.hubspot_rate_buckets AS b
               (portal_id, bucket, tokens, updated_at, day, day_count)
        VALUES (p_portal, 'daily', 0, clock_timestamp(), today, 1)
        ON CONFLICT (portal_id, bucket) DO UPDATE SET
            day_count = CASE WHEN b.day = today THEN b.day_count + 1 ELSE 1 END,
            day = today, updated_at = clock_timestamp()
        RETURNING day_count INTO n;
        IF n > p_daily THEN
            UPDATE ledger.hubspot_rate_buckets SET day_count = day_count - 1
             WHERE portal_id = p_portal AND bucket = 'daily';
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO ledger.hubspot_rate_buckets (portal_id, bucket, tokens, updated_at)
    VALUES (p_portal, p_bucket, 0, clock_timestamp())
    ON CONFLICT (portal_id, bucket) DO NOTHING;
    SELECT slots, held_until INTO ring, held FROM ledger.hubspot_rate_buckets
     WHERE portal_id = p_portal AND bucket = p_bucket FOR UPDATE;
    -- Slots older than the window no longer count; a hold is never longer than p_max_hold.
    ring := ARRAY(SELECT s FROM unnest(ring) AS s WHERE s > now_s - p_window ORDER BY s);
    slot := greatest(now_s, least(coalesce(held, 0), now_s + p_max_hold));
    n := cardinality(ring);
    IF n >= p_limit THEN
        slot := greatest(slot, ring[n - p_limit + 1] + p_window);
    END IF;
    ring := ring || slot;
    n := cardinality(ring);
    IF n > p_limit THEN
        ring := ring[n - p_limit + 1:n];
    END IF;
    UPDATE ledger.hubspot_rate_buckets
       SET slots = ring, updated_at = clock_timestamp(),
           held_until = CASE WHEN held > now_s + p_max_hold THEN now_s + p_max_hold
                             ELSE held END
     WHERE portal_id = p_portal AND bucket = p_bucket;
    RETURN slot - now_s;
END
$$;
