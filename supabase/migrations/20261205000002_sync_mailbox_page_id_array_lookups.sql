-- History fix (carried forward from an edit to 20261129000600_mailbox_sync.sql, which had already been applied):
-- sync_mailbox_page looks the page's mailboxes up with `= any(array(...))` instead of `in (select ...)` / a join,
-- so the planner always does one index lookup per row on (workspace_id, bison_sender_id) instead of, at times, a
-- hash join over the whole workspace (linear at 100k mailboxes; bench/sync.py). Same signature and result.

create or replace function public.sync_mailbox_page(
  p_run_id uuid,
  p_workspace_id uuid,
  p_page integer,
  p_next_page_url text,
  p_rows jsonb,
  p_observed_at timestamptz default null,
  p_listing_total integer default null,
  p_holder text default null
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
  if exists (select 1 from jsonb_array_elements(p_rows) e
             where e ->> 'status' not in ('Connected', 'Disconnected', 'Failed', 'Not connected')) then
    raise exception 'unknown mailbox status in page %', p_page using errcode = '22023',
      detail = 'statuses: Connected, Disconnected, Failed, Not connected (null: unknown, not applied)';
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
    select distinct on (r.id) r.*
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
