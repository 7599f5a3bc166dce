-- bisonsync 3/4: mailbox cache, status history, provider performance snapshots and their helper functions.

create table public.sender_emails_cache (
  id                          uuid primary key default gen_random_uuid(),
  workspace_id                uuid not null references public.workspaces (id) on delete cascade,
  -- filled from the workspace by the trigger below
  instance                    text not null,
  -- Email Bison's sender email (mailbox) id; a mailbox shared by two workspaces is two rows
  bison_sender_id             bigint not null,
  email_address               text not null,
  account_name                text,
  status                      text not null default 'Connected'
    check (status in ('Connected', 'Disconnected', 'Failed', 'Not connected')),
  -- event time at which `status` last changed value (display)
  status_changed_at           timestamptz,
  -- event time and source of the newest status observation: the ordering key (see mailbox_status_wins)
  status_observed_at          timestamptz,
  status_source               text check (status_source in ('webhook', 'poll')),
  account_type                text,
  daily_limit                 integer not null default 0,
  emails_sent_count           integer not null default 0,
  total_replied_count         integer not null default 0,
  unique_replied_count        integer not null default 0,
  bounced_count               integer not null default 0,
  unsubscribed_count          integer not null default 0,
  interested_leads_count      integer not null default 0,
  total_opened_count          integer not null default 0,
  unique_opened_count         integer not null default 0,
  total_leads_contacted_count integer not null default 0,
  reply_rate_percentage       numeric(6, 2) generated always as (
    case when emails_sent_count > 0
         then least(round(unique_replied_count::numeric / emails_sent_count * 100, 2), 9999.99)
         else 0
    end
  ) stored,
  email_provider              text,
  provider_tag                text,
  reseller                    text,
  reseller_tag                text,
  domain                      text,
  tags                        jsonb not null default '[]' check (jsonb_typeof(tags) = 'array'),
  warmup_enabled              boolean,
  price                       numeric(10, 2),
  volume_per_account          integer,
  deleted_at                  timestamptz,
  last_seen_run               uuid,
  last_synced_at              timestamptz,
  created_at                  timestamptz not null default now(),
  updated_at                  timestamptz not null default now(),
  constraint sender_emails_cache_workspace_sender_key unique (workspace_id, bison_sender_id)
);

comment on table public.sender_emails_cache is
  'Mailbox cache per (workspace, Email Bison sender id), written by the poller (mark-and-sweep by last_seen_run) '
  'and by account webhooks. Status ordering: mailbox_status_wins(). Deleted mailboxes keep their row '
  '(deleted_at) and are excluded from the stats functions.';

create index sender_emails_cache_workspace_email_idx on public.sender_emails_cache (workspace_id, email_address);
create index sender_emails_cache_instance_sender_idx on public.sender_emails_cache (instance, bison_sender_id);
create index sender_emails_cache_provider_idx
  on public.sender_emails_cache (email_provider, instance) where deleted_at is null;
create index sender_emails_cache_workspace_status_idx
  on public.sender_emails_cache (workspace_id, status) where deleted_at is null;

create function public._sender_emails_cache_normalize()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.email_address := lower(public.clean_label(new.email_address));
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

create trigger sender_emails_cache_normalize
  before insert or update on public.sender_emails_cache
  for each row execute function public._sender_emails_cache_normalize();

create table public.mailbox_status_history (
  id              bigint generated always as identity primary key,
  workspace_id    uuid not null references public.workspaces (id) on delete cascade,
  bison_sender_id bigint not null,
  email_address   text,
  old_status      text,
  new_status      text not null,
  source          text not null check (source in ('webhook', 'poll')),
  event_at        timestamptz not null,
  recorded_at     timestamptz not null default now(),
  -- the webhook delivery that caused it (webhook_deliveries.id), null for polls
  delivery_id     bigint
);

comment on table public.mailbox_status_history is
  'One row per applied mailbox status transition (old_status <> new_status), from webhooks or polls.';

create index mailbox_status_history_ws_event_idx on public.mailbox_status_history (workspace_id, event_at desc);
create index mailbox_status_history_sender_idx
  on public.mailbox_status_history (workspace_id, bison_sender_id, event_at desc);

