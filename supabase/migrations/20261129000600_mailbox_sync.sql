-- bisonsync 6: mailbox sync runs (resumable, single-flight across replicas) and the per-page / per-workspace
-- functions of the poller. See docs/sync.md.
--
-- Model (stripe-sync-engine v1): a run record per job with a cursor per workspace (the next page URL), a lease
-- row per job for single flight (no session-level advisory locks: the REST path has no session), one call per
-- page, and a sweep of vanished mailboxes by run stamp that runs only after a workspace's listing completed.
--
-- The run stamp lives in `sync_run_mailboxes` (not published), not in a rewrite of every cached row: a poll over
-- unchanged data writes NOTHING to `sender_emails_cache`, so realtime consumers only ever see real changes
-- (with REPLICA IDENTITY FULL, stamping 12k rows every 5 minutes would be 12k full-row WAL records and 12k
-- realtime events per poll, each checked against every subscriber's RLS). `last_seen_run`/`last_synced_at` are
-- set on the rows a run actually writes; per-workspace freshness is `workspace_mailbox_sync.last_synced_at`.

-- ---------------------------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------------------------

-- One lease row per job: whoever holds an unexpired lease runs the job; anyone may take an expired one.
create table public.sync_leases (
  job         text primary key check (job = btrim(job) and job <> ''),
  holder      text not null check (holder = btrim(holder) and holder <> ''),
  run_id      uuid,
  acquired_at timestamptz not null default now(),
  renewed_at  timestamptz not null default now(),
  expires_at  timestamptz not null
);

comment on table public.sync_leases is
  'Single-flight lease per job (e.g. mailboxes:<instance>): held while expires_at > now(), renewed by '
  'heartbeat_sync_run, taken over by start_sync_run once expired. service_role only.';

create table public.sync_runs (
  id            uuid primary key default gen_random_uuid(),
  job           text not null check (job = btrim(job) and job <> ''),
  instance      text not null,
  status        text not null default 'running' check (status in ('running', 'completed', 'partial', 'failed')),
  -- the poller working on it (the lease holder); a resumed run changes holder
  holder        text,
  resumed_count integer not null default 0,
  started_at    timestamptz not null default now(),
  heartbeat_at  timestamptz not null default now(),
  finished_at   timestamptz,
  totals        jsonb not null default '{}' check (jsonb_typeof(totals) = 'object'),
  error         text,
  constraint sync_runs_finished_check check ((status = 'running') = (finished_at is null))
);

comment on table public.sync_runs is
  'One row per sync run. running -> completed (every workspace done) | partial (some failed) | failed (none '
  'succeeded, or stalled past the resume age). totals is refreshed by every heartbeat (progress) and at the end.';

-- at most one unfinished run per job (a second safety net behind the lease)
create unique index sync_runs_one_running_per_job on public.sync_runs (job) where status = 'running';
create index sync_runs_job_started_idx on public.sync_runs (job, started_at desc);
create index sync_runs_instance_started_idx on public.sync_runs (instance, started_at desc);

create table public.sync_run_workspaces (
  run_id             uuid not null references public.sync_runs (id) on delete cascade,
  workspace_id       uuid not null references public.workspaces (id) on delete cascade,
  status             text not null default 'pending' check (status in ('pending', 'running', 'done', 'failed')),
  -- committed pages of the current listing and where the next one is (path + query); null after the last page
  pages_done         integer not null default 0 check (pages_done >= 0),
  next_page_url      text,
  mailboxes_seen     integer not null default 0,
  -- meta.total of the latest page; listing_changed when it differed between pages (the listing shifted)
  listing_total      integer,
  listing_changed    boolean not null default false,
  -- fetch time of the first page: mailboxes created or observed later are never swept by this run
  listing_started_at timestamptz,
  inserted           integer not null default 0,
  updated            integer not null default 0,
  status_changes     integer not null default 0,
  undeleted          integer not null default 0,
  deleted            integer not null default 0,
  priced             integer not null default 0,
  -- 'swept', or why not
  sweep              text,
  error              text,
  started_at         timestamptz,
  finished_at        timestamptz,
  updated_at         timestamptz not null default now(),
  primary key (run_id, workspace_id)
);

comment on table public.sync_run_workspaces is
  'Per-workspace progress of a sync run: the resume cursor (pages_done, next_page_url), counters, sweep outcome. '
  'A killed run resumes each workspace at next_page_url.';

-- workspace_mailbox_sync: the latest attempt and the latest success per workspace
create index sync_run_workspaces_ws_updated_idx on public.sync_run_workspaces (workspace_id, updated_at desc);
create index sync_run_workspaces_ws_done_idx on public.sync_run_workspaces (workspace_id, finished_at desc)
  where status = 'done';

-- The run stamp: which mailboxes this run has seen so far (deleted when the workspace or the run finishes).
create table public.sync_run_mailboxes (
  run_id          uuid not null,
  workspace_id    uuid not null,
  bison_sender_id bigint not null,
  primary key (run_id, workspace_id, bison_sender_id),
  foreign key (run_id, workspace_id) references public.sync_run_workspaces (run_id, workspace_id) on delete cascade
);

comment on table public.sync_run_mailboxes is
  'Mark set of a running sync: (run, workspace, sender id) per mailbox listed so far. Not published.';

-- ---------------------------------------------------------------------------------------------------------------
-- Price and capacity (spec §5.2) with n = live mailboxes on the same domain in the WHOLE workspace
-- ---------------------------------------------------------------------------------------------------------------

create function public.mailbox_price(p_provider text, p_reseller text, p_domain_mailboxes integer)
returns numeric
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when lower(p_reseller) like '%cheapinboxes%' then 3.00
    when lower(p_reseller) = 'zapmail' then 3.00
    when lower(p_reseller) = 'mailr' then 0.91
    when lower(p_reseller) = 'scaledmail' then round(50.0 / greatest(coalesce(p_domain_mailboxes, 1), 1), 2)
    when lower(p_provider) in ('google', 'gmail') then 3.00
    else 0
  end
$$;

comment on function public.mailbox_price(text, text, integer) is
  'USD per month (spec §5.2): CheapInboxes 3, Zapmail 3, Mailr 0.91, ScaledMail 50/n, Google/Gmail 3, else 0; '
  'n = live mailboxes on the domain in the workspace.';

create function public.mailbox_daily_volume(p_provider text, p_reseller text, p_domain_mailboxes integer)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case
    when lower(p_reseller) = 'mailr' then floor(495.0 / greatest(coalesce(p_domain_mailboxes, 1), 1))::integer
    when lower(p_reseller) = 'scaledmail' then
      case when p_domain_mailboxes >= 49 then 5 when p_domain_mailboxes >= 25 then 8 else 5 end
    when lower(p_provider) in ('google', 'gmail', 'microsoft', 'outlook') then 20
    else 0
  end
$$;

comment on function public.mailbox_daily_volume(text, text, integer) is
  'Theoretical emails per day (spec §5.2): Mailr floor(495/n); ScaledMail 5 (n >= 49), 8 (n >= 25), else 5; '
  'Google/Gmail/Microsoft/Outlook 20; else 0.';

-- ---------------------------------------------------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------------------------------------------------

-- The run, locked FOR KEY SHARE (page and workspace calls run in parallel; finishing the run waits for them),
-- and checked: it must be running and, when p_holder is given, held by p_holder (fencing a poller that lost its
-- lease). 55000 / 55006 tell the poller to stop.
create function public._sync_run_for_write(p_run_id uuid, p_holder text)
returns public.sync_runs
language plpgsql
set search_path = ''
as $$
declare
  r public.sync_runs;
begin
  select * into r from public.sync_runs s where s.id = p_run_id for key share;
  if not found then
    raise exception 'unknown sync run %', p_run_id using errcode = 'P0002';
  end if;
  if r.status <> 'running' then
    raise exception 'sync run % is already %', p_run_id, r.status using errcode = '55000';
  end if;
  if p_holder is not null and r.holder is distinct from p_holder then
    raise exception 'sync run % is held by %, not %', p_run_id, r.holder, p_holder using errcode = '55006',
      hint = 'the lease expired and another poller took the run over; stop';
  end if;
  return r;
end
$$;

create function public._sync_workspace_json(p public.sync_run_workspaces)
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
    'started_at', p.started_at, 'finished_at', p.finished_at)
  from public.workspaces w
  where w.id = p.workspace_id
