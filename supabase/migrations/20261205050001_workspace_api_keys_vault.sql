-- Workspace-scoped Email Bison API keys provisioned by `bisonsync keys provision`, stored in Supabase Vault.
--
-- The key itself lives only in `vault.secrets` (encrypted at rest; readable through `vault.decrypted_secrets` by
-- postgres and service_role only). `workspace_credentials` (no grant to anon/authenticated at all) records the
-- REFERENCE: the vault secret id, Email Bison's id of the token (to revoke it on rotation) and its health.
-- This migration does not create the vault schema: hosted Supabase and `supabase start` ship it (supabase_vault),
-- the devstack bootstrap provides the same objects.

alter table public.workspace_credentials
  add column if not exists bison_api_key_secret_id uuid,
  add column if not exists bison_api_key_token_id text
    check (bison_api_key_token_id ~ '^[A-Za-z0-9_.:-]{1,64}$'),
  add column if not exists bison_api_key_provisioned_at timestamptz,
  add column if not exists bison_api_key_failed_at timestamptz,
  add column if not exists bison_api_key_error text check (length(bison_api_key_error) <= 500);

comment on column public.workspace_credentials.bison_api_key_secret_id is
  'vault.secrets id of the workspace-scoped Email Bison key (bisonsync keys provision); never the key itself';
comment on column public.workspace_credentials.bison_api_key_token_id is
  'Email Bison''s id of that token, used to revoke it on rotation';

create or replace function public._require_vault()
returns void
language plpgsql
set search_path = ''
as $$
begin
  if pg_catalog.to_regnamespace('vault') is null then
    raise exception 'Supabase Vault (schema vault) is not installed in this database: enable the supabase_vault extension'
      using errcode = '55000';
  end if;
end
$$;

-- Store (or replace) the key of one workspace. With p_replace = false an existing healthy key is kept and
-- `stored` is false (a concurrent provisioner got there first: the caller revokes the token it just created).
-- Returns the Bison token id of the key it replaced, so the caller can revoke that one.
create or replace function public.store_workspace_api_key(
  p_workspace_id uuid, p_token text, p_token_id text, p_replace boolean default false
)
returns table (stored boolean, secret_id uuid, previous_token_id text)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_cred public.workspace_credentials%rowtype;
  v_secret uuid;
  v_name text := 'bisonsync/bison_api_key/' || p_workspace_id::text;
begin
  perform public._require_vault();
  if p_token is null or p_token = '' or p_token ~ '\s' then
    raise exception 'an Email Bison API key must be non-empty and contain no whitespace' using errcode = '22023';
  end if;
  if p_token_id is not null and p_token_id !~ '^[A-Za-z0-9_.:-]{1,64}$' then
    raise exception 'invalid Email Bison token id' using errcode = '22023';
  end if;
  if not exists (select 1 from public.workspaces w where w.id = p_workspace_id) then
    raise exception 'unknown workspace id %', p_workspace_id using errcode = 'P0002';
  end if;
  insert into public.workspace_credentials (workspace_id) values (p_workspace_id) on conflict (workspace_id) do nothing;
  select * into v_cred from public.workspace_credentials c where c.workspace_id = p_workspace_id for update;

  -- the referenced secret, if it still exists (a secret deleted by hand counts as missing)
  select s.id into v_secret from vault.secrets s where s.id = v_cred.bison_api_key_secret_id;
  if v_secret is not null and not p_replace and v_cred.bison_api_key_failed_at is null then
    return query select false, v_secret, null::text;
    return;
  end if;
  if v_secret is null then
    select s.id into v_secret from vault.secrets s where s.name = v_name;  -- left over from a deleted row
  end if;
  if v_secret is null then
    v_secret := vault.create_secret(p_token, v_name, 'Email Bison workspace API key (bisonsync keys provision)');
  else
    perform vault.update_secret(v_secret, p_token);
  end if;
  update public.workspace_credentials c
     set bison_api_key_secret_id = v_secret,
         bison_api_key_token_id = p_token_id,
         bison_api_key_provisioned_at = now(),
         bison_api_key_failed_at = null,
         bison_api_key_error = null
   where c.workspace_id = p_workspace_id;
  return query select true, v_secret,
    case when v_cred.bison_api_key_token_id is distinct from p_token_id then v_cred.bison_api_key_token_id end;
end
$$;

-- Key state of every active workspace of an instance, WITHOUT the keys (for provision and `keys list`).
create or replace function public.workspace_api_key_status(p_instance text)
returns table (
  workspace_id uuid, bison_workspace_id bigint, name text, has_key boolean, token_id text,
  provisioned_at timestamptz, failed_at timestamptz, error text, env_ref text
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform public._require_vault();
  return query
    select w.id, w.bison_workspace_id, w.name,
           exists (select 1 from vault.secrets s where s.id = c.bison_api_key_secret_id),
           c.bison_api_key_token_id, c.bison_api_key_provisioned_at, c.bison_api_key_failed_at,
           c.bison_api_key_error, c.bison_api_key_ref
      from public.workspaces w
      left join public.workspace_credentials c on c.workspace_id = w.id
     where w.instance = lower(public.clean_label(p_instance)) and w.active
     order by w.bison_workspace_id;
end
$$;

-- The decrypted keys of an instance's active workspaces (service_role only: the poller and `keys verify`).
create or replace function public.workspace_api_keys(p_instance text)
returns table (
  workspace_id uuid, bison_workspace_id bigint, token text, token_id text, failed_at timestamptz
)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform public._require_vault();
  return query
    select w.id, w.bison_workspace_id, d.decrypted_secret, c.bison_api_key_token_id, c.bison_api_key_failed_at
      from public.workspaces w
      join public.workspace_credentials c on c.workspace_id = w.id
      join vault.decrypted_secrets d on d.id = c.bison_api_key_secret_id
     where w.instance = lower(public.clean_label(p_instance)) and w.active and d.decrypted_secret is not null
     order by w.bison_workspace_id;
end
$$;

-- Record whether a stored key works (`keys verify`, or the poller falling back to the super-admin key).
create or replace function public.mark_workspace_api_key(p_workspace_id uuid, p_ok boolean, p_error text default null)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.workspace_credentials c
     set bison_api_key_failed_at = case when p_ok then null else coalesce(c.bison_api_key_failed_at, now()) end,
         bison_api_key_error = case when p_ok then null else left(coalesce(p_error, 'failed'), 500) end
   where c.workspace_id = p_workspace_id and c.bison_api_key_secret_id is not null;
end
$$;

revoke all on function public._require_vault() from public, anon, authenticated, service_role;
revoke all on function public.store_workspace_api_key(uuid, text, text, boolean),
  public.workspace_api_key_status(text), public.workspace_api_keys(text),
  public.mark_workspace_api_key(uuid, boolean, text) from public, anon, authenticated;
grant execute on function public.store_workspace_api_key(uuid, text, text, boolean),
  public.workspace_api_key_status(text), public.workspace_api_keys(text),
  public.mark_workspace_api_key(uuid, boolean, text) to service_role;
