-- In a DuckLake warehouse: the lake snapshot a model build read. Loads still pending for the next
-- build are then the load runs committed after it (by snapshot, not by clock: with several
-- writers, a load that began before a build can commit after it).
alter table model_builds add column lake_snapshot bigint;
