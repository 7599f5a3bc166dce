-- bisonsync 1/4: tenants, membership, credentials, settings.
--
-- Conventions for every bisonsync migration (see docs/schema.md):
--   * RLS on every table; `service_role` (BYPASSRLS) gets ALL; `authenticated` gets SELECT on member rows only;
--     `anon` gets nothing. Default privileges (which on Supabase grant ALL to anon/authenticated) are revoked
--     explicitly, object by object.
--   * Mutating functions: SECURITY DEFINER, `set search_path = ''`, EXECUTE revoked from public/anon/authenticated
--     and granted to service_role only. Internal helpers (`_name`) are executable by their owner only.
--   * Read helpers are SECURITY INVOKER (RLS applies to the caller) and granted to authenticated.

-- ---------------------------------------------------------------------------------------------------------------
-- Generic helpers
-- ---------------------------------------------------------------------------------------------------------------

-- A label as bisonsync stores it: surrounding whitespace (incl. NBSP) removed, empty -> null. Used by CHECK
-- constraints and triggers, so executable by the API roles (it is immutable and reads nothing).
create function public.clean_label(p_value text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select nullif(pg_catalog.btrim(p_value, E' \t\n\r\f\v\u00a0'), '')
$$;

create function public._set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end
$$;

create function public.is_valid_timezone(p_timezone text)
returns boolean
language sql
stable
set search_path = ''
as $$
  select p_timezone is not null
     and exists (select 1 from pg_catalog.pg_timezone_names z where z.name = p_timezone)
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Settings
-- ---------------------------------------------------------------------------------------------------------------

create table public.bisonsync_settings (
  key        text primary key,
  value      jsonb not null,
  updated_at timestamptz not null default now()
);

comment on table public.bisonsync_settings is
  'Operator settings read by SQL jobs (e.g. ledger_payload_retention_days). service_role only.';

insert into public.bisonsync_settings (key, value) values ('ledger_payload_retention_days', '90');

create trigger bisonsync_settings_updated_at
  before update on public.bisonsync_settings
  for each row execute function public._set_updated_at();

-- ---------------------------------------------------------------------------------------------------------------
-- Workspaces (tenants)
-- ---------------------------------------------------------------------------------------------------------------

create table public.workspaces (
  id                     uuid primary key default gen_random_uuid(),
  -- normalised host of Email Bison's event.instance_url, e.g. 'bison.example.com'
  instance               text not null
    check (instance = lower(instance) and instance = public.clean_label(instance) and instance !~ '[/:]'),
  bison_workspace_id     bigint not null,
  name                   text not null check (name = public.clean_label(name)),
  timezone               text not null default 'America/Chicago',
  active                 boolean not null default true,
  monthly_kpi_target     integer check (monthly_kpi_target >= 0),
  monthly_sending_target integer check (monthly_sending_target >= 0),
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  constraint workspaces_instance_bison_id_key unique (instance, bison_workspace_id)
);

comment on table public.workspaces is
  'Tenant registry keyed by (instance, bison_workspace_id). name is a trimmed label, previous names are kept in '
  'workspace_name_history. timezone buckets KPI counters by workspace-local day.';

create index workspaces_name_idx on public.workspaces (name);
create index workspaces_instance_idx on public.workspaces (instance);

create function public._workspaces_validate()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.timezone is distinct from old.timezone then
    if not public.is_valid_timezone(new.timezone) then
      raise exception 'unknown time zone "%" for workspace "%"', new.timezone, new.name
        using errcode = '22023', hint = 'use an IANA zone name from pg_timezone_names, e.g. America/Chicago';
    end if;
  end if;
  new.updated_at := pg_catalog.now();
  return new;
end
$$;

create trigger workspaces_validate
  before insert or update on public.workspaces
  for each row execute function public._workspaces_validate();

-- Renames: workspaces.name is always current; each replaced name is kept here (one row per rename).
create table public.workspace_name_history (
  id           bigint generated always as identity primary key,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  name         text not null,
  replaced_at  timestamptz not null default now()
);

create index workspace_name_history_ws_idx on public.workspace_name_history (workspace_id, replaced_at desc);
create index workspace_name_history_name_idx on public.workspace_name_history (name);

-- ---------------------------------------------------------------------------------------------------------------
-- Membership (who may read which workspace)
-- ---------------------------------------------------------------------------------------------------------------

create table public.workspace_members (
  user_id      uuid not null references auth.users (id) on delete cascade,
  workspace_id uuid not null references public.workspaces (id) on delete cascade,
  role         text not null default 'viewer' check (role in ('viewer', 'editor', 'admin')),
  created_at   timestamptz not null default now(),
  primary key (user_id, workspace_id)
);

create index workspace_members_ws_idx on public.workspace_members (workspace_id);

-- SECURITY DEFINER so policies can call it without recursing into workspace_members' own RLS.
create function public.is_workspace_member(p_workspace_id uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.workspace_members m
    where m.workspace_id = p_workspace_id
      and m.user_id = (select auth.uid())
  )
$$;

-- Provider snapshots are per instance (not per workspace): readable by members of any workspace on that instance.
create function public.is_instance_member(p_instance text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1
    from public.workspace_members m
    join public.workspaces w on w.id = m.workspace_id
    where w.instance = p_instance
      and m.user_id = (select auth.uid())
  )
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Credentials: references to secrets, never secrets (no grants to anon/authenticated at all)
-- ---------------------------------------------------------------------------------------------------------------

create table public.workspace_credentials (
  workspace_id       uuid primary key references public.workspaces (id) on delete cascade,
  -- hex sha256 of the webhook token; the token itself is never stored
  webhook_token_hash text check (webhook_token_hash ~ '^[0-9a-f]{64}$'),
  -- NAMES of env vars / vault secrets; characters like '|', ':' and '/' are refused so a Bison key
  -- ('123|abc...') or a Slack URL cannot be pasted here by mistake
  bison_api_key_ref  text check (bison_api_key_ref ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$'),
  slack_webhook_ref  text check (slack_webhook_ref ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$'),
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now()
);

create unique index workspace_credentials_token_hash_key
  on public.workspace_credentials (webhook_token_hash)
  where webhook_token_hash is not null;

create trigger workspace_credentials_updated_at
  before update on public.workspace_credentials
  for each row execute function public._set_updated_at();

-- ---------------------------------------------------------------------------------------------------------------
-- Workspace functions
-- ---------------------------------------------------------------------------------------------------------------

-- Find or create the workspace for (instance, bison id). Never renames (see _rename_workspace): callers decide
-- whether the name they hold is current (a retried delivery may carry a name from before a rename).
create function public._ensure_workspace(p_instance text, p_bison_workspace_id bigint, p_name text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  v_instance text := lower(public.clean_label(p_instance));
  v_id uuid;
begin
  if v_instance is null then
    raise exception 'instance is required (normalised host of event.instance_url)' using errcode = '22023';
  end if;
  if p_bison_workspace_id is null then
    raise exception 'bison workspace id is required (event.workspace_id)' using errcode = '22023';
  end if;

  select w.id into v_id
  from public.workspaces w
  where w.instance = v_instance and w.bison_workspace_id = p_bison_workspace_id;
  if found then
    return v_id;
  end if;

  insert into public.workspaces (instance, bison_workspace_id, name)
  values (v_instance, p_bison_workspace_id,
          coalesce(public.clean_label(p_name), 'Workspace ' || p_bison_workspace_id))
  on conflict (instance, bison_workspace_id) do nothing
  returning id into v_id;

  if v_id is null then  -- created concurrently by another transaction
    select w.id into strict v_id
    from public.workspaces w
    where w.instance = v_instance and w.bison_workspace_id = p_bison_workspace_id;
  end if;
  return v_id;
end
$$;

-- Keep workspaces.name current; the replaced name goes to workspace_name_history. No write when unchanged
-- (workspaces is in the realtime publication: no-op updates would be noise).
create function public._rename_workspace(p_workspace_id uuid, p_name text)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_name text := public.clean_label(p_name);
  v_old text;
begin
  if v_name is null then
    return false;
  end if;
  select w.name into v_old from public.workspaces w where w.id = p_workspace_id;
  if not found or v_old = v_name then
    return false;  -- the common case: no lock, no write
  end if;
  -- NO KEY UPDATE does not conflict with the KEY SHARE locks that concurrent FK inserts take on this row
  select w.name into v_old from public.workspaces w where w.id = p_workspace_id for no key update;
  if v_old = v_name then
    return false;
  end if;
  update public.workspaces set name = v_name where id = p_workspace_id;
  insert into public.workspace_name_history (workspace_id, name) values (p_workspace_id, v_old);
  return true;
end
$$;

create function public.upsert_workspace(
  p_instance text,
  p_bison_workspace_id bigint,
  p_name text,
  p_timezone text default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id uuid := public._ensure_workspace(p_instance, p_bison_workspace_id, p_name);
begin
  perform public._rename_workspace(v_id, p_name);
  if p_timezone is not null then
    update public.workspaces set timezone = p_timezone
    where id = v_id and timezone is distinct from p_timezone;
  end if;
  return v_id;
end
$$;

comment on function public.upsert_workspace(text, bigint, text, text) is
  'Create or find the workspace (instance, bison id); trims and updates the name (old name kept in '
  'workspace_name_history); sets timezone when given. service_role only.';

-- Resolve the workspace a webhook token belongs to (the caller hashes the presented token with sha256).
create function public.resolve_webhook_token(p_token_hash text)
returns table (workspace_id uuid, instance text, bison_workspace_id bigint)
language sql
stable
security definer
set search_path = ''
as $$
  select w.id, w.instance, w.bison_workspace_id
  from public.workspace_credentials c
  join public.workspaces w on w.id = c.workspace_id
  where c.webhook_token_hash = lower(p_token_hash)
$$;

create function public.set_webhook_token(p_workspace_id uuid, p_token_hash text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_hash text := lower(public.clean_label(p_token_hash));
begin
  if v_hash is not null and v_hash !~ '^[0-9a-f]{64}$' then
    raise exception 'token hash must be the hex sha256 of the token (64 hex digits), never the token itself'
      using errcode = '22023';
  end if;
  if not exists (select 1 from public.workspaces w where w.id = p_workspace_id) then
    raise exception 'unknown workspace id %', p_workspace_id using errcode = 'P0002';
  end if;
  insert into public.workspace_credentials (workspace_id, webhook_token_hash)
  values (p_workspace_id, v_hash)
  on conflict (workspace_id) do update set webhook_token_hash = excluded.webhook_token_hash;
end
$$;

-- Resolve a (trimmed) workspace name for the predecessor-compatible RPCs: current names first, then names the
-- workspace had before a rename. Unknown -> P0002, ambiguous -> P0003 (never a silent no-op).
create function public._workspace_id_by_name(p_name text)
returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  v_name text := public.clean_label(p_name);
  v_ids uuid[];
begin
  select array_agg(w.id) into v_ids from public.workspaces w where w.name = v_name;
  if v_ids is null then
    select array_agg(distinct h.workspace_id) into v_ids
    from public.workspace_name_history h where h.name = v_name;
  end if;
  if v_ids is null then
    raise exception 'unknown workspace name "%"', coalesce(v_name, '')
      using errcode = 'P0002', hint = 'names are compared trimmed; prefer the workspace id overload';
  end if;
  if array_length(v_ids, 1) > 1 then
    raise exception 'ambiguous workspace name "%": % workspaces carry it', v_name, array_length(v_ids, 1)
      using errcode = 'P0003', hint = 'use the workspace id overload';
  end if;
  return v_ids[1];
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- RLS and grants
-- ---------------------------------------------------------------------------------------------------------------

alter table public.bisonsync_settings enable row level security;
alter table public.workspaces enable row level security;
alter table public.workspace_name_history enable row level security;
alter table public.workspace_members enable row level security;
alter table public.workspace_credentials enable row level security;

create policy workspaces_member_read on public.workspaces
  for select to authenticated using (public.is_workspace_member(id));
create policy workspace_name_history_member_read on public.workspace_name_history
  for select to authenticated using (public.is_workspace_member(workspace_id));
create policy workspace_members_own_read on public.workspace_members
  for select to authenticated using (user_id = (select auth.uid()));
-- bisonsync_settings, workspace_credentials: no policy, no grant -> service_role only.

revoke all on table public.bisonsync_settings, public.workspaces, public.workspace_name_history,
  public.workspace_members, public.workspace_credentials from public, anon, authenticated;
grant all on table public.bisonsync_settings, public.workspaces, public.workspace_name_history,
  public.workspace_members, public.workspace_credentials to service_role;
grant select on table public.workspaces, public.workspace_name_history, public.workspace_members to authenticated;
revoke all on sequence public.workspace_name_history_id_seq from public, anon, authenticated;
grant usage, select on sequence public.workspace_name_history_id_seq to service_role;

revoke all on function public._set_updated_at(), public._workspaces_validate(),
  public._ensure_workspace(text, bigint, text), public._rename_workspace(uuid, text),
  public._workspace_id_by_name(text) from public, anon, authenticated, service_role;
revoke all on function public.upsert_workspace(text, bigint, text, text), public.resolve_webhook_token(text),
  public.set_webhook_token(uuid, text) from public, anon, authenticated;
grant execute on function public.upsert_workspace(text, bigint, text, text), public.resolve_webhook_token(text),
  public.set_webhook_token(uuid, text) to service_role;
-- clean_label is used by CHECK constraints and triggers, which run with the writer's privileges
revoke all on function public.is_workspace_member(uuid), public.is_instance_member(text),
  public.is_valid_timezone(text), public.clean_label(text) from public, anon;
grant execute on function public.is_workspace_member(uuid), public.is_instance_member(text),
  public.is_valid_timezone(text), public.clean_label(text) to authenticated, service_role;
