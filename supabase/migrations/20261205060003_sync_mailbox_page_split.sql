-- sync_mailbox_page, split: the public function (same signature, same result, same errors) now reads as its
-- four steps, each a focused helper in bisonsync_private:
--   sync_page_check     the arguments (a JSON array of mailboxes with id and email; page numbers from 1)
--   sync_page_progress  the run (running, held by p_holder) and the workspace's progress row, locked; pages in order
--   sync_page_upsert    the page's mailboxes: changed rows upserted, poll statuses by mailbox_status_wins, history,
--                       the run's mark set; returns the counts
--   sync_page_advance   the workspace's cursor and counters (not for a replayed page)
-- Only sync_mailbox_page (SECURITY DEFINER, service_role) calls them: nobody else may execute them.

create or replace function bisonsync_private.sync_page_check(p_page integer, p_rows jsonb)
returns void
language plpgsql
immutable
set search_path = ''
as $$
begin
  if jsonb_typeof(p_rows) is distinct from 'array' then
    raise exception 'p_rows must be a JSON array of mailboxes' using errcode = '22023';
  end if;
  if p_page is null or p_page < 1 then
    raise exception 'page numbers start at 1, got %', p_page using errcode = '22023';
  end if;
  if exists (select 1 from jsonb_array_elements(p_rows) e
             where jsonb_typeof(e) <> 'object' or e ->> 'id' is null or btrim(e ->> 'email') = ''
                or e ->> 'email' is null) then
    raise exception 'every mailbox needs an id and an email' using errcode = '22023';
  end if;
end
$$;

-- The workspace's progress row of a running run, locked FOR UPDATE (one page of a workspace at a time). Raises
-- 55000/55006 (run not running / lease lost: see _sync_run_for_write), P0002 (workspace not in the run), 55000
-- (workspace already done or failed), 22023 (a page beyond the next one).
create or replace function bisonsync_private.sync_page_progress(
  p_run_id uuid,
  p_workspace_id uuid,
  p_page integer,
  p_holder text
)
returns public.sync_run_workspaces
language plpgsql
set search_path = ''
as $$
declare
  v_prog public.sync_run_workspaces;
begin
  perform bisonsync_private._sync_run_for_write(p_run_id, p_holder);
  select * into v_prog from public.sync_run_workspaces p
  where p.run_id = p_run_id and p.workspace_id = p_workspace_id
  for update;
  if not found then
    raise exception 'workspace % is not part of sync run %', p_workspace_id, p_run_id using errcode = 'P0002';
  end if;
  if v_prog.status in ('done', 'failed') then
    raise exception 'workspace % of sync run % is already %', p_workspace_id, p_run_id, v_prog.status
      using errcode = '55000';
  end if;
  if p_page > v_prog.pages_done + 1 then
    raise exception 'page % after % committed pages: pages are committed in order', p_page, v_prog.pages_done
      using errcode = '22023';
  end if;
  return v_prog;
end
$$;

