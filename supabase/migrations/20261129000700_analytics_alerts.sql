-- bisonsync 7: analytics and alerts. Reconciliation drift (webhook counters vs Email Bison's stats, recorded
-- without ever touching the counters), per-workspace mailbox status stats, the alert log (deduplicated by key,
-- claimed by one sender at a time, never deleted when Slack is down), scan cursors and the condition scans.
--
-- Same conventions as 20261129000100: RLS on every table; service_role ALL; authenticated SELECT on member rows
-- only; anon nothing; mutating functions SECURITY DEFINER with `set search_path = ''` and EXECUTE for
-- service_role only; read functions SECURITY INVOKER.

-- ---------------------------------------------------------------------------------------------------------------
-- Reconciliation drift
-- ---------------------------------------------------------------------------------------------------------------

create table public.metric_drift (
  id            bigint generated always as identity primary key,
  workspace_id  uuid not null references public.workspaces (id) on delete cascade,
  -- the workspace-local period compared (first of the month .. today, or .. the month's last day)
  period_start  date not null,
  period_end    date not null,
  -- replies = webhook replies vs Bison unique_replies_per_contact; replies_total = webhook replies vs Bison replied
  metric        text not null
    check (metric in ('emails_sent', 'replies', 'replies_total', 'interested', 'bounced', 'unsubscribed')),
  webhook_value bigint not null check (webhook_value >= 0),
  bison_value   bigint not null check (bison_value >= 0),
  drift         bigint generated always as (webhook_value - bison_value) stored,
  drift_pct     numeric generated always as (
    case when bison_value > 0 then round((webhook_value - bison_value)::numeric / bison_value * 100, 2) end
  ) stored,
  -- the workspace-local date of the check: re-running the same day updates the day's row
  checked_on    date not null,
  checked_at    timestamptz not null default now(),
  constraint metric_drift_period_check check (period_end >= period_start),
  constraint metric_drift_key unique (workspace_id, metric, period_start, checked_on)
);

comment on table public.metric_drift is
  'Webhook counters (client_metrics_daily) compared with GET /api/workspaces/v1.1/stats over the same '
  'workspace-local period, one row per workspace, metric, period start and check day. drift = webhook - bison. '
  'Written only by record_metric_drift(); the counters themselves are never modified.';

create index metric_drift_ws_checked_idx on public.metric_drift (workspace_id, checked_at desc);

-- Compare and record. The webhook side is summed here, in the same transaction that writes the drift rows, so a
-- row always holds one consistent reading of the counters. p_bison maps metric -> Email Bison's value (the
-- caller maps WorkspaceStats fields onto metrics); metrics it leaves out are not recorded.
create function public.record_metric_drift(
  p_workspace_id uuid,
  p_period_start date,
  p_period_end date,
  p_bison jsonb,
  p_checked_at timestamptz default now()
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_tz text;
  v_checked_at timestamptz := coalesce(p_checked_at, pg_catalog.now());
  v_checked_on date;
  v_unknown text;
  v_sent bigint;
  v_replies bigint;
  v_interested bigint;
  v_bounced bigint;
  v_unsubscribed bigint;
  v_result jsonb;
begin
  if p_period_start is null or p_period_end is null or p_period_end < p_period_start then
    raise exception 'invalid period % .. %', p_period_start, p_period_end using errcode = '22023';
  end if;
  if jsonb_typeof(p_bison) is distinct from 'object' then
    raise exception 'p_bison must be a JSON object {metric: value}' using errcode = '22023';
  end if;
  select k into v_unknown from jsonb_object_keys(p_bison) k
  where k not in ('emails_sent', 'replies', 'replies_total', 'interested', 'bounced', 'unsubscribed')
  limit 1;
  if v_unknown is not null then
    raise exception 'unknown metric "%" in p_bison', v_unknown using errcode = '22023',
      detail = 'metrics: emails_sent, replies, replies_total, interested, bounced, unsubscribed';
  end if;
  if exists (select 1 from jsonb_each(p_bison) e
             where case when jsonb_typeof(e.value) <> 'number' then true
                        else (e.value #>> '{}')::numeric < 0
                          or (e.value #>> '{}')::numeric <> trunc((e.value #>> '{}')::numeric) end) then
    raise exception 'p_bison values must be non-negative integers' using errcode = '22023';
  end if;

  select w.timezone into v_tz from public.workspaces w where w.id = p_workspace_id;
  if not found then
    raise exception 'unknown workspace id %', p_workspace_id using errcode = 'P0002';
  end if;
  v_checked_on := (v_checked_at at time zone v_tz)::date;

  select coalesce(sum(d.emails_sent), 0), coalesce(sum(d.replies), 0), coalesce(sum(d.interested), 0),
         coalesce(sum(d.bounced), 0), coalesce(sum(d.unsubscribed), 0)
    into v_sent, v_replies, v_interested, v_bounced, v_unsubscribed
  from public.client_metrics_daily d
  where d.workspace_id = p_workspace_id and d.day between p_period_start and p_period_end;

  with m (metric, webhook_value) as (
    values ('emails_sent', v_sent), ('replies', v_replies), ('replies_total', v_replies),
           ('interested', v_interested), ('bounced', v_bounced), ('unsubscribed', v_unsubscribed)
  ), ins as (
    insert into public.metric_drift as md
      (workspace_id, period_start, period_end, metric, webhook_value, bison_value, checked_on, checked_at)
    select p_workspace_id, p_period_start, p_period_end, m.metric, m.webhook_value,
           (p_bison ->> m.metric)::numeric::bigint, v_checked_on, v_checked_at
    from m
    where p_bison ? m.metric
    on conflict (workspace_id, metric, period_start, checked_on) do update set
      period_end    = excluded.period_end,
      webhook_value = excluded.webhook_value,
      bison_value   = excluded.bison_value,
      checked_at    = excluded.checked_at
    returning md.*
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'workspace_id', ins.workspace_id, 'metric', ins.metric, 'period_start', ins.period_start,
           'period_end', ins.period_end, 'webhook_value', ins.webhook_value, 'bison_value', ins.bison_value,
           'drift', ins.webhook_value - ins.bison_value,
           'drift_pct', case when ins.bison_value > 0
                             then round((ins.webhook_value - ins.bison_value)::numeric / ins.bison_value * 100, 2)
                        end,
           'checked_on', ins.checked_on, 'checked_at', ins.checked_at) order by ins.metric), '[]'::jsonb)
    into v_result
  from ins;
  return v_result;
end
$$;

comment on function public.record_metric_drift(uuid, date, date, jsonb, timestamptz) is
  'Sum the webhook counters of the workspace over p_period_start..p_period_end (workspace-local days), compare '
  'with p_bison {metric: Email Bison value}, upsert one metric_drift row per metric keyed by the workspace-local '
  'check day, return the rows as JSON. Never writes client_metrics_daily. service_role only.';

-- The newest check of each (workspace, metric, period start).
create view public.metric_drift_latest
with (security_invoker = true)
as
select distinct on (d.workspace_id, d.metric, d.period_start)
  d.workspace_id, w.name as workspace_name, d.period_start, d.period_end, d.metric, d.webhook_value,
  d.bison_value, d.drift, d.drift_pct, d.checked_on, d.checked_at
from public.metric_drift d
join public.workspaces w on w.id = d.workspace_id
order by d.workspace_id, d.metric, d.period_start, d.checked_at desc;

comment on view public.metric_drift_latest is
  'Newest metric_drift row per (workspace, metric, period_start). security_invoker: RLS of the caller applies.';

-- ---------------------------------------------------------------------------------------------------------------
-- Mailbox status per workspace (the disconnect-rate view of get_account_status_stats, all workspaces at once)
-- ---------------------------------------------------------------------------------------------------------------

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
  disconnect_rate numeric
)
language sql
stable
set search_path = ''
as $$
  select
    w.id, w.name, w.instance, w.active,
    count(s.id),
    count(s.id) filter (where s.status = 'Connected'),
    count(s.id) filter (where s.status = 'Disconnected'),
    count(s.id) filter (where s.status = 'Failed'),
    count(s.id) filter (where s.status = 'Not connected'),
    case when count(s.id) > 0
         then round((count(s.id) filter (where s.status in ('Disconnected', 'Failed')))::numeric
                    / count(s.id) * 100, 2)
         else 0 end
  from public.workspaces w
  left join public.sender_emails_cache s on s.workspace_id = w.id and s.deleted_at is null
  group by w.id, w.name, w.instance, w.active
$$;

comment on function public.account_status_by_workspace() is
  'get_account_status_stats(workspace) for every workspace in one query (live mailboxes; a mailbox shared by '
  'two workspaces counts in each). Respects RLS of the caller.';

-- ---------------------------------------------------------------------------------------------------------------
-- Alert log: one row per alert key (condition + subject + window). Restarts and replicas never send twice:
-- record_alerts inserts a key once; claim_alerts leases due rows with SKIP LOCKED; finish_alerts marks them sent
-- or schedules the next attempt. Unsent rows stay until Slack takes them.
-- ---------------------------------------------------------------------------------------------------------------

create table public.alert_log (
  id              bigint generated always as identity primary key,
  alert_key       text not null unique check (length(alert_key) between 1 and 500),
  condition       text not null check (condition ~ '^[a-z][a-z0-9_]{0,63}$'),
  severity        text not null default 'warning' check (severity in ('info', 'warning', 'critical')),
  workspace_id    uuid references public.workspaces (id) on delete cascade,
  window_start    timestamptz not null,
  -- the alert as composed by bisonsync.alerts (title, fields, ...); never a Slack URL or a token
  payload         jsonb not null check (jsonb_typeof(payload) = 'object'),
  first_seen      timestamptz not null default now(),
  sent_at         timestamptz,
  attempts        integer not null default 0,
  last_error      text,
  next_attempt_at timestamptz not null default now(),
  claimed_until   timestamptz
);

comment on table public.alert_log is
  'Alerts, deduplicated by alert_key (one per condition, subject and window). sent_at null = not delivered yet '
  '(attempts, last_error, next_attempt_at say why and when next). Written only through record_alerts, '
  'claim_alerts and finish_alerts.';

create index alert_log_unsent_idx on public.alert_log (next_attempt_at, id) where sent_at is null;
create index alert_log_ws_idx on public.alert_log (workspace_id, first_seen desc);
create index alert_log_condition_idx on public.alert_log (condition, first_seen desc);

-- Where each scan (mailbox transitions, sync runs) got to, so a restart resumes instead of re-reading or skipping.
create table public.alert_scan_state (
  scan          text primary key check (scan ~ '^[a-z][a-z0-9_]{0,63}$'),
  scanned_until timestamptz not null,
  updated_at    timestamptz not null default now()
);

comment on table public.alert_scan_state is 'Alert scan cursors (service_role only).';

-- The disconnect scan reads transitions by the time they were recorded.
create index mailbox_status_history_bad_recorded_idx
  on public.mailbox_status_history (recorded_at)
  where new_status in ('Disconnected', 'Failed');

-- p_alerts: [{alert_key, condition, severity, workspace_id, window_start, payload}]. Returns the keys that were
-- new (an existing key is left as it is: same condition, same window, already known).
create function public.record_alerts(p_alerts jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  if jsonb_typeof(p_alerts) is distinct from 'array' then
    raise exception 'p_alerts must be a JSON array' using errcode = '22023';
  end if;
  with src as (
    select distinct on (e ->> 'alert_key') e
    from jsonb_array_elements(p_alerts) e
    order by e ->> 'alert_key'
  ), ins as (
    insert into public.alert_log (alert_key, condition, severity, workspace_id, window_start, payload)
    select s.e ->> 'alert_key', s.e ->> 'condition', coalesce(s.e ->> 'severity', 'warning'),
           (s.e ->> 'workspace_id')::uuid, (s.e ->> 'window_start')::timestamptz,
           coalesce(s.e -> 'payload', '{}'::jsonb)
    from src s
    -- a workspace deleted meanwhile: drop its alert rather than fail the batch
    where s.e ->> 'workspace_id' is null
       or exists (select 1 from public.workspaces w where w.id = (s.e ->> 'workspace_id')::uuid)
    on conflict (alert_key) do nothing
    returning alert_key
  )
  select coalesce(jsonb_agg(ins.alert_key order by ins.alert_key), '[]'::jsonb) into v_result from ins;
  return v_result;
end
$$;

-- Lease up to p_limit due, unsent alerts to the caller for p_lease_seconds (other replicas skip them meanwhile;
-- a crashed sender's lease simply expires). Each row comes with the workspace's slack_webhook_ref (a NAME).
create function public.claim_alerts(
  p_limit integer default 200,
  p_lease_seconds integer default 120,
  p_now timestamptz default now()
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_result jsonb;
begin
  with due as (
    select a.id
    from public.alert_log a
    where a.sent_at is null
      and a.next_attempt_at <= v_now
      and (a.claimed_until is null or a.claimed_until <= v_now)
    order by a.next_attempt_at, a.id
    limit greatest(1, least(coalesce(p_limit, 200), 5000))
    for update skip locked
  ), upd as (
    update public.alert_log a
    set claimed_until = v_now + pg_catalog.make_interval(secs => greatest(coalesce(p_lease_seconds, 120), 1))
    from due
    where a.id = due.id
    returning a.*
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', u.id, 'alert_key', u.alert_key, 'condition', u.condition, 'severity', u.severity,
           'workspace_id', u.workspace_id, 'window_start', u.window_start, 'payload', u.payload,
           'first_seen', u.first_seen, 'attempts', u.attempts, 'last_error', u.last_error,
           'slack_webhook_ref', c.slack_webhook_ref) order by u.id), '[]'::jsonb)
    into v_result
  from upd u
  left join public.workspace_credentials c on c.workspace_id = u.workspace_id;
  return v_result;
end
$$;

-- p_results: [{id, ok, tries, error, retry_at}]. ok -> sent_at = now; otherwise the error is kept and the alert
-- is due again at retry_at. Either way the lease is released. Returns the number of rows updated.
create function public.finish_alerts(p_results jsonb)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  if jsonb_typeof(p_results) is distinct from 'array' then
    raise exception 'p_results must be a JSON array' using errcode = '22023';
  end if;
  update public.alert_log a set
    sent_at         = case when r.ok then pg_catalog.now() else null end,
    attempts        = a.attempts + greatest(coalesce(r.tries, 1), 0),
    last_error      = case when r.ok then null else left(coalesce(r.error, 'unknown error'), 500) end,
    next_attempt_at = case when r.ok then a.next_attempt_at
                           else coalesce(r.retry_at, pg_catalog.now() + interval '1 minute') end,
    claimed_until   = null
  from jsonb_to_recordset(p_results) as r (id bigint, ok boolean, tries integer, error text, retry_at timestamptz)
  where a.id = r.id and a.sent_at is null;
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

create function public.advance_alert_scan(p_scan text, p_until timestamptz)
returns timestamptz
language sql
security definer
set search_path = ''
as $$
  insert into public.alert_scan_state as s (scan, scanned_until)
  values (p_scan, p_until)
  on conflict (scan) do update set
    scanned_until = greatest(s.scanned_until, excluded.scanned_until),
    updated_at = pg_catalog.now()
  returning s.scanned_until
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Condition scans (read-only; the Python side composes alerts, keys and windows). p_workspace_ids: optional JSON
-- array of workspace uuids to restrict a scan to.
-- ---------------------------------------------------------------------------------------------------------------

-- Mailboxes that became Disconnected or Failed, by the time the transition was recorded, in active workspaces. A
-- poll's first sighting (old_status null) is initial state, not a transition; a webhook's is a real event.
create function public.alert_mailbox_transitions(
  p_since timestamptz,
  p_until timestamptz,
  p_workspace_ids jsonb default null,
  p_limit integer default 5000
)
returns table (
  history_id bigint,
  workspace_id uuid,
  workspace_name text,
  instance text,
  bison_sender_id bigint,
  email_address text,
  old_status text,
  new_status text,
  source text,
  event_at timestamptz,
  recorded_at timestamptz,
  current_status text
)
language sql
stable
set search_path = ''
as $$
  select h.id, h.workspace_id, w.name, w.instance, h.bison_sender_id, h.email_address, h.old_status, h.new_status,
         h.source, h.event_at, h.recorded_at,
         (select s.status from public.sender_emails_cache s
           where s.workspace_id = h.workspace_id and s.bison_sender_id = h.bison_sender_id and s.deleted_at is null)
  from public.mailbox_status_history h
  join public.workspaces w on w.id = h.workspace_id and w.active
  where h.new_status in ('Disconnected', 'Failed')
    and h.recorded_at > p_since and h.recorded_at <= p_until
    and (h.old_status is not null or h.source = 'webhook')
    and (p_workspace_ids is null
         or h.workspace_id::text in (select jsonb_array_elements_text(p_workspace_ids)))
  order by h.recorded_at, h.id
  limit greatest(1, least(coalesce(p_limit, 5000), 50000))
$$;

-- Active workspaces that have received at least one delivery, but none for p_silence_minutes before p_now.
create function public.alert_webhook_silence(
  p_now timestamptz default now(),
  p_silence_minutes integer default 60,
  p_workspace_ids jsonb default null
)
returns table (
  workspace_id uuid,
  workspace_name text,
  instance text,
  last_delivery_at timestamptz,
  last_event_type text,
  last_status text,
  silent_minutes integer
)
language sql
stable
set search_path = ''
as $$
  select w.id, w.name, w.instance, a.last_delivery_at, a.last_event_type, a.last_status,
         (extract(epoch from (p_now - a.last_delivery_at)) / 60)::integer
  from public.webhook_activity a
  join public.workspaces w on w.id = a.workspace_id and w.active
  where a.last_delivery_at < p_now - pg_catalog.make_interval(mins => greatest(coalesce(p_silence_minutes, 60), 1))
    and (p_workspace_ids is null
         or w.id::text in (select jsonb_array_elements_text(p_workspace_ids)))
  order by a.last_delivery_at
$$;

-- Finished sync runs (20261129000600) with status failed or partial, finished in (p_since, p_until]: one row per
-- failed workspace of the run (its own error), or one row with no workspace when no workspace row failed (the
-- run itself failed, e.g. before it listed any workspace). plpgsql so that this migration does not pin the sync
-- tables' columns at creation time: a change there surfaces as an error of this scan only.
create function public.alert_sync_failures(
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
begin
  return query
  select r.id, r.job, r.instance, r.status, f.workspace_id, f.name, coalesce(f.error, r.error), r.finished_at
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
  order by r.finished_at, r.id, f.workspace_id
  limit greatest(1, least(coalesce(p_limit, 1000), 50000));
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- RLS and grants
-- ---------------------------------------------------------------------------------------------------------------

alter table public.metric_drift enable row level security;
alter table public.alert_log enable row level security;
alter table public.alert_scan_state enable row level security;

create policy metric_drift_member_read on public.metric_drift
  for select to authenticated using (public.is_workspace_member(workspace_id));
-- alerts about a workspace are readable by its members; instance-wide ones (workspace_id null) by service_role
create policy alert_log_member_read on public.alert_log
  for select to authenticated using (workspace_id is not null and public.is_workspace_member(workspace_id));
-- alert_scan_state: no policy, no grant -> service_role only.

revoke all on table public.metric_drift, public.metric_drift_latest, public.alert_log, public.alert_scan_state
  from public, anon, authenticated;
grant all on table public.metric_drift, public.alert_log, public.alert_scan_state to service_role;
grant select on table public.metric_drift_latest to service_role;
grant select on table public.metric_drift, public.metric_drift_latest, public.alert_log to authenticated;
revoke all on sequence public.metric_drift_id_seq, public.alert_log_id_seq from public, anon, authenticated;
grant usage, select on sequence public.metric_drift_id_seq, public.alert_log_id_seq to service_role;

revoke all on function
  public.record_metric_drift(uuid, date, date, jsonb, timestamptz),
  public.record_alerts(jsonb),
  public.claim_alerts(integer, integer, timestamptz),
  public.finish_alerts(jsonb),
  public.advance_alert_scan(text, timestamptz),
  public.alert_mailbox_transitions(timestamptz, timestamptz, jsonb, integer),
  public.alert_webhook_silence(timestamptz, integer, jsonb),
  public.alert_sync_failures(timestamptz, timestamptz, jsonb, integer)
  from public, anon, authenticated;
grant execute on function
  public.record_metric_drift(uuid, date, date, jsonb, timestamptz),
  public.record_alerts(jsonb),
  public.claim_alerts(integer, integer, timestamptz),
  public.finish_alerts(jsonb),
  public.advance_alert_scan(text, timestamptz),
  public.alert_mailbox_transitions(timestamptz, timestamptz, jsonb, integer),
  public.alert_webhook_silence(timestamptz, integer, jsonb),
  public.alert_sync_failures(timestamptz, timestamptz, jsonb, integer)
  to service_role;
revoke all on function public.account_status_by_workspace() from public, anon;
grant execute on function public.account_status_by_workspace() to authenticated, service_role;
