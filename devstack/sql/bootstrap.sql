-- Supabase-like bootstrap for a plain PostgreSQL cluster (devstack only; NEVER run against a real Supabase
-- database). Run as the bootstrap superuser `supabase_admin`. Idempotent: safe to run twice.
-- What it mirrors: the roles, schemas, grants, default privileges, auth helpers and the empty
-- `supabase_realtime` publication that a `supabase start` database has before user migrations run.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres login createdb createrole replication bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit createrole;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin login noinherit createrole;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_realtime_admin') then
    create role supabase_realtime_admin nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_replication_admin') then
    create role supabase_replication_admin login replication;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_read_only_user') then
    create role supabase_read_only_user login bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'dashboard_user') then
    create role dashboard_user nologin createdb createrole replication;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'pgbouncer') then
    create role pgbouncer login;
  end if;
end
$$;

-- API roles are INHERIT on Supabase; postgres is demoted (no superuser) but bypasses RLS.
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
alter role postgres nosuperuser createdb createrole replication bypassrls login;
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

-- Schemas. auth/storage/realtime/graphql_public owned by supabase_admin so `supabase db reset` keeps them.
create schema if not exists extensions authorization supabase_admin;
create schema if not exists auth authorization supabase_admin;
create schema if not exists storage authorization supabase_admin;
create schema if not exists realtime authorization supabase_admin;
create schema if not exists graphql_public authorization supabase_admin;
alter schema public owner to pg_database_owner;

create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;

grant usage on schema public to postgres, anon, authenticated, service_role;
grant create on schema public to postgres;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant usage on schema auth to postgres, anon, authenticated, service_role, supabase_auth_admin;
grant usage on schema graphql_public to postgres, anon, authenticated, service_role;
grant all on schema auth to supabase_auth_admin;
grant usage, create on schema realtime to postgres, supabase_realtime_admin;
grant usage on schema realtime to anon, authenticated, service_role;

-- Default privileges in public, for objects created by postgres and by supabase_admin.
alter default privileges for role postgres in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on functions to postgres, anon, authenticated, service_role;

-- GoTrue's helpers: read the JWT claims that PostgREST / Realtime put in `request.jwt.claims`.
create or replace function auth.uid() returns uuid
  language sql stable set search_path = ''
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $fn$;

create or replace function auth.role() returns text
  language sql stable set search_path = ''
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $fn$;

create or replace function auth.email() returns text
  language sql stable set search_path = ''
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
  $fn$;

create or replace function auth.jwt() returns jsonb
  language sql stable set search_path = ''
  as $fn$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $fn$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to postgres, anon, authenticated, service_role;

-- A minimal auth.users so `references auth.users(id)` and membership tables compile (GoTrue owns it on Supabase).
create table if not exists auth.users (
  id uuid primary key,
  instance_id uuid,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  raw_app_meta_data jsonb default '{}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  is_anonymous boolean not null default false,
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);
alter table auth.users owner to supabase_auth_admin;
grant select, references on auth.users to postgres;
grant all on auth.users to service_role;

-- Search path as on Supabase, in this database.
do $$
begin
  execute format('alter role postgres in database %I set search_path = "$user", public, extensions',
                 current_database());
  execute format('alter role supabase_admin in database %I set search_path = "$user", public, extensions',
                 current_database());
  execute format('grant all on database %I to postgres', current_database());
end
$$;

-- The (empty) realtime publication migrations add tables to.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
alter publication supabase_realtime owner to postgres;