-- ---------------------------------------------------------------------------------------------------------------
-- Status ordering. A status observation (event time, source, status) replaces the stored one iff it is newer;
-- on an exact tie of event time, the poll beats a webhook, then the more severe status wins
-- (Disconnected > Failed > Not connected > Connected). This is a total order, so the final status is the same
-- whatever order the events arrive in; an equal observation changes nothing.
-- ---------------------------------------------------------------------------------------------------------------

create function public.mailbox_status_wins(
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
             case p_new_status when 'Disconnected' then 4 when 'Failed' then 3 when 'Not connected' then 2
                               when 'Connected' then 1 else 0 end)
          > (case p_old_source when 'poll' then 2 when 'webhook' then 1 else 0 end,
             case p_old_status when 'Disconnected' then 4 when 'Failed' then 3 when 'Not connected' then 2
                               when 'Connected' then 1 else 0 end))
  )
$$;

-- Apply one status observation to one cached mailbox (row-locked), recording the transition in
-- mailbox_status_history when the value changes. Returns {"mailbox_id","action": changed|confirmed|stale,
-- "status","previous_status"}.
create function public.apply_mailbox_status(
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
begin
  if p_status not in ('Connected', 'Disconnected', 'Failed', 'Not connected') or p_status is null then
    raise exception 'unknown mailbox status "%"', p_status using errcode = '22023',
      detail = 'statuses: Connected, Disconnected, Failed, Not connected';
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
                                    p_event_at, p_source, p_status) then
    return jsonb_build_object('mailbox_id', r.id, 'action', 'stale', 'status', r.status,
                              'previous_status', r.status);
  end if;

  update public.sender_emails_cache s set
    status = p_status,
    status_observed_at = p_event_at,
    status_source = p_source,
    status_changed_at = case when r.status is distinct from p_status then p_event_at else r.status_changed_at end
  where s.id = r.id;

  if r.status is distinct from p_status then
    insert into public.mailbox_status_history
      (workspace_id, bison_sender_id, email_address, old_status, new_status, source, event_at, delivery_id)
    values (r.workspace_id, r.bison_sender_id, r.email_address, r.status, p_status, p_source, p_event_at,
            p_delivery_id);
    return jsonb_build_object('mailbox_id', r.id, 'action', 'changed', 'status', p_status,
                              'previous_status', r.status);
  end if;
  return jsonb_build_object('mailbox_id', r.id, 'action', 'confirmed', 'status', p_status,
                            'previous_status', r.status);
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Provider performance
-- ---------------------------------------------------------------------------------------------------------------

create table public.provider_performance_history (
  id                     uuid primary key default gen_random_uuid(),
  email_provider         text not null,
  instance               text not null,
  total_accounts         integer not null default 0,
  active_accounts        integer not null default 0,
  total_sent             bigint not null default 0,
  total_replies          bigint not null default 0,
  unique_replies         bigint not null default 0,
  total_bounces          bigint not null default 0,
  avg_reply_rate         numeric(8, 2) not null default 0,
  avg_emails_per_account numeric(12, 2) not null default 0,
  total_daily_limit      bigint not null default 0,
  total_volume_capacity  bigint not null default 0,
  utilization_percentage numeric(10, 2) not null default 0,
  snapshot_date          date not null,
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  constraint provider_performance_history_key unique (email_provider, instance, snapshot_date)
);

comment on table public.provider_performance_history is
  'Daily snapshot of aggregate_provider_stats() per (provider, instance), written by '
  'snapshot_provider_performance() (idempotent). Read by check_provider_reply_rate_drop().';

create index provider_performance_history_date_idx on public.provider_performance_history (snapshot_date desc);

create trigger provider_performance_history_updated_at
  before update on public.provider_performance_history
  for each row execute function public._set_updated_at();

-- Live mailboxes as the stats functions count them: deleted ones excluded; with no workspace given, a mailbox
-- shared by several workspaces of one instance counts once (its most recently synced row). SECURITY INVOKER: RLS
-- of the caller applies.
create function public.live_mailboxes(p_workspace_id uuid default null)
returns setof public.sender_emails_cache
language sql
stable
set search_path = ''
as $$
  select distinct on (s.instance, s.bison_sender_id) s.*
  from public.sender_emails_cache s
  where s.deleted_at is null
    and (p_workspace_id is null or s.workspace_id = p_workspace_id)
  order by s.instance, s.bison_sender_id, s.last_synced_at desc nulls last, s.updated_at desc
