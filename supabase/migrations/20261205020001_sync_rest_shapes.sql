-- bisonsync sync: what real Email Bison instances send over REST (mailbox statuses in any case, pending_move and
-- pending_deletion, statuses we do not know yet), and no deletion on a listing we cannot verify.
--
-- 1. Mailbox statuses. `mailbox_status_canonical()` spells the known statuses one way whatever the case, spaces
--    or underscores ('connected' -> 'Connected', 'Pending move' -> 'pending_move'); any other non-empty status is
--    kept as sent. The status check accepts them all, the normalising trigger and apply_mailbox_status canonicalise,
--    and the stats functions get pending_move / pending_deletion / other buckets.
-- 2. Verified listings. A page without meta (a bare {"data": [...]}), a listing that ended before meta.last_page, a
--    meta.total that moved while paging, or a count of listed mailboxes that differs from meta.total makes the
--    workspace's listing UNVERIFIED: what was seen is upserted, nothing is swept, the run records it
--    (sync_run_workspaces.verified / listing_unverified, sync_runs.unverified) and alert_sync_failures reports a
--    workspace whose listing stayed unverified for sync_unverified_alert_runs runs in a row (default 3).

-- ---------------------------------------------------------------------------------------------------------------
-- Mailbox statuses
-- ---------------------------------------------------------------------------------------------------------------

