-- An event whose basis later proves wrong (the move was corrected or held, the universe it was
-- ranked in grew) is withdrawn, never deleted; a channel that was told about it gets a correction.
alter table alert_events add column withdrawn_at timestamptz;
alter table alert_events add column withdrawn_reason varchar;
-- What a delivery attempt carried: the notice of events, or the correction of a withdrawn one.
alter table alert_deliveries add column kind varchar default 'notice';