$$;

create function public.aggregate_provider_stats(p_workspace_id uuid default null)
returns table (
  email_provider text,
  instance text,
  total_accounts bigint,
  active_accounts bigint,
  total_sent bigint,
  total_replies bigint,
  unique_replies bigint,
  total_bounces bigint,
  avg_reply_rate numeric,
  avg_emails_per_account numeric,
  total_daily_limit bigint,
  total_volume_capacity bigint,
  utilization_percentage numeric
)
language sql
stable
set search_path = ''
as $$
  select
    m.email_provider,
    m.instance,
    count(*),
    count(*) filter (where m.status = 'Connected'),
    coalesce(sum(m.emails_sent_count), 0)::bigint,
    coalesce(sum(m.total_replied_count), 0)::bigint,
    coalesce(sum(m.unique_replied_count), 0)::bigint,
    coalesce(sum(m.bounced_count), 0)::bigint,
    case when sum(m.emails_sent_count) > 0
         then round(sum(m.unique_replied_count)::numeric / sum(m.emails_sent_count) * 100, 2)
         else 0 end,
    round(coalesce(sum(m.emails_sent_count), 0)::numeric / count(*), 2),
    coalesce(sum(m.daily_limit), 0)::bigint,
    coalesce(sum(m.volume_per_account), 0)::bigint,
    case when sum(m.volume_per_account) > 0
         then round(sum(m.daily_limit)::numeric / sum(m.volume_per_account) * 100, 2)
         else 0 end
  from public.live_mailboxes(p_workspace_id) m
  where m.email_provider is not null
  group by m.email_provider, m.instance
$$;

comment on function public.aggregate_provider_stats(uuid) is
  'Per (provider, instance) over live mailboxes (deleted excluded; shared mailboxes once when p_workspace_id is '
  'null): avg_reply_rate = sum(unique replies)/sum(sent)*100 (volume-weighted), utilization = '
  'sum(daily_limit)/sum(volume_per_account)*100, 0 when a denominator is 0. Respects RLS of the caller.';