$$;

create function public._sync_run_totals(p_run_id uuid)
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
    'sweeps_skipped', count(*) filter (where p.status = 'done' and p.sweep is distinct from 'swept'))
  from public.sync_run_workspaces p
  where p.run_id = p_run_id
$$;

create function public._sync_run_json(p_run_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'run_id', r.id, 'job', r.job, 'instance', r.instance, 'status', r.status, 'holder', r.holder,
    'resumed_count', r.resumed_count, 'started_at', r.started_at, 'heartbeat_at', r.heartbeat_at,
    'finished_at', r.finished_at, 'error', r.error, 'totals', r.totals,
    'workspaces', coalesce((
      select jsonb_agg(public._sync_workspace_json(p) order by w.bison_workspace_id)
      from public.sync_run_workspaces p
      join public.workspaces w on w.id = p.workspace_id
      where p.run_id = r.id), '[]'::jsonb))
  from public.sync_runs r
  where r.id = p_run_id
$$;

-- Close a run: unfinished workspaces fail, status from the workspace outcomes, mark set dropped, old runs of the
-- job pruned (bisonsync_settings.sync_run_retention_days, default 14).
create function public._close_sync_run(p_run_id uuid, p_error text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_job text;
  v_totals jsonb;
  v_status text;
  v_failures text;
  v_keep_days integer;
begin
  update public.sync_run_workspaces p set
    status = 'failed',
    error = coalesce(p.error, p_error, 'not finished when the run ended'),
    finished_at = now(),
    updated_at = now()
  where p.run_id = p_run_id and p.status in ('pending', 'running');

  v_totals := public._sync_run_totals(p_run_id);
  v_status := case
    when (v_totals ->> 'failed')::integer = 0 then 'completed'
    when (v_totals ->> 'done')::integer = 0 then 'failed'
    else 'partial'
  end;
  select string_agg(w.name || ': ' || coalesce(p.error, 'failed'), '; ' order by w.bison_workspace_id)
  into v_failures
  from public.sync_run_workspaces p
  join public.workspaces w on w.id = p.workspace_id
  where p.run_id = p_run_id and p.status = 'failed';

  update public.sync_runs r set
    status = v_status,
    finished_at = now(),
    heartbeat_at = now(),
    totals = v_totals,
    error = case when v_status = 'completed' then null
                 else left(coalesce(p_error || ' / ', '') || coalesce(v_failures, ''), 2000) end
  where r.id = p_run_id
  returning r.job into v_job;

  delete from public.sync_run_mailboxes m where m.run_id = p_run_id;

  select coalesce((select (s.value #>> '{}')::integer from public.bisonsync_settings s
                   where s.key = 'sync_run_retention_days'), 14)
  into v_keep_days;
  delete from public.sync_runs r
  where r.job = v_job and r.status <> 'running' and r.finished_at < now() - make_interval(days => v_keep_days);
  return v_status;
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Runs: start (or resume), heartbeat, release, finish
-- ---------------------------------------------------------------------------------------------------------------

-- Take the job's lease and start a run over the instance's active workspaces, or resume the job's unfinished
-- run (a holder that died: its lease expired). Returns {"status": "started"|"resumed"|"skipped", "run_id",
-- "holder", "held_by", "lease_expires_at", "resumed_count", "workspaces": [...]}. A run unfinished for longer
-- than p_max_resume_age_seconds is closed as stalled and a new one starts.
create function public.start_sync_run(
  p_job text,
  p_holder text,
  p_lease_seconds integer,
  p_instance text,
  p_max_resume_age_seconds integer default 21600
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- btrim, not clean_label: clean_label's E'...\v...' is a literal 'v' in PostgreSQL, so it trims the letter v
  v_job text := nullif(btrim(p_job), '');
  v_holder text := nullif(btrim(p_holder), '');
  v_instance text := lower(public.clean_label(p_instance));
  v_lease public.sync_leases;
  v_run public.sync_runs;
  v_action text;
  v_holding_run uuid;
begin
  if v_job is null or v_holder is null or v_instance is null then
    raise exception 'job, holder and instance are required' using errcode = '22023';
  end if;
  if p_lease_seconds is null or p_lease_seconds not between 1 and 86400 then
    raise exception 'lease must be 1..86400 seconds, got %', p_lease_seconds using errcode = '22023';
  end if;

  -- Single flight: a concurrent caller blocks on the conflicting row until we commit, then finds it unexpired.
  insert into public.sync_leases as l (job, holder, acquired_at, renewed_at, expires_at)
  values (v_job, v_holder, now(), now(), now() + make_interval(secs => p_lease_seconds))
  on conflict (job) do update set
    holder = excluded.holder,
    acquired_at = case when l.holder = excluded.holder then l.acquired_at else excluded.acquired_at end,
    renewed_at = excluded.renewed_at,
    expires_at = excluded.expires_at
  where l.expires_at <= now() or l.holder = excluded.holder
  returning * into v_lease;

  if not found then
    select * into v_lease from public.sync_leases l where l.job = v_job;
    select r.id into v_holding_run from public.sync_runs r where r.job = v_job and r.status = 'running';
    return jsonb_build_object('status', 'skipped', 'job', v_job, 'holder', v_holder, 'held_by', v_lease.holder,
                              'lease_expires_at', v_lease.expires_at, 'run_id', v_holding_run);
  end if;

  select * into v_run from public.sync_runs r where r.job = v_job and r.status = 'running' for update;
  if found and v_run.instance <> v_instance then
    raise exception 'job % runs for instance %, not %', v_job, v_run.instance, v_instance using errcode = '22023';
  end if;
  if found and v_run.started_at < now() - make_interval(secs => coalesce(p_max_resume_age_seconds, 21600)) then
    perform public._close_sync_run(v_run.id, 'stalled: unfinished since ' || v_run.started_at
                                              || ' (last holder ' || coalesce(v_run.holder, '?') || ')');
    v_run := null;
  end if;

  if v_run.id is not null then
    update public.sync_runs r set
      holder = v_holder,
      heartbeat_at = now(),
      resumed_count = r.resumed_count + 1
    where r.id = v_run.id
    returning * into v_run;
    -- failed workspaces get another chance, from where they stopped
    update public.sync_run_workspaces p set status = 'pending', updated_at = now()
    where p.run_id = v_run.id and p.status = 'failed';
    v_action := 'resumed';
  else
    insert into public.sync_runs (job, instance, holder) values (v_job, v_instance, v_holder) returning * into v_run;
    v_action := 'started';
  end if;

  -- the instance's active workspaces (on resume: those activated since the run started join it)
  insert into public.sync_run_workspaces (run_id, workspace_id)
  select v_run.id, w.id from public.workspaces w where w.instance = v_instance and w.active
  on conflict (run_id, workspace_id) do nothing;

  update public.sync_leases l set run_id = v_run.id where l.job = v_job;
  update public.sync_runs r set totals = public._sync_run_totals(v_run.id) where r.id = v_run.id;

  return jsonb_build_object(
    'status', v_action, 'run_id', v_run.id, 'job', v_job, 'holder', v_holder, 'held_by', v_holder,
    'lease_expires_at', v_lease.expires_at, 'resumed_count', v_run.resumed_count, 'started_at', v_run.started_at,
    'workspaces', coalesce((
      select jsonb_agg(public._sync_workspace_json(p)
                       || jsonb_build_object('cached_mailboxes', (
                            select count(*) from public.sender_emails_cache s
                            where s.workspace_id = p.workspace_id and s.deleted_at is null))
                       order by w.bison_workspace_id)
      from public.sync_run_workspaces p
      join public.workspaces w on w.id = p.workspace_id
      where p.run_id = v_run.id), '[]'::jsonb));
end
$$;

comment on function public.start_sync_run(text, text, integer, text, integer) is
  'Take the job lease (or report who holds it: status skipped) and start a run over the active workspaces of '
  'the instance, or resume the job''s unfinished run at each workspace''s next page. service_role only.';

-- Renew the lease and publish progress (sync_runs.totals). {"ok": false, "held_by"} when the lease was lost.
create function public.heartbeat_sync_run(p_run_id uuid, p_holder text, p_lease_seconds integer)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_run public.sync_runs;
  v_expires timestamptz;
  v_totals jsonb;
begin
  if p_lease_seconds is null or p_lease_seconds not between 1 and 86400 then
    raise exception 'lease must be 1..86400 seconds, got %', p_lease_seconds using errcode = '22023';
  end if;
  select * into v_run from public.sync_runs r where r.id = p_run_id;
  if not found then
    raise exception 'unknown sync run %', p_run_id using errcode = 'P0002';
  end if;
  if v_run.status = 'running' and v_run.holder = p_holder then
    update public.sync_leases l set
      renewed_at = now(),
      expires_at = now() + make_interval(secs => p_lease_seconds)
    where l.job = v_run.job and l.holder = p_holder
    returning l.expires_at into v_expires;
  end if;
  if v_expires is null then
    return jsonb_build_object('ok', false, 'run_id', p_run_id, 'status', v_run.status, 'holder', v_run.holder,
                              'held_by', (select l.holder from public.sync_leases l where l.job = v_run.job));
  end if;
  v_totals := public._sync_run_totals(p_run_id);
  update public.sync_runs r set heartbeat_at = now(), totals = v_totals where r.id = p_run_id;
  return jsonb_build_object('ok', true, 'run_id', p_run_id, 'lease_expires_at', v_expires, 'totals', v_totals);
end
$$;

-- Give the lease up without finishing the run (a poller shutting down): the next poller resumes it at once.
create function public.release_sync_lease(p_job text, p_holder text)
returns boolean
language sql
security definer
set search_path = ''
as $$
  with gone as (
    delete from public.sync_leases l where l.job = btrim(p_job) and l.holder = p_holder returning 1
  )
  select exists (select 1 from gone)
$$;

-- End the run: completed when every workspace is done, partial when some failed, failed when none succeeded
-- (unfinished workspaces count as failed). Releases the lease. Idempotent: a finished run is returned as is.
create function public.finish_sync_run(p_run_id uuid, p_holder text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_run public.sync_runs;
begin
  select * into v_run from public.sync_runs r where r.id = p_run_id for update;
  if not found then
    raise exception 'unknown sync run %', p_run_id using errcode = 'P0002';
  end if;
  if v_run.status <> 'running' then
    return public._sync_run_json(p_run_id) || jsonb_build_object('already_finished', true);
  end if;
  if v_run.holder is distinct from p_holder then
    raise exception 'sync run % is held by %, not %', p_run_id, v_run.holder, p_holder using errcode = '55006';
  end if;
  perform public._close_sync_run(p_run_id, null);
  delete from public.sync_leases l where l.job = v_run.job and l.holder = p_holder;
  return public._sync_run_json(p_run_id) || jsonb_build_object('already_finished', false);
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Pages and workspaces
-- ---------------------------------------------------------------------------------------------------------------

-- One call per page, one transaction: upsert the page's mailboxes (only rows that change are written), apply
-- their statuses by the ordering rule with the page's fetch time as event time, record transitions (and
-- undeletes) in mailbox_status_history, add them to the run's mark set, and advance the workspace's cursor.
-- p_rows: [{id, email, name, status, type, daily_limit, *_count, warmup_enabled, tags, email_provider,
-- provider_tag, reseller, reseller_tag, domain}] (status null = not a known status: not applied). Pages are
-- committed in order: p_page = pages_done + 1 advances the cursor; p_page <= pages_done (a re-sent page) upserts
-- again but counts nothing and never moves the cursor back; a gap raises 22023.
create function public.sync_mailbox_page(
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
  perform 1 from public.sender_emails_cache s
  where s.workspace_id = p_workspace_id
    and s.bison_sender_id in (select (e ->> 'id')::bigint from jsonb_array_elements(p_rows) e)
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
    join src on src.id = s.bison_sender_id
    where s.workspace_id = p_workspace_id
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

comment on function public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, timestamptz, integer, text) is
  'One page of GET /api/sender-emails for one workspace of a running sync, in one transaction: upsert (rows that '
  'change only), statuses by mailbox_status_wins with p_observed_at (fetch time) as event time, history, mark '
  'set, cursor. Idempotent for a re-sent page. service_role only.';

-- End one workspace of a run. p_ok (its listing completed: every page committed, next_page_url null): sweep the
-- mailboxes the listing no longer has (deleted_at = now(), history 'Deleted'), then recompute price and
-- volume_per_account with n = live mailboxes per domain in the whole workspace. The sweep is skipped when the
-- listing changed while it was paged (meta.total differed between pages); a listing shorter than its own
-- meta.total (e.g. an empty page before the end) fails the workspace. Not p_ok: failed, nothing swept.
create function public.finish_workspace_sync(
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

  if v_prog.listing_total is not null and v_seen < v_prog.listing_total and not v_prog.listing_changed then
    update public.sync_run_workspaces p set
      status = 'failed', mailboxes_seen = v_seen, sweep = null, finished_at = now(), updated_at = now(),
      error = 'listing incomplete: ' || v_seen || ' of ' || v_prog.listing_total
              || ' mailboxes listed (an empty page or a missing link ended it early); nothing swept'
    where p.run_id = p_run_id and p.workspace_id = p_workspace_id
    returning * into v_prog;
    return public._sync_workspace_json(v_prog) || jsonb_build_object('already_finished', false);
  end if;

  if v_prog.listing_changed then
    v_sweep := 'skipped: the listing changed while it was paged; the next complete run sweeps';
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
    error = null, finished_at = now(), updated_at = now()
  where p.run_id = p_run_id and p.workspace_id = p_workspace_id
  returning * into v_prog;
  return public._sync_workspace_json(v_prog) || jsonb_build_object('already_finished', false);
end
$$;

comment on function public.finish_workspace_sync(uuid, uuid, boolean, text, text) is
  'End one workspace of a running sync: p_ok sweeps mailboxes not listed in this run (only after the complete '
  'listing) and reprices the workspace (whole-workspace per-domain n); otherwise failed, nothing swept. '
  'service_role only.';

-- Names (never values) of the env vars holding workspace-scoped Email Bison keys, for the instance's workspaces.
create function public.workspace_api_key_refs(p_instance text)
returns table (workspace_id uuid, bison_workspace_id bigint, bison_api_key_ref text)
language sql
stable
security definer
set search_path = ''
as $$
  select w.id, w.bison_workspace_id, c.bison_api_key_ref
  from public.workspaces w
  join public.workspace_credentials c on c.workspace_id = w.id
  where w.instance = lower(public.clean_label(p_instance)) and c.bison_api_key_ref is not null
  order by w.bison_workspace_id
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Freshness per workspace (security_invoker: members see their workspaces)
-- ---------------------------------------------------------------------------------------------------------------

create view public.workspace_mailbox_sync
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
  coalesce(latest.finished_at, latest.updated_at) as last_attempt_at
from public.workspaces w
left join lateral (
  select p.finished_at, p.run_id, p.mailboxes_seen
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
  'Per workspace: when its mailboxes were last synced completely (last_synced_at) and how the latest attempt '
  'ended. The sync writes only changed mailbox rows, so sender_emails_cache.last_synced_at is the time of the '
  'last change, not of the last poll.';

-- ---------------------------------------------------------------------------------------------------------------
-- Settings, RLS, grants, realtime
-- ---------------------------------------------------------------------------------------------------------------

insert into public.bisonsync_settings (key, value) values ('sync_run_retention_days', '14')
on conflict (key) do nothing;

alter table public.sync_leases enable row level security;
alter table public.sync_runs enable row level security;
alter table public.sync_run_workspaces enable row level security;
alter table public.sync_run_mailboxes enable row level security;

create policy sync_runs_instance_member_read on public.sync_runs
  for select to authenticated using (public.is_instance_member(instance));
create policy sync_run_workspaces_member_read on public.sync_run_workspaces
  for select to authenticated using (public.is_workspace_member(workspace_id));
-- sync_leases, sync_run_mailboxes: no policy, no grant -> service_role only.

revoke all on table public.sync_leases, public.sync_runs, public.sync_run_workspaces, public.sync_run_mailboxes,
  public.workspace_mailbox_sync from public, anon, authenticated;
grant all on table public.sync_leases, public.sync_runs, public.sync_run_workspaces, public.sync_run_mailboxes
  to service_role;
grant select on table public.sync_runs, public.sync_run_workspaces, public.workspace_mailbox_sync
  to authenticated, service_role;

revoke all on function public._sync_run_for_write(uuid, text), public._sync_workspace_json(public.sync_run_workspaces),
  public._sync_run_totals(uuid), public._sync_run_json(uuid), public._close_sync_run(uuid, text)
  from public, anon, authenticated, service_role;
revoke all on function
  public.start_sync_run(text, text, integer, text, integer),
  public.heartbeat_sync_run(uuid, text, integer),
  public.release_sync_lease(text, text),
  public.finish_sync_run(uuid, text),
  public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, timestamptz, integer, text),
  public.finish_workspace_sync(uuid, uuid, boolean, text, text),
  public.workspace_api_key_refs(text)
  from public, anon, authenticated;
grant execute on function
  public.start_sync_run(text, text, integer, text, integer),
  public.heartbeat_sync_run(uuid, text, integer),
  public.release_sync_lease(text, text),
  public.finish_sync_run(uuid, text),
  public.sync_mailbox_page(uuid, uuid, integer, text, jsonb, timestamptz, integer, text),
  public.finish_workspace_sync(uuid, uuid, boolean, text, text),
  public.workspace_api_key_refs(text)
  to service_role;
revoke all on function public.mailbox_price(text, text, integer), public.mailbox_daily_volume(text, text, integer)
  from public, anon;
grant execute on function public.mailbox_price(text, text, integer), public.mailbox_daily_volume(text, text, integer)
  to authenticated, service_role;

alter table public.sync_runs replica identity full;
alter table public.sync_run_workspaces replica identity full;
alter publication supabase_realtime add table public.sync_runs, public.sync_run_workspaces;