create or replace function public.mailbox_status_canonical(p_status text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case lower(btrim(regexp_replace(coalesce(p_status, ''), '[\s_-]+', ' ', 'g')))
    when '' then null
    when 'connected' then 'Connected'
    when 'disconnected' then 'Disconnected'
    when 'failed' then 'Failed'
    when 'not connected' then 'Not connected'
    when 'pending move' then 'pending_move'
    when 'pending deletion' then 'pending_deletion'
    else left(btrim(p_status), 64)
  end
$$;

comment on function public.mailbox_status_canonical(text) is
  'One spelling per known mailbox status (Connected, Disconnected, Failed, Not connected, pending_move, '
  'pending_deletion), whatever the case, spaces or underscores; any other status is kept as sent (trimmed, at most '
  '64 characters); null for null or blank.';

alter table public.sender_emails_cache drop constraint if exists sender_emails_cache_status_check;
alter table public.sender_emails_cache drop constraint if exists sender_emails_cache_status_known_check;
alter table public.sender_emails_cache add constraint sender_emails_cache_status_known_check
  check (status = public.mailbox_status_canonical(status)) not valid;
alter table public.sender_emails_cache validate constraint sender_emails_cache_status_known_check;

create or replace function public._sender_emails_cache_normalize()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.email_address := lower(public.clean_label(new.email_address));
  new.status := coalesce(public.mailbox_status_canonical(new.status), 'Connected');
  if tg_op = 'INSERT' or new.workspace_id is distinct from old.workspace_id then
    select w.instance into new.instance from public.workspaces w where w.id = new.workspace_id;
  end if;
  if new.domain is null and new.email_address like '%@%' then
    new.domain := split_part(new.email_address, '@', 2);
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := pg_catalog.now();
  end if;
  return new;
end
$$;

-- Same order as before for the four classic statuses; pending_deletion and pending_move rank between Failed and
-- Not connected, any other status lowest. The statuses compared are canonicalised first.
create or replace function public.mailbox_status_wins(
  p_old_at timestamptz,
  p_old_source text,
  p_old_status text,
  p_new_at timestamptz,
  p_new_source text,
  p_new_status text
)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select p_new_at is not null and (
    p_old_at is null
    or p_new_at > p_old_at
    or (p_new_at = p_old_at
        and (case p_new_source when 'poll' then 2 when 'webhook' then 1 else 0 end,
             case public.mailbox_status_canonical(p_new_status)
               when 'Disconnected' then 6 when 'Failed' then 5 when 'pending_deletion' then 4
               when 'pending_move' then 3 when 'Not connected' then 2 when 'Connected' then 1 else 0 end)
          > (case p_old_source when 'poll' then 2 when 'webhook' then 1 else 0 end,
             case public.mailbox_status_canonical(p_old_status)
               when 'Disconnected' then 6 when 'Failed' then 5 when 'pending_deletion' then 4
               when 'pending_move' then 3 when 'Not connected' then 2 when 'Connected' then 1 else 0 end))
  )
$$;

-- Apply one status observation (any spelling; see mailbox_status_canonical) to one cached mailbox.
create or replace function public.apply_mailbox_status(
  p_mailbox_id uuid,
  p_status text,
  p_source text,
  p_event_at timestamptz,
  p_delivery_id bigint default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  r public.sender_emails_cache;
  v_status text := public.mailbox_status_canonical(p_status);
begin
  if v_status is null then
    raise exception 'a mailbox status is required' using errcode = '22023',
      detail = 'e.g. Connected, Disconnected, Failed, Not connected, pending_move, pending_deletion';
  end if;
  if p_source not in ('webhook', 'poll') or p_source is null then
    raise exception 'unknown status source "%" (webhook or poll)', p_source using errcode = '22023';
  end if;
  if p_event_at is null then
    raise exception 'event time is required' using errcode = '22023';
  end if;

  select * into r from public.sender_emails_cache s where s.id = p_mailbox_id for no key update;
  if not found then
    raise exception 'unknown mailbox %', p_mailbox_id using errcode = 'P0002';
  end if;
  if not public.mailbox_status_wins(r.status_observed_at, r.status_source, r.status,
                                    p_event_at, p_source, v_status) then
    return jsonb_build_object('mailbox_id', r.id, 'action', 'stale', 'status', r.status,
                              'previous_status', r.status);
  end if;

  update public.sender_emails_cache s set
    status = v_status,
    status_observed_at = p_event_at,
    status_source = p_source,
    status_changed_at = case when r.status is distinct from v_status then p_event_at else r.status_changed_at end
  where s.id = r.id;

  if r.status is distinct from v_status then
    insert into public.mailbox_status_history
      (workspace_id, bison_sender_id, email_address, old_status, new_status, source, event_at, delivery_id)
    values (r.workspace_id, r.bison_sender_id, r.email_address, r.status, v_status, p_source, p_event_at,
            p_delivery_id);
    return jsonb_build_object('mailbox_id', r.id, 'action', 'changed', 'status', v_status,
                              'previous_status', r.status);
  end if;
  return jsonb_build_object('mailbox_id', r.id, 'action', 'confirmed', 'status', v_status,
                            'previous_status', r.status);
end
$$;

-- Status buckets: the classic four, pending_move, pending_deletion, and `other` (any status not known yet).
-- Every live mailbox counts in total; disconnect_rate stays (Disconnected + Failed) / total * 100.
drop function if exists public.account_status_by_workspace();
drop function if exists public.get_account_status_stats(uuid);

create function public.get_account_status_stats(p_workspace_id uuid default null)
returns table (
  total bigint,
  connected bigint,
  disconnected bigint,
  failed bigint,
  not_connected bigint,
  disconnect_rate numeric,
  pending_move bigint,
  pending_deletion bigint,
  other bigint
)
language sql
stable
set search_path = ''
as $$
  select
    count(*),
    count(*) filter (where m.status = 'Connected'),
    count(*) filter (where m.status = 'Disconnected'),
    count(*) filter (where m.status = 'Failed'),
    count(*) filter (where m.status = 'Not connected'),
    case when count(*) > 0
         then round((count(*) filter (where m.status in ('Disconnected', 'Failed')))::numeric / count(*) * 100, 2)
         else 0 end,
    count(*) filter (where m.status = 'pending_move'),
    count(*) filter (where m.status = 'pending_deletion'),
    count(*) filter (where m.status not in ('Connected', 'Disconnected', 'Failed', 'Not connected', 'pending_move',
                                            'pending_deletion'))
  from public.live_mailboxes(p_workspace_id) m
$$;

comment on function public.get_account_status_stats(uuid) is
  'Mailbox status buckets over live mailboxes: connected, disconnected, failed, not_connected, pending_move, '
  'pending_deletion, other (statuses not known yet); every live mailbox counts in total; disconnect_rate = '
  '(Disconnected + Failed) / total * 100, 0 when there are none. Respects RLS of the caller.';

create function public.account_status_by_workspace()
returns table (
  workspace_id uuid,
  workspace_name text,
  instance text,
  active boolean,
  total bigint,
  connected bigint,
  disconnected bigint,
  failed bigint,
  not_connected bigint,
  disconnect_rate numeric,
  pending_move bigint,
  pending_deletion bigint,
  other bigint
)
language sql
stable
set search_path = ''
as $$
  select w.id, w.name, w.instance, w.active,
         st.total, st.connected, st.disconnected, st.failed, st.not_connected, st.disconnect_rate,
         st.pending_move, st.pending_deletion, st.other
  from public.workspaces w
  cross join lateral public.get_account_status_stats(w.id) st
$$;

comment on function public.account_status_by_workspace() is
  'get_account_status_stats(workspace) for every workspace in one query (live mailboxes; a mailbox shared by '
  'two workspaces counts in each). Respects RLS of the caller.';

revoke all on function public.mailbox_status_canonical(text), public.get_account_status_stats(uuid),
  public.account_status_by_workspace() from public, anon;
grant execute on function public.mailbox_status_canonical(text), public.get_account_status_stats(uuid),
  public.account_status_by_workspace() to authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Verified listings
-- ---------------------------------------------------------------------------------------------------------------

alter table public.sync_run_workspaces add column if not exists listing_unverified text;
alter table public.sync_run_workspaces add column if not exists verified boolean;
comment on column public.sync_run_workspaces.listing_unverified is
  'Why the listing cannot be proven complete (first reason a page gave, e.g. a bare {"data"} answer); null: '
  'every page so far carried meta.';
comment on column public.sync_run_workspaces.verified is
  'For a finished (done) workspace: true when its listing was proven complete (and swept), false when it was '
  'unverified (upserted, nothing swept); null while running, when failed, or before this column existed.';

alter table public.sync_runs add column if not exists unverified integer
  generated always as (coalesce((totals ->> 'unverified')::integer, 0)) stored;
comment on column public.sync_runs.unverified is
  'Workspaces of the run whose listing could not be verified (nothing swept for them); 0 for a clean run.';

insert into public.bisonsync_settings (key, value) values ('sync_unverified_alert_runs', '3')
on conflict (key) do nothing;

create or replace function public._sync_workspace_json(p public.sync_run_workspaces)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'run_id', p.run_id, 'workspace_id', p.workspace_id, 'bison_workspace_id', w.bison_workspace_id,
    'name', w.name, 'status', p.status, 'pages_done', p.pages_done, 'next_page_url', p.next_page_url,
    'mailboxes_seen', p.mailboxes_seen, 'listing_total', p.listing_total, 'listing_changed', p.listing_changed,
    'inserted', p.inserted, 'updated', p.updated, 'status_changes', p.status_changes, 'undeleted', p.undeleted,
    'deleted', p.deleted, 'priced', p.priced, 'sweep', p.sweep, 'error', p.error,
    'verified', p.verified, 'listing_unverified', p.listing_unverified,
    'started_at', p.started_at, 'finished_at', p.finished_at)
  from public.workspaces w
  where w.id = p.workspace_id
$$;

create or replace function public._sync_run_totals(p_run_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'workspaces', count(*),
    'pending', count(*) filter (where p.status = 'pending'),
    'running', count(*) filter (where p.status = 'running'),
    'done', count(*) filter (where p.status = 'done'),
    'failed', count(*) filter (where p.status = 'failed'),
    'pages', coalesce(sum(p.pages_done), 0),
    'mailboxes_seen', coalesce(sum(p.mailboxes_seen), 0),
    'mailboxes_listed', coalesce(sum(p.listing_total), 0),
    'inserted', coalesce(sum(p.inserted), 0),
    'updated', coalesce(sum(p.updated), 0),
    'status_changes', coalesce(sum(p.status_changes), 0),
    'undeleted', coalesce(sum(p.undeleted), 0),
    'deleted', coalesce(sum(p.deleted), 0),
    'priced', coalesce(sum(p.priced), 0),
    'sweeps_skipped', count(*) filter (where p.status = 'done' and p.sweep is distinct from 'swept'),
    'unverified', count(*) filter (where p.status = 'done' and p.verified is false))
  from public.sync_run_workspaces p
  where p.run_id = p_run_id
$$;

-- p_unverified joins the page call (a new argument: the old signature is replaced, not overloaded).
drop function if exists public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, timestamptz, integer, text);

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
  v_rows integer;
  v_inserted integer;
  v_updated integer;
  v_changes integer;
  v_undeleted integer;
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

  perform public._sync_run_for_write(p_run_id, p_holder);
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
  v_replay := p_page <= v_prog.pages_done;

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
      case when src.status is not null then v_at end, case when src.status is not null then v_at end,
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
      deleted_at = case when s.deleted_at < v_at then null else s.deleted_at end,
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
       or s.deleted_at < v_at
    returning s.bison_sender_id, s.email_address, s.status, s.status_source, s.deleted_at
  ),
  hist as (
    insert into public.mailbox_status_history
      (workspace_id, bison_sender_id, email_address, old_status, new_status, source, event_at)
    select p_workspace_id, u.bison_sender_id, u.email_address,
           case when o.deleted_at is not null and u.deleted_at is null then 'Deleted' else o.status end,
           u.status, 'poll', v_at
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
  into v_rows, v_inserted, v_updated, v_changes, v_undeleted;

  if not v_replay then
    update public.sync_run_workspaces p set
      status = 'running',
      pages_done = p_page,
      next_page_url = nullif(btrim(p_next_page_url), ''),
      mailboxes_seen = p.mailboxes_seen + v_rows,
      listing_changed = p.listing_changed
                        or (p_listing_total is not null and p.listing_total is not null
                            and p_listing_total <> p.listing_total),
      listing_total = coalesce(p_listing_total, p.listing_total),
      listing_started_at = coalesce(p.listing_started_at, v_at),
      listing_unverified = coalesce(p.listing_unverified,
                                    left('page ' || p_page || ': ' || nullif(btrim(p_unverified), ''), 500)),
      started_at = coalesce(p.started_at, now()),
      inserted = p.inserted + v_inserted,
      updated = p.updated + v_updated,
      status_changes = p.status_changes + v_changes,
      undeleted = p.undeleted + v_undeleted,
      updated_at = now()
    where p.run_id = p_run_id and p.workspace_id = p_workspace_id
    returning * into v_prog;
  end if;

  return jsonb_build_object(
    'page', p_page, 'replayed', v_replay, 'rows', v_rows, 'inserted', v_inserted, 'updated', v_updated,
    'unchanged', v_rows - v_inserted - v_updated, 'status_changes', v_changes, 'undeleted', v_undeleted,
    'pages_done', v_prog.pages_done, 'next_page_url', v_prog.next_page_url,
    'mailboxes_seen', v_prog.mailboxes_seen, 'listing_total', v_prog.listing_total);
end
$$;

comment on function public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, timestamptz, integer, text, text) is
  'One page of GET /api/sender-emails for one workspace of a running sync, in one transaction: upsert (rows that '
  'change only), statuses (canonicalised) by mailbox_status_wins with p_observed_at (fetch time) as event time, '
  'history, mark set, cursor. p_unverified: why this page cannot prove the listing complete (e.g. no meta); the '
  'first reason is kept and the workspace is then never swept by this run. Idempotent for a re-sent page. '
  'service_role only.';

