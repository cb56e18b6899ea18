-- A replica killed with kill -9 kept its row counted as live for 30 s (three missed beats): its
-- settings were still compared, and a replica started in its place warned that it differed from a
-- process that no longer existed. Each process now also writes the server pid of its LISTEN session
-- (a connection of its own for as long as the process lives, which PostgreSQL ends as soon as the
-- killed process's socket closes); a row whose session is gone is not compared, whatever its
-- seen_at. Null: not known (its LISTEN connection was down at the beat, or a release before this one).
alter table replica_heartbeats add column listen_pid integer;
