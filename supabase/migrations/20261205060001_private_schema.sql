-- Internal helpers leave the API: schema `bisonsync_private`.
--
-- PostgREST exposes the schemas in `[api] schemas` (public, graphql_public): every function there is listed at
-- GET /rest/v1/ and in the OpenAPI description, even the ones nobody may execute. The `_`-prefixed helpers
-- (triggers, the ingest/sync internals), the SECURITY DEFINER membership checks the RLS policies call
-- (is_workspace_member, is_instance_member), the topic parser of the realtime.messages policy and the broadcast
-- trigger move to `bisonsync_private`, which no API exposes.
--
-- What keeps working, and why:
-- * RLS policies (tables, realtime.messages), triggers, check constraints and views refer to a function by its
--   oid, and `alter function ... set schema` keeps the oid, its privileges and its comment. `authenticated`
--   keeps EXECUTE on the two membership checks and the topic parser: policies run them as the querying role.
--   Executing a function through a stored expression needs no USAGE on its schema, so no API role gets USAGE
--   on bisonsync_private: nobody can name these functions, only the database's own objects reach them.
-- * Function bodies name functions by text (`set search_path = ''`, everything schema-qualified). Every function
--   whose body names a moved function as `public.<name>` is re-created below with `bisonsync_private.<name>`
--   (same definition otherwise, same privileges: `create or replace` keeps them). That includes the function
--   that creates the realtime.messages policy and the one that creates the broadcast triggers.
-- * A later migration that wants to change one of these helpers redefines `bisonsync_private.<name>`; a
--   `create or replace function public._<name>` would create a second, exposed copy (the RLS matrix test
--   refuses any `_`-prefixed function in public).

create schema if not exists bisonsync_private;
comment on schema bisonsync_private is
  'bisonsync internals (helpers, trigger functions, the membership checks RLS policies call): not exposed by '
  'PostgREST; reached only through public functions, policies, triggers and constraints.';
revoke all on schema bisonsync_private from public, anon, authenticated, service_role;

-- Moved by signature; idempotent (a function already moved is skipped).
do $$
declare
  v_sig text;
begin
  foreach v_sig in array array[
    '_apply_delivery_effects(bigint)',
    '_apply_mailbox_event(uuid, text, jsonb, timestamptz, bigint)',
    '_client_leads_guard()',
    '_close_sync_run(uuid, text)',
    '_custom_variable(jsonb, text[])',
    '_custom_variables_array(jsonb)',
    '_ensure_realtime_broadcast_policy()',
    '_ensure_workspace(text, bigint, text)',
    '_increment_metric(uuid, text, integer, timestamptz)',
    '_ledger_event_type(text)',
    '_merge_custom_variables(jsonb, jsonb)',
    '_metric_column(text)',
    '_record_rejected(text, uuid, text, bigint, text, timestamptz)',
    '_rename_workspace(uuid, text)',
    '_require_vault()',
    '_sender_emails_cache_normalize()',
    '_set_updated_at()',
    '_sync_run_for_write(uuid, text)',
    '_sync_run_json(uuid)',
    '_sync_run_totals(uuid)',
    '_sync_workspace_json(public.sync_run_workspaces)',
    '_touch_activity(uuid, text, text, text, timestamptz)',
    '_try_bigint(text)',
    '_try_timestamptz(text)',
    '_upsert_client_lead(uuid, jsonb, text, timestamptz, jsonb, jsonb, jsonb, text, boolean)',
    '_upsert_lead_reply(uuid, uuid, jsonb, jsonb, jsonb, jsonb, boolean, timestamptz)',
    '_workspace_id_by_name(text)',
    '_workspaces_validate()',
    'bisonsync_broadcast_change()',
    'bisonsync_topic_workspace(text)',
    'is_instance_member(text)',
    'is_workspace_member(uuid)'
  ] loop
    if pg_catalog.to_regprocedure('public.' || v_sig) is not null then
      execute 'alter function public.' || v_sig || ' set schema bisonsync_private';
    end if;
  end loop;
end
$$;

-- Re-create every function (public or private) whose body still names a moved function `public.<name>`. The
-- definitions are the live ones (pg_get_functiondef), changed only in that qualification. Idempotent: a second
-- run finds nothing to change.
do $$
declare
  v_moved text;
  v_fn record;
  v_def text;
begin
  select string_agg(distinct p.proname, '|') into v_moved
  from pg_catalog.pg_proc p
  where p.pronamespace = 'bisonsync_private'::regnamespace;
  if v_moved is null then
    return;
  end if;
  for v_fn in
    select p.oid
    from pg_catalog.pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'bisonsync_private'::regnamespace)
      and p.prokind = 'f'
      and p.prosrc ~ ('public\.(' || v_moved || ')\M')
    order by p.oid
  loop
    v_def := pg_catalog.regexp_replace(pg_catalog.pg_get_functiondef(v_fn.oid),
                                       'public\.(' || v_moved || ')\M', 'bisonsync_private.\1', 'g');
    execute v_def;
  end loop;
end
$$;