create or replace function public.finish_workspace_sync(
  p_run_id uuid,
  p_workspace_id uuid,
  p_ok boolean,
  p_error text default null,
  p_holder text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_prog public.sync_run_workspaces;
  v_seen integer;
  v_deleted integer := 0;
  v_priced integer := 0;
  v_sweep text;
  v_reason text;
begin
  perform public._sync_run_for_write(p_run_id, p_holder);
  select * into v_prog from public.sync_run_workspaces p
  where p.run_id = p_run_id and p.workspace_id = p_workspace_id
  for update;
  if not found then
    raise exception 'workspace % is not part of sync run %', p_workspace_id, p_run_id using errcode = 'P0002';
  end if;
  if v_prog.status = 'done' then
    return public._sync_workspace_json(v_prog) || jsonb_build_object('already_finished', true);
  end if;

  if not coalesce(p_ok, false) then
    update public.sync_run_workspaces p set
      status = 'failed', error = left(coalesce(nullif(btrim(p_error), ''), 'failed'), 1000), sweep = null,
      finished_at = now(), updated_at = now()
    where p.run_id = p_run_id and p.workspace_id = p_workspace_id
    returning * into v_prog;
    return public._sync_workspace_json(v_prog) || jsonb_build_object('already_finished', false);
  end if;

  if v_prog.pages_done = 0 or v_prog.next_page_url is not null then
    raise exception 'the listing of workspace % is not complete (% pages committed, next %)', p_workspace_id,
      v_prog.pages_done, coalesce(v_prog.next_page_url, 'page 1') using errcode = '22023',
      hint = 'call with p_ok => false when paging failed';
  end if;

  select count(*) into v_seen from public.sync_run_mailboxes m
  where m.run_id = p_run_id and m.workspace_id = p_workspace_id;

  -- Only a listing proven complete may delete anything: every page carried meta and the listing was followed to
  -- meta.last_page (the client says so through p_unverified), meta.total did not move, and as many distinct
  -- mailboxes were listed as meta.total says.
  v_reason := coalesce(
    v_prog.listing_unverified,
    case when v_prog.listing_changed
           then 'meta.total changed while the listing was paged (now ' || v_prog.listing_total || ')'
         when v_prog.listing_total is not null and v_seen <> v_prog.listing_total
           then v_seen || ' mailboxes listed, meta.total says ' || v_prog.listing_total
    end);

  if v_reason is not null then
    v_sweep := left('unverified: ' || v_reason || '; nothing swept', 1000);
  else
    with gone as (
      update public.sender_emails_cache s set deleted_at = now()
      where s.workspace_id = p_workspace_id
        and s.deleted_at is null
        -- created or observed (e.g. by a webhook) after the listing began: it may sit behind our cursor
        and s.created_at < v_prog.listing_started_at
        and (s.status_observed_at is null or s.status_observed_at < v_prog.listing_started_at)
        and not exists (
          select 1 from public.sync_run_mailboxes m
          where m.run_id = p_run_id and m.workspace_id = p_workspace_id and m.bison_sender_id = s.bison_sender_id)
      returning s.bison_sender_id, s.email_address, s.status
    ),
    hist as (
      insert into public.mailbox_status_history
        (workspace_id, bison_sender_id, email_address, old_status, new_status, source, event_at)
      select p_workspace_id, g.bison_sender_id, g.email_address, g.status, 'Deleted', 'poll', now() from gone g
      returning 1
    )
    select count(*) into v_deleted from gone;
    v_sweep := 'swept';
  end if;

  -- n = live mailboxes on the same domain in the whole workspace (one pass: a window, not a join)
  with live as (
    select s.id, s.email_provider, s.reseller, s.price as old_price, s.volume_per_account as old_volume,
           count(*) over (partition by s.domain)::integer as n
    from public.sender_emails_cache s
    where s.workspace_id = p_workspace_id and s.deleted_at is null
  ),
  calc as (
    select l.id, l.old_price, l.old_volume,
           public.mailbox_price(l.email_provider, l.reseller, l.n)::numeric(10, 2) as price,
           public.mailbox_daily_volume(l.email_provider, l.reseller, l.n) as volume
    from live l
  )
  update public.sender_emails_cache s set price = c.price, volume_per_account = c.volume
  from calc c
  where s.id = c.id and (c.old_price, c.old_volume) is distinct from (c.price, c.volume);
  get diagnostics v_priced = row_count;

  delete from public.sync_run_mailboxes m where m.run_id = p_run_id and m.workspace_id = p_workspace_id;

  update public.sync_run_workspaces p set
    status = 'done', mailboxes_seen = v_seen, deleted = v_deleted, priced = v_priced, sweep = v_sweep,
    verified = v_reason is null,
    error = null, finished_at = now(), updated_at = now()
  where p.run_id = p_run_id and p.workspace_id = p_workspace_id
  returning * into v_prog;
  return public._sync_workspace_json(v_prog) || jsonb_build_object('already_finished', false);
end
$$;

comment on function public.finish_workspace_sync(uuid, uuid, boolean, text, text) is
  'End one workspace of a running sync: p_ok sweeps mailboxes not listed in this run only when the listing is '
  'verified complete (else verified = false, sweep = ''unverified: ...'', nothing deleted) and reprices the '
  'workspace (whole-workspace per-domain n); not p_ok: failed, nothing swept. service_role only.';

revoke all on function
  public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, timestamptz, integer, text, text),
  public.finish_workspace_sync(uuid, uuid, boolean, text, text)
  from public, anon, authenticated;