-- Upsert one page of mailboxes (p_at: when the page was fetched, never later than now). Rows that change only;
-- a poll status applies when mailbox_status_wins says so; every status change (and undeletion) gets a history
-- row; every listed mailbox is marked seen by the run. Counts: mailboxes on the page, inserted, updated,
-- status changes, undeleted.
create or replace function bisonsync_private.sync_page_upsert(
  p_run_id uuid,
  p_workspace_id uuid,
  p_rows jsonb,
  p_at timestamptz,
  out o_rows integer,
  out o_inserted integer,
  out o_updated integer,
  out o_status_changes integer,
  out o_undeleted integer
)
language plpgsql
set search_path = ''
as $$
begin
  -- Lock the rows this page touches in a fixed order (webhooks lock one row at a time: no deadlock), so the
  -- old values read below stay true until we commit.
  -- `= any(array(...))`, not `in (select ...)` / a join: the planner then always does 15 index lookups on
  -- (workspace_id, bison_sender_id) instead of, at times, a hash join over the whole workspace (bench/sync.py).
  perform 1 from public.sender_emails_cache s
  where s.workspace_id = p_workspace_id
    and s.bison_sender_id = any(array(select (e ->> 'id')::bigint from jsonb_array_elements(p_rows) e))
  order by s.bison_sender_id
  for no key update;

  with src as (
    select distinct on (r.id) r.id, r.email, r.name, public.mailbox_status_canonical(r.status) as status, r.type,
      r.daily_limit, r.emails_sent_count, r.total_replied_count, r.unique_replied_count, r.bounced_count,
      r.unsubscribed_count, r.interested_leads_count, r.total_opened_count, r.unique_opened_count,
      r.total_leads_contacted_count, r.warmup_enabled, r.tags, r.email_provider, r.provider_tag, r.reseller,
      r.reseller_tag, r.domain
    from jsonb_to_recordset(p_rows) as r(
      id bigint, email text, name text, status text, type text, daily_limit integer, emails_sent_count integer,
      total_replied_count integer, unique_replied_count integer, bounced_count integer, unsubscribed_count integer,
      interested_leads_count integer, total_opened_count integer, unique_opened_count integer,
      total_leads_contacted_count integer, warmup_enabled boolean, tags jsonb, email_provider text,
      provider_tag text, reseller text, reseller_tag text, domain text)
    order by r.id
  ),
  old as (
    select s.bison_sender_id, s.status, s.deleted_at
    from public.sender_emails_cache s
    where s.workspace_id = p_workspace_id
      and s.bison_sender_id = any(array(select (e ->> 'id')::bigint from jsonb_array_elements(p_rows) e))
  ),
  up as (
    insert into public.sender_emails_cache as s (
      workspace_id, bison_sender_id, email_address, account_name, status, status_changed_at, status_observed_at,
      status_source, account_type, daily_limit, emails_sent_count, total_replied_count, unique_replied_count,
      bounced_count, unsubscribed_count, interested_leads_count, total_opened_count, unique_opened_count,
      total_leads_contacted_count, email_provider, provider_tag, reseller, reseller_tag, domain, tags,
      warmup_enabled, last_seen_run, last_synced_at)
    select
      p_workspace_id, src.id, src.email, public.clean_label(src.name), coalesce(src.status, 'Connected'),
      case when src.status is not null then p_at end, case when src.status is not null then p_at end,
      case when src.status is not null then 'poll' end, src.type, coalesce(src.daily_limit, 0),
      coalesce(src.emails_sent_count, 0), coalesce(src.total_replied_count, 0),
      coalesce(src.unique_replied_count, 0), coalesce(src.bounced_count, 0), coalesce(src.unsubscribed_count, 0),
      coalesce(src.interested_leads_count, 0), coalesce(src.total_opened_count, 0),
      coalesce(src.unique_opened_count, 0), coalesce(src.total_leads_contacted_count, 0), src.email_provider,
      src.provider_tag, src.reseller, src.reseller_tag, src.domain,
      case when jsonb_typeof(src.tags) = 'array' then src.tags else '[]'::jsonb end, src.warmup_enabled,
      p_run_id, now()
    from src
    on conflict (workspace_id, bison_sender_id) do update set
      email_address = excluded.email_address,
      account_name = excluded.account_name,
      account_type = excluded.account_type,
      daily_limit = excluded.daily_limit,
      emails_sent_count = excluded.emails_sent_count,
      total_replied_count = excluded.total_replied_count,
      unique_replied_count = excluded.unique_replied_count,
      bounced_count = excluded.bounced_count,
      unsubscribed_count = excluded.unsubscribed_count,
      interested_leads_count = excluded.interested_leads_count,
      total_opened_count = excluded.total_opened_count,
      unique_opened_count = excluded.unique_opened_count,
      total_leads_contacted_count = excluded.total_leads_contacted_count,
      email_provider = excluded.email_provider,
      provider_tag = excluded.provider_tag,
      reseller = excluded.reseller,
      reseller_tag = excluded.reseller_tag,
      domain = excluded.domain,
      tags = excluded.tags,
      warmup_enabled = excluded.warmup_enabled,
      -- the ordering rule of 20261129000300 (a newer webhook observation is never overwritten by an older
      -- poll); a poll confirming a poll observation of the same status rewrites nothing
      status = case when excluded.status_source = 'poll'
                         and public.mailbox_status_wins(s.status_observed_at, s.status_source, s.status,
                                                        excluded.status_observed_at, 'poll', excluded.status)
                    then excluded.status else s.status end,
      status_changed_at = case when excluded.status_source = 'poll'
                                    and s.status is distinct from excluded.status
                                    and public.mailbox_status_wins(s.status_observed_at, s.status_source, s.status,
                                                                   excluded.status_observed_at, 'poll',
                                                                   excluded.status)
                               then excluded.status_observed_at else s.status_changed_at end,
      status_observed_at = case when excluded.status_source = 'poll'
                                     and public.mailbox_status_wins(s.status_observed_at, s.status_source,
                                                                    s.status, excluded.status_observed_at, 'poll',
                                                                    excluded.status)
                                then excluded.status_observed_at else s.status_observed_at end,
      status_source = case when excluded.status_source = 'poll'
                                and public.mailbox_status_wins(s.status_observed_at, s.status_source, s.status,
                                                               excluded.status_observed_at, 'poll', excluded.status)
                           then 'poll' else s.status_source end,
      -- a mailbox that comes back is undeleted, unless it was removed after this page was fetched
      deleted_at = case when s.deleted_at < p_at then null else s.deleted_at end,
      last_seen_run = excluded.last_seen_run,
      last_synced_at = excluded.last_synced_at
    where (s.email_address, s.account_name, s.account_type, s.daily_limit, s.emails_sent_count,
           s.total_replied_count, s.unique_replied_count, s.bounced_count, s.unsubscribed_count,
           s.interested_leads_count, s.total_opened_count, s.unique_opened_count, s.total_leads_contacted_count,
           s.email_provider, s.provider_tag, s.reseller, s.reseller_tag, s.domain, s.tags, s.warmup_enabled)
          is distinct from
          (excluded.email_address, excluded.account_name, excluded.account_type, excluded.daily_limit,
           excluded.emails_sent_count, excluded.total_replied_count, excluded.unique_replied_count,
           excluded.bounced_count, excluded.unsubscribed_count, excluded.interested_leads_count,
           excluded.total_opened_count, excluded.unique_opened_count, excluded.total_leads_contacted_count,
           excluded.email_provider, excluded.provider_tag, excluded.reseller, excluded.reseller_tag,
           excluded.domain, excluded.tags, excluded.warmup_enabled)
       or (excluded.status_source = 'poll'
           and (s.status is distinct from excluded.status or s.status_source is distinct from 'poll')
           and public.mailbox_status_wins(s.status_observed_at, s.status_source, s.status,
                                          excluded.status_observed_at, 'poll', excluded.status))
       or s.deleted_at < p_at
    returning s.bison_sender_id, s.email_address, s.status, s.status_source, s.deleted_at
  ),
  hist as (
    insert into public.mailbox_status_history
      (workspace_id, bison_sender_id, email_address, old_status, new_status, source, event_at)
    select p_workspace_id, u.bison_sender_id, u.email_address,
           case when o.deleted_at is not null and u.deleted_at is null then 'Deleted' else o.status end,
           u.status, 'poll', p_at
    from up u
    left join old o on o.bison_sender_id = u.bison_sender_id
    where (o.bison_sender_id is null and u.status_source = 'poll')
       or (o.bison_sender_id is not null and o.status is distinct from u.status)
       or (o.deleted_at is not null and u.deleted_at is null)
    returning 1
  ),
  seen as (
    insert into public.sync_run_mailboxes (run_id, workspace_id, bison_sender_id)
    select p_run_id, p_workspace_id, src.id from src
    on conflict do nothing
    returning 1
  )
  select
    (select count(*) from src),
    (select count(*) from up u where not exists (select 1 from old o where o.bison_sender_id = u.bison_sender_id)),
    (select count(*) from up u where exists (select 1 from old o where o.bison_sender_id = u.bison_sender_id)),
    (select count(*) from up u join old o on o.bison_sender_id = u.bison_sender_id
      where o.status is distinct from u.status),
    (select count(*) from up u join old o on o.bison_sender_id = u.bison_sender_id
      where o.deleted_at is not null and u.deleted_at is null)
  into o_rows, o_inserted, o_updated, o_status_changes, o_undeleted;
