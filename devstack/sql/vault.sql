-- Supabase Vault for the devstack (NEVER run against a real Supabase database: hosted projects and `supabase start`
-- ship the `supabase_vault` extension). Run as the bootstrap superuser `supabase_admin`, after bootstrap.sql.
-- Idempotent: safe to run twice.
--
-- What it mirrors (the public surface of supabase_vault):
--   vault.secrets            id, name (unique when set), description, secret (ciphertext), key_id, nonce, timestamps
--   vault.decrypted_secrets  the same rows plus `decrypted_secret`
--   vault.create_secret(new_secret, new_name, new_description, new_key_id) -> uuid
--   vault.update_secret(secret_id, new_secret, new_name, new_description, new_key_id)
-- Privileges: postgres (the migration role, as on Supabase) and service_role only; anon and authenticated have no
-- usage on the schema at all.
--
-- Encryption at rest: pgcrypto (PGP symmetric, AES-256) with a root key that lives OUTSIDE the database, in the file
-- `vault_root.key` of the cluster's data directory (the devstack's equivalent of pgsodium's server key file). It is
-- created once with 32 random bytes and only read by `vault._root_key()`, which nobody but its superuser owner may
-- execute. The plaintext is bound to its row id (authenticated as `<id>:<secret>`), so a ciphertext copied onto
-- another row does not decrypt there.

create schema if not exists vault authorization supabase_admin;

-- The root key file: created once per cluster, never in a table.
do $$
declare
  v_path text := current_setting('data_directory') || '/vault_root.key';
begin
  perform pg_catalog.pg_read_file('vault_root.key');
exception when undefined_file then
  execute format('copy (select encode(extensions.gen_random_bytes(32), %L)) to %L', 'hex', v_path);
end
$$;

create or replace function vault._root_key() returns bytea
  language sql stable security definer set search_path = ''
  as $fn$ select pg_catalog.decode(pg_catalog.btrim(pg_catalog.pg_read_file('vault_root.key'), E' \n'), 'hex') $fn$;
alter function vault._root_key() owner to supabase_admin;
revoke all on function vault._root_key() from public;

create table if not exists vault.secrets (
  id          uuid primary key default gen_random_uuid(),
  name        text,
  description text not null default '',
  secret      text not null,
  key_id      uuid,
  nonce       bytea,
  created_at  timestamptz not null default current_timestamp,
  updated_at  timestamptz not null default current_timestamp
);
alter table vault.secrets owner to supabase_admin;
comment on table vault.secrets is 'Table with encrypted `secret` column for storing sensitive information on disk.';
create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null;

create or replace function vault._encrypt(p_id uuid, p_secret text) returns text
  language sql volatile security definer set search_path = ''
  as $fn$
    select pg_catalog.encode(
      extensions.pgp_sym_encrypt(p_id::text || ':' || p_secret,
                                 pg_catalog.encode(vault._root_key(), 'hex'), 'cipher-algo=aes256'),
      'base64')
  $fn$;

create or replace function vault._decrypt(p_id uuid, p_ciphertext text) returns text
  language plpgsql stable security definer set search_path = ''
  as $fn$
  declare
    v_plain text;
  begin
    v_plain := extensions.pgp_sym_decrypt(pg_catalog.decode(p_ciphertext, 'base64'),
                                          pg_catalog.encode(vault._root_key(), 'hex'));
    if pg_catalog.left(v_plain, 37) <> p_id::text || ':' then
      return null;  -- not this row's ciphertext
    end if;
    return pg_catalog.substr(v_plain, 38);
  exception when others then
    return null;  -- wrong key or damaged ciphertext: like pgsodium, no plaintext rather than an error
  end
  $fn$;
alter function vault._encrypt(uuid, text) owner to supabase_admin;
alter function vault._decrypt(uuid, text) owner to supabase_admin;
revoke all on function vault._encrypt(uuid, text), vault._decrypt(uuid, text) from public;

create or replace view vault.decrypted_secrets as
  select s.id, s.name, s.description, s.secret,
         vault._decrypt(s.id, s.secret) as decrypted_secret,
         s.key_id, s.nonce, s.created_at, s.updated_at
  from vault.secrets s;
alter view vault.decrypted_secrets owner to supabase_admin;

create or replace function vault.create_secret(
  new_secret text, new_name text default null, new_description text default '', new_key_id uuid default null
) returns uuid
  language plpgsql volatile security definer set search_path = ''
  as $fn$
  declare
    v_id uuid := gen_random_uuid();
  begin
    if new_secret is null then
      raise exception 'new_secret must not be null' using errcode = '22004';
    end if;
    insert into vault.secrets (id, name, description, secret, key_id)
    values (v_id, new_name, coalesce(new_description, ''), vault._encrypt(v_id, new_secret), new_key_id);
    return v_id;
  end
  $fn$;

create or replace function vault.update_secret(
  secret_id uuid, new_secret text default null, new_name text default null, new_description text default null,
  new_key_id uuid default null
) returns void
  language plpgsql volatile security definer set search_path = ''
  as $fn$
  begin
    update vault.secrets s
       set secret = case when new_secret is null then s.secret else vault._encrypt(s.id, new_secret) end,
           name = coalesce(new_name, s.name),
           description = coalesce(new_description, s.description),
           key_id = coalesce(new_key_id, s.key_id),
           updated_at = current_timestamp
     where s.id = update_secret.secret_id;
  end
  $fn$;
alter function vault.create_secret(text, text, text, uuid) owner to supabase_admin;
alter function vault.update_secret(uuid, text, text, text, uuid) owner to supabase_admin;

-- Privileges: the migration role and service_role; nobody else.
revoke all on schema vault from public, anon, authenticated;
revoke all on all tables in schema vault from public, anon, authenticated;
revoke all on function vault.create_secret(text, text, text, uuid),
  vault.update_secret(uuid, text, text, text, uuid) from public, anon, authenticated;
grant usage on schema vault to postgres, service_role;
grant select, delete on vault.secrets to postgres, service_role;
grant select on vault.decrypted_secrets to postgres, service_role;
grant execute on function vault.create_secret(text, text, text, uuid),
  vault.update_secret(uuid, text, text, text, uuid), vault._decrypt(uuid, text) to postgres, service_role;