grant execute on function
  public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, timestamptz, integer, text, text),
  public.finish_workspace_sync(uuid, uuid, boolean, text, text)
  to service_role;

-- How many of a workspace's latest finished listings (up to p_as_of) in a row were unverified (0 once one is
-- verified again; a listing finished before `verified` existed counts as verified).
create or replace function public.sync_unverified_streak(p_workspace_id uuid, p_as_of timestamptz default 'infinity')
returns integer
language sql
stable
set search_path = ''
as $$
  select count(*)::integer
  from public.sync_run_workspaces p
  where p.workspace_id = p_workspace_id and p.status = 'done' and p.verified is false
    and p.finished_at <= p_as_of
    and p.finished_at > coalesce((select max(q.finished_at) from public.sync_run_workspaces q
                                  where q.workspace_id = p_workspace_id and q.status = 'done'
                                    and q.verified is not false and q.finished_at <= p_as_of),
                                 '-infinity'::timestamptz)
$$;

revoke all on function public.sync_unverified_streak(uuid, timestamptz) from public, anon;
grant execute on function public.sync_unverified_streak(uuid, timestamptz) to authenticated, service_role;

-- Freshness per workspace, plus whether its latest listing was verified and for how many runs it has not been.
create or replace view public.workspace_mailbox_sync
with (security_invoker = true)
as
select
  w.id as workspace_id,
  w.instance,
  w.bison_workspace_id,
  w.name,
  ok.finished_at as last_synced_at,
  ok.run_id as last_synced_run,
  ok.mailboxes_seen as last_mailboxes_seen,
  latest.status as last_status,
  latest.error as last_error,
  coalesce(latest.finished_at, latest.updated_at) as last_attempt_at,
  ok.verified as last_verified,
  ok.sweep as last_sweep,
  public.sync_unverified_streak(w.id) as unverified_runs