end
$$;

-- Advance the workspace's cursor and counters after a (first-time) page; returns the updated progress row.
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
language sql
set search_path = ''
as $$
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
  returning *
$$;

create or replace function public.sync_mailbox_page(
  p_run_id uuid,
  p_workspace_id uuid,
  p_page integer,
  p_next_page_url text,
  p_rows jsonb,
  p_observed_at timestamptz default null,
  p_listing_total integer default null,
  p_holder text default null,
  p_unverified text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- never later than the database's clock (a client clock running ahead must not win every tie)
  v_at timestamptz := least(coalesce(p_observed_at, now()), now());
  v_prog public.sync_run_workspaces;
  v_replay boolean;
  c record;
begin
  perform bisonsync_private.sync_page_check(p_page, p_rows);
  v_prog := bisonsync_private.sync_page_progress(p_run_id, p_workspace_id, p_page, p_holder);
  v_replay := p_page <= v_prog.pages_done;
  c := bisonsync_private.sync_page_upsert(p_run_id, p_workspace_id, p_rows, v_at);
  if not v_replay then
    v_prog := bisonsync_private.sync_page_advance(p_run_id, p_workspace_id, p_page, p_next_page_url,
                                                  p_listing_total, p_unverified, v_at, c.o_rows, c.o_inserted,
                                                  c.o_updated, c.o_status_changes, c.o_undeleted);
  end if;
  return jsonb_build_object(
    'page', p_page, 'replayed', v_replay, 'rows', c.o_rows, 'inserted', c.o_inserted, 'updated', c.o_updated,
    'unchanged', c.o_rows - c.o_inserted - c.o_updated, 'status_changes', c.o_status_changes,
    'undeleted', c.o_undeleted, 'pages_done', v_prog.pages_done, 'next_page_url', v_prog.next_page_url,
    'mailboxes_seen', v_prog.mailboxes_seen, 'listing_total', v_prog.listing_total);
end
$$;

revoke all on function bisonsync_private.sync_page_check(integer, jsonb),
  bisonsync_private.sync_page_progress(uuid, uuid, integer, text),
  bisonsync_private.sync_page_upsert(uuid, uuid, jsonb, timestamptz),
  bisonsync_private.sync_page_advance(uuid, uuid, integer, text, integer, text, timestamptz, integer, integer,
                                      integer, integer, integer)
  from public, anon, authenticated, service_role;