create function public.get_account_status_stats(p_workspace_id uuid default null)
returns table (
  total bigint,
  connected bigint,
  disconnected bigint,
  failed bigint,
  not_connected bigint,
  disconnect_rate numeric
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
         else 0 end
  from public.live_mailboxes(p_workspace_id) m
$$;

comment on function public.get_account_status_stats(uuid) is
  'Mailbox status buckets over live mailboxes; ''Not connected'' is its own bucket; disconnect_rate = '
  '(Disconnected + Failed) / total * 100, 0 when there are none. Respects RLS of the caller.';

create function public.check_provider_reply_rate_drop(
  p_threshold_pct numeric default 20,
  p_as_of date default current_date
)
returns table (
  email_provider text,
  instance text,
  current_rate numeric,
  previous_rate numeric,
  previous_snapshot_date date,
  drop_percentage numeric
)
language sql
stable
set search_path = ''
as $$
  select c.email_provider, c.instance, c.avg_reply_rate, p.avg_reply_rate, p.snapshot_date,
         round((p.avg_reply_rate - c.avg_reply_rate) / p.avg_reply_rate * 100, 2)
  from public.provider_performance_history c
  cross join lateral (
    select h.avg_reply_rate, h.snapshot_date
    from public.provider_performance_history h
    where h.email_provider = c.email_provider and h.instance = c.instance and h.snapshot_date < c.snapshot_date
    order by h.snapshot_date desc
    limit 1
  ) p
  where c.snapshot_date = p_as_of
    and p.avg_reply_rate > 0
    and (p.avg_reply_rate - c.avg_reply_rate) / p.avg_reply_rate * 100 > p_threshold_pct
$$;

comment on function public.check_provider_reply_rate_drop(numeric, date) is
  'Providers whose snapshot at p_as_of has a reply rate more than p_threshold_pct percent (relative, strictly '
  'greater) below their most recent earlier snapshot, when that rate was above 0.';

create function public.snapshot_provider_performance(p_snapshot_date date default current_date)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  -- serialise concurrent snapshots of the same day
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bisonsync.snapshot_provider_performance'));

  insert into public.provider_performance_history as h (
    email_provider, instance, total_accounts, active_accounts, total_sent, total_replies, unique_replies,
    total_bounces, avg_reply_rate, avg_emails_per_account, total_daily_limit, total_volume_capacity,
    utilization_percentage, snapshot_date
  )
  select a.email_provider, a.instance, a.total_accounts, a.active_accounts, a.total_sent, a.total_replies,
         a.unique_replies, a.total_bounces, a.avg_reply_rate, a.avg_emails_per_account, a.total_daily_limit,
         a.total_volume_capacity, a.utilization_percentage, p_snapshot_date
  from public.aggregate_provider_stats(null) a
  on conflict (email_provider, instance, snapshot_date) do update set
    total_accounts = excluded.total_accounts,
    active_accounts = excluded.active_accounts,
    total_sent = excluded.total_sent,
    total_replies = excluded.total_replies,
    unique_replies = excluded.unique_replies,
    total_bounces = excluded.total_bounces,
    avg_reply_rate = excluded.avg_reply_rate,
    avg_emails_per_account = excluded.avg_emails_per_account,
    total_daily_limit = excluded.total_daily_limit,
    total_volume_capacity = excluded.total_volume_capacity,
    utilization_percentage = excluded.utilization_percentage;
  get diagnostics v_count = row_count;

  -- a re-run the same day replaces the day's snapshot: providers that no longer have live mailboxes drop out
  delete from public.provider_performance_history h
  where h.snapshot_date = p_snapshot_date
    and not exists (
      select 1 from public.aggregate_provider_stats(null) a
      where a.email_provider = h.email_provider and a.instance = h.instance
    );
  return v_count;
end
$$;

comment on function public.snapshot_provider_performance(date) is
  'Idempotent daily snapshot of aggregate_provider_stats(null) into provider_performance_history; returns the '
  'number of (provider, instance) rows written. service_role only.';

-- ---------------------------------------------------------------------------------------------------------------
-- RLS and grants
-- ---------------------------------------------------------------------------------------------------------------

alter table public.sender_emails_cache enable row level security;
alter table public.mailbox_status_history enable row level security;
alter table public.provider_performance_history enable row level security;

create policy sender_emails_cache_member_read on public.sender_emails_cache
  for select to authenticated using (public.is_workspace_member(workspace_id));
create policy mailbox_status_history_member_read on public.mailbox_status_history
  for select to authenticated using (public.is_workspace_member(workspace_id));
create policy provider_performance_history_instance_member_read on public.provider_performance_history
  for select to authenticated using (public.is_instance_member(instance));

revoke all on table public.sender_emails_cache, public.mailbox_status_history,
  public.provider_performance_history from public, anon, authenticated;
grant all on table public.sender_emails_cache, public.mailbox_status_history,
  public.provider_performance_history to service_role;
grant select on table public.sender_emails_cache, public.mailbox_status_history,
  public.provider_performance_history to authenticated;
revoke all on sequence public.mailbox_status_history_id_seq from public, anon, authenticated;
grant usage, select on sequence public.mailbox_status_history_id_seq to service_role;

revoke all on function public._sender_emails_cache_normalize()
  from public, anon, authenticated, service_role;
revoke all on function public.apply_mailbox_status(uuid, text, text, timestamptz, bigint),
  public.snapshot_provider_performance(date) from public, anon, authenticated;
grant execute on function public.apply_mailbox_status(uuid, text, text, timestamptz, bigint),
  public.snapshot_provider_performance(date) to service_role;
revoke all on function public.mailbox_status_wins(timestamptz, text, text, timestamptz, text, text),
  public.live_mailboxes(uuid), public.aggregate_provider_stats(uuid), public.get_account_status_stats(uuid),
  public.check_provider_reply_rate_drop(numeric, date) from public, anon;
grant execute on function public.mailbox_status_wins(timestamptz, text, text, timestamptz, text, text),
  public.live_mailboxes(uuid), public.aggregate_provider_stats(uuid), public.get_account_status_stats(uuid),
  public.check_provider_reply_rate_drop(numeric, date) to authenticated, service_role;