from public.workspaces w
left join lateral (
  select p.finished_at, p.run_id, p.mailboxes_seen, p.verified, p.sweep
  from public.sync_run_workspaces p
  where p.workspace_id = w.id and p.status = 'done'
  order by p.finished_at desc
  limit 1
) ok on true
left join lateral (
  select p.status, p.error, p.finished_at, p.updated_at
  from public.sync_run_workspaces p
  where p.workspace_id = w.id
  order by p.updated_at desc
  limit 1
) latest on true;

comment on view public.workspace_mailbox_sync is
  'Per workspace: when its mailboxes were last synced (last_synced_at), how the latest attempt ended, whether the '
  'latest listing was verified complete (last_verified; false: nothing was swept) and for how many runs in a row '
  'it has not been (unverified_runs).';

-- The sync-failure scan also reports a workspace whose listing stayed unverified for sync_unverified_alert_runs
-- runs in a row (run_status 'unverified'), once per such run: the alert job turns these rows into alerts.
create or replace function public.alert_sync_failures(
  p_since timestamptz,
  p_until timestamptz,
  p_workspace_ids jsonb default null,
  p_limit integer default 1000
)
returns table (
  run_id uuid,
  job text,
  instance text,
  run_status text,
  workspace_id uuid,
  workspace_name text,
  error text,
  failed_at timestamptz
)
language plpgsql
stable
set search_path = ''
as $$
declare
  v_runs integer := coalesce((select (s.value #>> '{}')::integer from public.bisonsync_settings s
                              where s.key = 'sync_unverified_alert_runs'), 3);
begin
  return query
  select x.run_id, x.job, x.instance, x.run_status, x.workspace_id, x.workspace_name, x.error, x.failed_at
  from (
    select r.id as run_id, r.job, r.instance, r.status as run_status, f.workspace_id, f.name as workspace_name,
           coalesce(f.error, r.error) as error, r.finished_at as failed_at
    from public.sync_runs r
    left join lateral (
      select p.workspace_id, w.name, p.error
      from public.sync_run_workspaces p
      join public.workspaces w on w.id = p.workspace_id
      where p.run_id = r.id and p.status = 'failed' and w.active
    ) f on true
    where r.status in ('failed', 'partial')
      and r.finished_at > p_since and r.finished_at <= p_until
      and (f.workspace_id is not null
           or not exists (select 1 from public.sync_run_workspaces p where p.run_id = r.id and p.status = 'failed'))
      and (p_workspace_ids is null
           or f.workspace_id::text in (select jsonb_array_elements_text(p_workspace_ids)))
    union all
    select r.id, r.job, r.instance, 'unverified', p.workspace_id, w.name,
           'mailbox listing unverified for ' || public.sync_unverified_streak(p.workspace_id, p.finished_at)
             || ' runs in a row, nothing deleted: ' || coalesce(p.sweep, ''),
           r.finished_at
    from public.sync_runs r
    join public.sync_run_workspaces p on p.run_id = r.id and p.status = 'done' and p.verified is false
    join public.workspaces w on w.id = p.workspace_id and w.active
    where r.status <> 'running'
      and r.finished_at > p_since and r.finished_at <= p_until
      and v_runs > 0
      -- each run from the N-th unverified one in a row on (the scan's cursor reports each run once)
      and public.sync_unverified_streak(p.workspace_id, p.finished_at) >= v_runs
      and (p_workspace_ids is null
           or p.workspace_id::text in (select jsonb_array_elements_text(p_workspace_ids)))
  ) x
  order by x.failed_at, x.run_id, x.workspace_id
  limit greatest(1, least(coalesce(p_limit, 1000), 50000));
end
$$;
