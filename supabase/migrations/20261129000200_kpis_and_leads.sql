-- bisonsync 2/4: KPI counters bucketed by workspace-local day (month-to-date derived, no reset job); leads.

create table public.client_metrics_daily (
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  -- the WORKSPACE-LOCAL date of the events counted here: (event_at at time zone workspaces.timezone)::date
  day          date not null,
  emails_sent  integer not null default 0 check (emails_sent >= 0),
  replies      integer not null default 0 check (replies >= 0),
  interested   integer not null default 0 check (interested >= 0),
  bounced      integer not null default 0 check (bounced >= 0),
  unsubscribed integer not null default 0 check (unsubscribed >= 0),
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (workspace_id, day)
);

comment on table public.client_metrics_daily is
  'Webhook KPI counters, one row per workspace and workspace-local day. Written only through increment_metric '
  '(atomic insert .. on conflict do update col = col + n). Month-to-date is derived: see client_metrics.';

-- Canonical column for a metric name, accepting the predecessor's *_mtd names. Unknown -> 22023 (HTTP 400).
create function public._metric_column(p_metric_name text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  case lower(public.clean_label(p_metric_name))
    when 'emails_sent', 'emails_sent_mtd' then return 'emails_sent';
    when 'replies', 'replies_mtd' then return 'replies';
    when 'interested', 'interested_mtd' then return 'interested';
    when 'bounced', 'bounces_mtd' then return 'bounced';
    when 'unsubscribed', 'unsubscribes_mtd' then return 'unsubscribed';
    else
      raise exception 'unknown metric "%": accepted metrics are emails_sent, replies, interested, bounced, '
                      'unsubscribed (or the predecessor''s emails_sent_mtd, replies_mtd, interested_mtd, '
                      'bounces_mtd, unsubscribes_mtd)', coalesce(p_metric_name, '')
        using errcode = '22023';
  end case;
end
$$;

-- Atomic increment of one counter of the workspace-local day of p_at. Returns {"metric","day","value"}.
create function public._increment_metric(
  p_workspace_id uuid,
  p_metric_name text,
  p_increment_by integer,
  p_at timestamptz
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_col text := public._metric_column(p_metric_name);
  v_by integer := coalesce(p_increment_by, 1);
  v_day date;
  v_value bigint;
begin
  select (coalesce(p_at, pg_catalog.now()) at time zone w.timezone)::date into v_day
  from public.workspaces w where w.id = p_workspace_id;
  if not found then
    raise exception 'unknown workspace id %', p_workspace_id using errcode = 'P0002';
  end if;

  -- One statement: the row lock taken by ON CONFLICT serialises concurrent increments (no read-modify-write).
  insert into public.client_metrics_daily as d
    (workspace_id, day, emails_sent, replies, interested, bounced, unsubscribed)
  values (
    p_workspace_id, v_day,
    case when v_col = 'emails_sent' then v_by else 0 end,
    case when v_col = 'replies' then v_by else 0 end,
    case when v_col = 'interested' then v_by else 0 end,
    case when v_col = 'bounced' then v_by else 0 end,
    case when v_col = 'unsubscribed' then v_by else 0 end
  )
  on conflict (workspace_id, day) do update set
    emails_sent  = d.emails_sent + excluded.emails_sent,
    replies      = d.replies + excluded.replies,
    interested   = d.interested + excluded.interested,
    bounced      = d.bounced + excluded.bounced,
    unsubscribed = d.unsubscribed + excluded.unsubscribed,
    updated_at   = pg_catalog.now()
  returning case v_col
              when 'emails_sent' then d.emails_sent
              when 'replies' then d.replies
              when 'interested' then d.interested
              when 'bounced' then d.bounced
              else d.unsubscribed
            end
  into v_value;
  return jsonb_build_object('metric', v_col, 'day', v_day, 'value', v_value);
end
$$;

create function public.increment_metric(
  p_workspace_id uuid,
  p_metric_name text,
  p_increment_by integer default 1,
  p_at timestamptz default now()
)
returns bigint
language sql
security definer
set search_path = ''
as $$
  select (public._increment_metric(p_workspace_id, p_metric_name, p_increment_by, p_at) ->> 'value')::bigint
$$;

comment on function public.increment_metric(uuid, text, integer, timestamptz) is
  'Atomically add p_increment_by to a KPI counter of the workspace-local day of p_at; returns that day''s new '
  'value. Unknown metric -> 22023; unknown workspace -> P0002. service_role only.';

-- Predecessor-compatible overload (PostgREST picks it by the argument name p_workspace_name).
create function public.increment_metric(
  p_workspace_name text,
  p_metric_name text,
  p_increment_by integer default 1
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public._metric_column(p_metric_name);  -- validate the metric before resolving the name
  return (public._increment_metric(public._workspace_id_by_name(p_workspace_name), p_metric_name,
                                   p_increment_by, pg_catalog.now()) ->> 'value')::bigint;
end
$$;

comment on function public.increment_metric(text, text, integer) is
  'Predecessor-compatible: resolves the trimmed workspace name (current, then previous names); unknown -> P0002, '
  'ambiguous -> P0003. Counts at now(). service_role only.';

-- Month-to-date per workspace as of a moment, in each workspace's own time zone. Every workspace gets a row
-- (zeros when it had no events this month). SECURITY INVOKER: RLS of the caller applies.
create function public.client_metrics_mtd(p_as_of timestamptz default now())
returns table (
  workspace_id uuid,
  workspace_name text,
  timezone text,
  metric_date date,
  month_start date,
  emails_sent_mtd bigint,
  replies_mtd bigint,
  positive_replies_mtd bigint,
  bounced_mtd bigint,
  unsubscribed_mtd bigint,
  emails_sent bigint,
  replies bigint,
  positive_replies bigint,
  bounced bigint,
  unsubscribed bigint,
  monthly_kpi_target integer,
  monthly_sending_target integer,
  updated_at timestamptz
)
language sql
stable
set search_path = ''
as $$
  select
    w.id,
    w.name,
    w.timezone,
    l.local_day,
    l.month_start,
    coalesce(sum(d.emails_sent), 0)::bigint,
    coalesce(sum(d.replies), 0)::bigint,
    coalesce(sum(d.interested), 0)::bigint,
    coalesce(sum(d.bounced), 0)::bigint,
    coalesce(sum(d.unsubscribed), 0)::bigint,
    coalesce(sum(d.emails_sent) filter (where d.day = l.local_day), 0)::bigint,
    coalesce(sum(d.replies) filter (where d.day = l.local_day), 0)::bigint,
    coalesce(sum(d.interested) filter (where d.day = l.local_day), 0)::bigint,
    coalesce(sum(d.bounced) filter (where d.day = l.local_day), 0)::bigint,
    coalesce(sum(d.unsubscribed) filter (where d.day = l.local_day), 0)::bigint,
    w.monthly_kpi_target,
    w.monthly_sending_target,
    max(d.updated_at)
  from public.workspaces w
  cross join lateral (
    select (p_as_of at time zone w.timezone)::date as local_day,
           date_trunc('month', (p_as_of at time zone w.timezone))::date as month_start
  ) l
  left join public.client_metrics_daily d
    on d.workspace_id = w.id and d.day between l.month_start and l.local_day
  group by w.id, w.name, w.timezone, l.local_day, l.month_start, w.monthly_kpi_target, w.monthly_sending_target
$$;

comment on function public.client_metrics_mtd(timestamptz) is
  'Month-to-date KPI counters per workspace as of p_as_of, month and day taken in the workspace''s time zone; '
  'workspaces without events get zeros. Respects RLS of the caller.';

-- The dashboard view: one 'mtd' row per workspace (as of now) and one 'daily' row per workspace-local day with a
-- running month-to-date. `select workspace_name, emails_sent_mtd, positive_replies_mtd, replies_mtd, bounced_mtd,
-- unsubscribed_mtd from client_metrics where metric_type = 'mtd'` returns this month's counts.
create view public.client_metrics
with (security_invoker = true)
as
select
  m.workspace_id,
  m.workspace_name,
  'mtd'::text as metric_type,
  m.metric_date,
  m.emails_sent_mtd,
  m.positive_replies_mtd,
  m.replies_mtd,
  m.bounced_mtd,
  m.unsubscribed_mtd,
  m.emails_sent,
  m.replies,
  m.positive_replies,
  m.bounced,
  m.unsubscribed,
  m.monthly_kpi_target,
  m.monthly_sending_target,
  m.timezone,
  m.updated_at
from public.client_metrics_mtd(now()) m
union all
select
  d.workspace_id,
  w.name,
  'daily'::text,
  d.day,
  sum(d.emails_sent) over mtd,
  sum(d.interested) over mtd,
  sum(d.replies) over mtd,
  sum(d.bounced) over mtd,
  sum(d.unsubscribed) over mtd,
  d.emails_sent::bigint,
  d.replies::bigint,
  d.interested::bigint,
  d.bounced::bigint,
  d.unsubscribed::bigint,
  w.monthly_kpi_target,
  w.monthly_sending_target,
  w.timezone,
  d.updated_at
from public.client_metrics_daily d
join public.workspaces w on w.id = d.workspace_id
window mtd as (partition by d.workspace_id, date_trunc('month', d.day::timestamp) order by d.day);

comment on view public.client_metrics is
  'KPI dashboard rows: metric_type ''mtd'' (one per workspace, this month in its time zone, zeros when idle) and '
  '''daily'' (one per workspace-local day; *_mtd columns are the running month-to-date up to that day). '
  'positive_replies = interested. security_invoker: RLS of the caller applies.';

-- ---------------------------------------------------------------------------------------------------------------
-- Leads: one row per (workspace, lead); replies: one row per reply (live replies board)
-- ---------------------------------------------------------------------------------------------------------------

-- Pipeline rank: a lead's stage never moves to a lower rank. Unknown stage -> null.
create function public.pipeline_stage_rank(p_stage text)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case p_stage
    when 'new' then 0
    when 'replied' then 1
    when 'interested' then 2
    when 'quoting' then 3
    when 'follow-up' then 3
    when 'nurture' then 3
    when 'won' then 4
    when 'lost' then 4
    when 'unsubscribed' then 4
    when 'bounced' then 4
  end
$$;

create table public.client_leads (
  id               uuid primary key default gen_random_uuid(),
  workspace_id     uuid not null references public.workspaces (id) on delete cascade,
  bison_lead_id    bigint,
  lead_email       text check (lead_email = lower(public.clean_label(lead_email))),
  first_name       text,
  last_name        text,
  title            text,
  company          text,
  phone            text,
  address          text,
  city             text,
  state            text,
  zip              text,
  renewal_date     text,
  birthday         text,
  -- Email Bison's raw [{name, value}] array, merged across events (a newer non-empty value wins per name)
  custom_variables jsonb not null default '[]' check (jsonb_typeof(custom_variables) = 'array'),
  lead_status      text,
  pipeline_stage   text not null default 'new' check (public.pipeline_stage_rank(pipeline_stage) is not null),
  interested       boolean not null default false,
  interested_at    timestamptz,
  notes            text,
  bison_reply_id   bigint,
  bison_reply_uuid text,
  last_reply_at    timestamptz,
  campaign_name    text,
  sender_email     text,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint client_leads_identity_check check (bison_lead_id is not null or lead_email is not null),
  constraint client_leads_workspace_email_key unique (workspace_id, lead_email)
);

comment on table public.client_leads is
  'Lead pipeline, one row per workspace and lead. Matched by bison_lead_id, then email. pipeline_stage never '
  'moves to a lower rank, interested_at is set once (trigger-enforced), notes are never wiped by an upsert.';

create unique index client_leads_workspace_bison_lead_key
  on public.client_leads (workspace_id, bison_lead_id) where bison_lead_id is not null;
create index client_leads_workspace_stage_idx on public.client_leads (workspace_id, pipeline_stage);
create index client_leads_workspace_interested_at_idx
  on public.client_leads (workspace_id, interested_at desc) where interested_at is not null;

-- Guard for every write, including direct UPDATEs that bypass upsert_client_lead:
--   * interested_at, once set, never changes; it is stamped when `interested` first becomes true;
--   * pipeline_stage never moves to a lower rank, unless the transaction sets
--     `bisonsync.allow_stage_regression = on` (deliberate manual correction from the SQL editor).
create function public._client_leads_guard()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.lead_email := lower(public.clean_label(new.lead_email));
  if tg_op = 'UPDATE' then
    if old.interested_at is not null then
      new.interested_at := old.interested_at;
    end if;
    if public.pipeline_stage_rank(new.pipeline_stage) < public.pipeline_stage_rank(old.pipeline_stage)
       and coalesce(current_setting('bisonsync.allow_stage_regression', true), '') <> 'on' then
      new.pipeline_stage := old.pipeline_stage;
    end if;
    new.updated_at := pg_catalog.now();
  end if;
  if new.interested and new.interested_at is null then
    new.interested_at := pg_catalog.now();
  end if;
  return new;
end
$$;

create trigger client_leads_guard
  before insert or update on public.client_leads
  for each row execute function public._client_leads_guard();

create table public.lead_replies (
  id               uuid primary key default gen_random_uuid(),
  workspace_id     uuid not null references public.workspaces (id) on delete cascade,
  lead_id          uuid references public.client_leads (id) on delete set null,
  bison_reply_id   bigint,
  bison_reply_uuid text,
  -- dedupe key as the predecessor used it: the reply uuid, else the numeric id
  reply_key        text generated always as (coalesce(bison_reply_uuid, bison_reply_id::text)) stored,
  bison_lead_id    bigint,
  lead_email       text,
  first_name       text,
  last_name        text,
  from_name        text,
  from_email       text,
  subject          text,
  reply_text       text,
  reply_date       timestamptz not null,
  is_interested    boolean not null default false,
  automated_reply  boolean,
  campaign_name    text,
  sender_email     text,
  sender_email_id  bigint,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint lead_replies_key_check check (bison_reply_uuid is not null or bison_reply_id is not null)
);

create unique index lead_replies_workspace_reply_key on public.lead_replies (workspace_id, reply_key);
create index lead_replies_workspace_date_idx on public.lead_replies (workspace_id, reply_date desc);
create index lead_replies_lead_idx on public.lead_replies (lead_id);

create trigger lead_replies_updated_at
  before update on public.lead_replies
  for each row execute function public._set_updated_at();

create function public._try_bigint(p_value text)
returns bigint
language plpgsql
immutable
set search_path = ''
as $$
begin
  return public.clean_label(p_value)::bigint;
exception when others then
  return null;
end
$$;

create function public._try_timestamptz(p_value text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  return public.clean_label(p_value)::timestamptz;
exception when others then
  return null;
end
$$;

-- The first non-empty value among custom variables whose name matches one of p_aliases (lower-case, in order of
-- preference), compared case-insensitively and trimmed. 'N/A' counts as empty (the predecessor wrote it).
create function public._custom_variable(p_custom_variables jsonb, p_aliases text[])
returns text
language sql
immutable
set search_path = ''
as $$
  select x.v
  from (
    select public.clean_label(e.value ->> 'value') as v, a.ord, e.ord as pos
    from unnest(p_aliases) with ordinality as a (alias, ord)
    join jsonb_array_elements(
           case when jsonb_typeof(p_custom_variables) = 'array' then p_custom_variables else '[]'::jsonb end
         ) with ordinality as e (value, ord)
      on jsonb_typeof(e.value) = 'object'
     and lower(public.clean_label(e.value ->> 'name')) = a.alias
  ) x
  where x.v is not null and lower(x.v) <> 'n/a'
  order by x.ord, x.pos
  limit 1
$$;

-- Merge Email Bison custom variables: existing entries keep their position; an incoming entry with the same name
-- (case-insensitive, trimmed) and a non-empty value replaces the old one; new names are appended.
create function public._merge_custom_variables(p_old jsonb, p_new jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  with o as (
    select e.value, e.ord, lower(public.clean_label(e.value ->> 'name')) as k
    from jsonb_array_elements(case when jsonb_typeof(p_old) = 'array' then p_old else '[]'::jsonb end)
         with ordinality as e (value, ord)
  ),
  n as (
    select distinct on (k) e.value, e.ord, lower(public.clean_label(e.value ->> 'name')) as k
    from jsonb_array_elements(case when jsonb_typeof(p_new) = 'array' then p_new else '[]'::jsonb end)
         with ordinality as e (value, ord)
    where jsonb_typeof(e.value) = 'object'
      and public.clean_label(e.value ->> 'name') is not null
      and public.clean_label(e.value ->> 'value') is not null
    order by k, e.ord desc
  )
  select coalesce(jsonb_agg(m.value order by m.grp, m.ord), '[]'::jsonb)
  from (
    select coalesce(n.value, o.value) as value, 0 as grp, o.ord
    from o left join n on n.k = o.k
    union all
    select n.value, 1, n.ord
    from n
    where not exists (select 1 from o where o.k = n.k)
  ) m
$$;

-- The fixed `safeUpsertClientLead`. Matches by (workspace, bison lead id), then (workspace, email); stage only
-- moves up in rank; notes never wiped; interested_at set once; custom variables merged and the well-known ones
-- extracted into columns. p_create = false only updates an existing lead (bounces, unsubscribes).
-- Returns {"lead_id", "action": created|updated|not_found, "stage", "previous_stage"}.
create function public._upsert_client_lead(
  p_workspace_id uuid,
  p_lead jsonb,
  p_stage text,
  p_at timestamptz,
  p_reply jsonb,
  p_campaign jsonb,
  p_sender_email jsonb,
  p_notes text,
  p_create boolean
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_lead jsonb := case when jsonb_typeof(p_lead) = 'object' then p_lead else '{}'::jsonb end;
  v_bison_id bigint := public._try_bigint(v_lead ->> 'id');
  v_email text := lower(public.clean_label(v_lead ->> 'email'));
  v_stage text := lower(public.clean_label(p_stage));
  v_at timestamptz := coalesce(p_at, pg_catalog.now());
  v_reply_at timestamptz;
  v_cv jsonb;
  v_id uuid;
  r public.client_leads;
  n public.client_leads;
  v_attempt integer := 0;
begin
  if v_stage is not null and public.pipeline_stage_rank(v_stage) is null then
    raise exception 'unknown pipeline stage "%"', p_stage using errcode = '22023',
      detail = 'stages: new, replied, interested, quoting, follow-up, nurture, won, lost, unsubscribed, bounced';
  end if;
  if v_bison_id is null and v_email is null then
    raise exception 'lead has neither id nor email (data.lead.id / data.lead.email)' using errcode = '22023';
  end if;
  if jsonb_typeof(p_reply) = 'object' then
    v_reply_at := coalesce(public._try_timestamptz(p_reply ->> 'date_received'), v_at);
  end if;

  loop
    v_attempt := v_attempt + 1;
    r := null;
    if v_bison_id is not null then
      select * into r from public.client_leads l
      where l.workspace_id = p_workspace_id and l.bison_lead_id = v_bison_id
      for no key update;
    end if;
    if r.id is null and v_email is not null then
      select * into r from public.client_leads l
      where l.workspace_id = p_workspace_id and l.lead_email = v_email
      for no key update;
    end if;
    if r.id is null and not p_create then
      return jsonb_build_object('lead_id', null, 'action', 'not_found');
    end if;

    n := r;
    if r.id is null then
      n.id := gen_random_uuid();
      n.workspace_id := p_workspace_id;
      n.bison_lead_id := v_bison_id;
      n.lead_email := v_email;
      n.custom_variables := '[]'::jsonb;
      n.pipeline_stage := 'new';
      n.interested := false;
      n.created_at := pg_catalog.now();
    else
      -- only fill identity gaps; never steal an identity another row of this workspace holds
      if n.bison_lead_id is null and v_bison_id is not null then
        n.bison_lead_id := v_bison_id;  -- no row holds it: the id lookup above found none
      end if;
      if n.lead_email is null and v_email is not null and not exists (
        select 1 from public.client_leads l where l.workspace_id = p_workspace_id and l.lead_email = v_email
      ) then
        n.lead_email := v_email;
      end if;
    end if;

    n.first_name := coalesce(public.clean_label(v_lead ->> 'first_name'), n.first_name);
    n.last_name := coalesce(public.clean_label(v_lead ->> 'last_name'), n.last_name);
    n.title := coalesce(public.clean_label(v_lead ->> 'title'), n.title);
    n.company := coalesce(public.clean_label(v_lead ->> 'company'), n.company);
    n.lead_status := coalesce(public.clean_label(v_lead ->> 'status'), n.lead_status);

    v_cv := public._merge_custom_variables(n.custom_variables, v_lead -> 'custom_variables');
    n.custom_variables := v_cv;
    n.phone := coalesce(
      public._custom_variable(v_cv, array['phone number', 'cell phone', 'cellphone', 'company phone', 'phone',
                                          'mobile', 'cell', 'phone_number']),
      public.clean_label(v_lead ->> 'phone'), n.phone);
    n.address := coalesce(
      public._custom_variable(v_cv, array['street address', 'address', 'street', 'address1', 'address_1',
                                          'mailing address', 'home address']), n.address);
    n.city := coalesce(public._custom_variable(v_cv, array['city', 'town']), n.city);
    n.state := coalesce(public._custom_variable(v_cv, array['state', 'province', 'region']), n.state);
    n.zip := coalesce(
      public._custom_variable(v_cv, array['zip', 'zip code', 'zipcode', 'zip_code', 'postal code', 'postal_code',
                                          'postcode']), n.zip);
    n.renewal_date := coalesce(
      public._custom_variable(v_cv, array['renewal date', 'renewal_date', 'renewal', 'policy renewal date',
                                          'expiration date', 'x-date']), n.renewal_date);
    n.birthday := coalesce(
      public._custom_variable(v_cv, array['date of birth', 'birthday', 'birth date', 'birthdate', 'dob',
                                          'date_of_birth']), n.birthday);

    if v_stage is not null
       and public.pipeline_stage_rank(v_stage) > public.pipeline_stage_rank(n.pipeline_stage) then
      n.pipeline_stage := v_stage;
    end if;
    if v_stage = 'interested' then
      n.interested := true;
      n.interested_at := coalesce(n.interested_at, v_at);
    end if;
    if public.clean_label(p_notes) is not null then
      n.notes := p_notes;
    end if;
    if v_reply_at is not null and (n.last_reply_at is null or v_reply_at >= n.last_reply_at) then
      n.last_reply_at := v_reply_at;
      n.bison_reply_id := coalesce(public._try_bigint(p_reply ->> 'id'), n.bison_reply_id);
      n.bison_reply_uuid := coalesce(public.clean_label(p_reply ->> 'uuid'), n.bison_reply_uuid);
    end if;
    n.campaign_name := coalesce(public.clean_label(p_campaign ->> 'name'), n.campaign_name);
    n.sender_email := coalesce(lower(public.clean_label(p_sender_email ->> 'email')), n.sender_email);
    n.updated_at := pg_catalog.now();

    if r.id is not null then
      update public.client_leads l set
        bison_lead_id = n.bison_lead_id, lead_email = n.lead_email, first_name = n.first_name,
        last_name = n.last_name, title = n.title, company = n.company, phone = n.phone, address = n.address,
        city = n.city, state = n.state, zip = n.zip, renewal_date = n.renewal_date, birthday = n.birthday,
        custom_variables = n.custom_variables, lead_status = n.lead_status, pipeline_stage = n.pipeline_stage,
        interested = n.interested, interested_at = n.interested_at, notes = n.notes,
        bison_reply_id = n.bison_reply_id, bison_reply_uuid = n.bison_reply_uuid, last_reply_at = n.last_reply_at,
        campaign_name = n.campaign_name, sender_email = n.sender_email
      where l.id = r.id;
      return jsonb_build_object('lead_id', r.id, 'action', 'updated', 'stage', n.pipeline_stage,
                                'previous_stage', r.pipeline_stage);
    end if;

    insert into public.client_leads select n.* on conflict do nothing returning id into v_id;
    if v_id is not null then
      return jsonb_build_object('lead_id', v_id, 'action', 'created', 'stage', n.pipeline_stage,
                                'previous_stage', null);
    end if;
    -- a concurrent transaction created the lead between our lookup and insert: look it up again and merge
    if v_attempt >= 3 then
      raise exception 'could not upsert lead % / % in workspace %', v_bison_id, v_email, p_workspace_id
        using errcode = '40001';
    end if;
  end loop;
end
$$;

create function public.upsert_client_lead(
  p_workspace_id uuid,
  p_lead jsonb,
  p_stage text default null,
  p_at timestamptz default now(),
  p_reply jsonb default null,
  p_campaign jsonb default null,
  p_sender_email jsonb default null,
  p_notes text default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.workspaces w where w.id = p_workspace_id) then
    raise exception 'unknown workspace id %', p_workspace_id using errcode = 'P0002';
  end if;
  return (public._upsert_client_lead(p_workspace_id, p_lead, p_stage, p_at, p_reply, p_campaign,
                                     p_sender_email, p_notes, true) ->> 'lead_id')::uuid;
end
$$;

comment on function public.upsert_client_lead(uuid, jsonb, text, timestamptz, jsonb, jsonb, jsonb, text) is
  'Create or merge a lead (Email Bison data.lead object): match by bison id then email, stage monotonic by rank, '
  'notes never wiped, interested_at once, custom variables merged. p_stage null = keep. service_role only.';

-- One row per reply (lead_replied / lead_interested); interest is sticky. Returns {"reply_id","action"} or
-- {"action":"skipped"} when the reply has neither uuid nor id.
create function public._upsert_lead_reply(
  p_workspace_id uuid,
  p_lead_id uuid,
  p_lead jsonb,
  p_reply jsonb,
  p_campaign jsonb,
  p_sender_email jsonb,
  p_interested boolean,
  p_at timestamptz
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_reply_id bigint := public._try_bigint(p_reply ->> 'id');
  v_reply_uuid text := public.clean_label(p_reply ->> 'uuid');
  v_id uuid;
  v_inserted boolean;
begin
  if jsonb_typeof(p_reply) <> 'object' or (v_reply_id is null and v_reply_uuid is null) then
    return jsonb_build_object('action', 'skipped');
  end if;
  insert into public.lead_replies as lr (
    workspace_id, lead_id, bison_reply_id, bison_reply_uuid, bison_lead_id, lead_email, first_name, last_name,
    from_name, from_email, subject, reply_text, reply_date, is_interested, automated_reply, campaign_name,
    sender_email, sender_email_id
  ) values (
    p_workspace_id, p_lead_id, v_reply_id, v_reply_uuid, public._try_bigint(p_lead ->> 'id'),
    lower(public.clean_label(p_lead ->> 'email')),
    public.clean_label(p_lead ->> 'first_name'), public.clean_label(p_lead ->> 'last_name'),
    public.clean_label(p_reply ->> 'from_name'), lower(public.clean_label(p_reply ->> 'from_email_address')),
    public.clean_label(p_reply ->> 'email_subject'),
    coalesce(public.clean_label(p_reply ->> 'text_body'), public.clean_label(p_reply ->> 'body_plain'),
             public.clean_label(p_reply ->> 'text')),
    coalesce(public._try_timestamptz(p_reply ->> 'date_received'), p_at, pg_catalog.now()),
    coalesce(p_interested, false) or coalesce((p_reply ->> 'interested') = 'true', false),
    case when jsonb_typeof(p_reply -> 'automated_reply') = 'boolean' then (p_reply ->> 'automated_reply')::boolean end,
    public.clean_label(p_campaign ->> 'name'),
    lower(public.clean_label(p_sender_email ->> 'email')),
    public._try_bigint(p_sender_email ->> 'id')
  )
  on conflict (workspace_id, reply_key) do update set
    lead_id         = coalesce(lr.lead_id, excluded.lead_id),
    bison_reply_id  = coalesce(lr.bison_reply_id, excluded.bison_reply_id),
    bison_lead_id   = coalesce(lr.bison_lead_id, excluded.bison_lead_id),
    lead_email      = coalesce(lr.lead_email, excluded.lead_email),
    first_name      = coalesce(lr.first_name, excluded.first_name),
    last_name       = coalesce(lr.last_name, excluded.last_name),
    from_name       = coalesce(lr.from_name, excluded.from_name),
    from_email      = coalesce(lr.from_email, excluded.from_email),
    subject         = coalesce(lr.subject, excluded.subject),
    reply_text      = coalesce(lr.reply_text, excluded.reply_text),
    is_interested   = lr.is_interested or excluded.is_interested,
    automated_reply = coalesce(lr.automated_reply, excluded.automated_reply),
    campaign_name   = coalesce(lr.campaign_name, excluded.campaign_name),
    sender_email    = coalesce(lr.sender_email, excluded.sender_email),
    sender_email_id = coalesce(lr.sender_email_id, excluded.sender_email_id)
  returning lr.id, (lr.xmax = 0) into v_id, v_inserted;
  return jsonb_build_object('reply_id', v_id, 'action', case when v_inserted then 'inserted' else 'updated' end);
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- RLS and grants
-- ---------------------------------------------------------------------------------------------------------------

alter table public.client_metrics_daily enable row level security;
create policy client_metrics_daily_member_read on public.client_metrics_daily
  for select to authenticated using (public.is_workspace_member(workspace_id));

revoke all on table public.client_metrics_daily, public.client_metrics from public, anon, authenticated;
grant all on table public.client_metrics_daily to service_role;
grant select on table public.client_metrics to service_role;
grant select on table public.client_metrics_daily, public.client_metrics to authenticated;

revoke all on function public._metric_column(text), public._increment_metric(uuid, text, integer, timestamptz)
  from public, anon, authenticated, service_role;
revoke all on function public.increment_metric(uuid, text, integer, timestamptz),
  public.increment_metric(text, text, integer) from public, anon, authenticated;
grant execute on function public.increment_metric(uuid, text, integer, timestamptz),
  public.increment_metric(text, text, integer) to service_role;
revoke all on function public.client_metrics_mtd(timestamptz) from public, anon;
grant execute on function public.client_metrics_mtd(timestamptz) to authenticated, service_role;

alter table public.client_leads enable row level security;
alter table public.lead_replies enable row level security;
create policy client_leads_member_read on public.client_leads
  for select to authenticated using (public.is_workspace_member(workspace_id));
create policy lead_replies_member_read on public.lead_replies
  for select to authenticated using (public.is_workspace_member(workspace_id));

revoke all on table public.client_leads, public.lead_replies from public, anon, authenticated;
grant all on table public.client_leads, public.lead_replies to service_role;
grant select on table public.client_leads, public.lead_replies to authenticated;

revoke all on function public._client_leads_guard(), public._try_bigint(text), public._try_timestamptz(text),
  public._custom_variable(jsonb, text[]), public._merge_custom_variables(jsonb, jsonb),
  public._upsert_client_lead(uuid, jsonb, text, timestamptz, jsonb, jsonb, jsonb, text, boolean),
  public._upsert_lead_reply(uuid, uuid, jsonb, jsonb, jsonb, jsonb, boolean, timestamptz)
  from public, anon, authenticated, service_role;
revoke all on function public.upsert_client_lead(uuid, jsonb, text, timestamptz, jsonb, jsonb, jsonb, text)
  from public, anon, authenticated;
grant execute on function public.upsert_client_lead(uuid, jsonb, text, timestamptz, jsonb, jsonb, jsonb, text)
  to service_role;
revoke all on function public.pipeline_stage_rank(text) from public, anon;
grant execute on function public.pipeline_stage_rank(text) to authenticated, service_role;
