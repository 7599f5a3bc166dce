-- sync_page_advance in PL/pgSQL: same signature, same statement, same result (grants kept by CREATE OR REPLACE).
--
-- 20261205060003 wrote it in SQL with `set search_path = ''`. PostgreSQL 15 plans the query of a SQL-language
-- function that is not inlined again on every call, and a SET clause means it is never inlined: the UPDATE was
-- planned once per sync page. PL/pgSQL keeps the plan for the session. Measured with track_functions on a first
-- poll of ~15k mailboxes on the devstack: 0.22 -> 0.06 ms a call.
--
-- (mailbox_price() and mailbox_daily_volume(), which finish_workspace_sync calls per live mailbox, were measured the
-- same way and left as they are: their subquery rules out inlining, and in PL/pgSQL a call cost more, 12 us against
-- 10 us.)

create or replace function bisonsync_private.sync_page_advance(
  p_run_id uuid,
  p_workspace_id uuid,
  p_page integer,
  p_next_page_url text,
  p_listing_total integer,
  p_unverified text,
  p_at timestamptz,
  p_rows integer,
  p_inserted integer,
  p_updated integer,
  p_status_changes integer,
  p_undeleted integer
)
returns public.sync_run_workspaces
language plpgsql
set search_path = ''
as $$
declare
  v_prog public.sync_run_workspaces;
begin
  update public.sync_run_workspaces p set
    status = 'running',
    pages_done = p_page,
    next_page_url = nullif(btrim(p_next_page_url), ''),
    mailboxes_seen = p.mailboxes_seen + p_rows,
    listing_changed = p.listing_changed
                      or (p_listing_total is not null and p.listing_total is not null
                          and p_listing_total <> p.listing_total),
    listing_total = coalesce(p_listing_total, p.listing_total),
    listing_started_at = coalesce(p.listing_started_at, p_at),
    listing_unverified = coalesce(p.listing_unverified,
                                  left('page ' || p_page || ': ' || nullif(btrim(p_unverified), ''), 500)),
    started_at = coalesce(p.started_at, now()),
    inserted = p.inserted + p_inserted,
    updated = p.updated + p_updated,
    status_changes = p.status_changes + p_status_changes,
    undeleted = p.undeleted + p_undeleted,
    updated_at = now()
  where p.run_id = p_run_id and p.workspace_id = p_workspace_id
  returning * into v_prog;
  return v_prog;
end
$$;

revoke all on function bisonsync_private.sync_page_advance(uuid, uuid, integer, text, integer, text, timestamptz,
                                                           integer, integer, integer, integer, integer)
  from public, anon, authenticated, service_role;
