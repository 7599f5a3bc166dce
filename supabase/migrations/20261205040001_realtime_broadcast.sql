-- Broadcast from the database for KPI and mailbox changes: the scalable alternative to postgres_changes.
--
-- OPT-IN, off by default: `select public.set_realtime_broadcast(true)` (service_role or the database owner)
-- installs row triggers on client_metrics_daily, sender_emails_cache and mailbox_status_history that send each
-- change to the PRIVATE Realtime topic `bisonsync:<workspace uuid>`; `set_realtime_broadcast(false)` removes them
-- (no cost at all while off). Each message has event = the table name and a payload shaped like
-- realtime.broadcast_changes()'s {operation, table, schema, record, old_record} plus `commit_timestamp` (the
-- transaction's time). Who may join such a topic is decided by the RLS policy below: members of that workspace.
-- The realtime schema objects (realtime.messages, realtime.send, realtime.topic) are Supabase's own: this
-- migration only adds a policy on them.

-- The workspace a `bisonsync:<uuid>` topic names; null for any other topic (never raises on bad input).
create or replace function public.bisonsync_topic_workspace(p_topic text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case
    when p_topic ~ '^bisonsync:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    then substr(p_topic, 11)::uuid
  end
$$;

create or replace function public.bisonsync_broadcast_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_workspace uuid := case when tg_op = 'DELETE' then old.workspace_id else new.workspace_id end;
begin
  perform realtime.send(
    jsonb_build_object(
      'operation', tg_op, 'table', tg_table_name, 'schema', tg_table_schema,
      'record', case when tg_op = 'DELETE' then null else to_jsonb(new) end,
      'old_record', case when tg_op = 'INSERT' then null else to_jsonb(old) end,
      'commit_timestamp', pg_catalog.now()),
    tg_table_name,
    'bisonsync:' || v_workspace::text,
    true);
  return null;
end
$$;

-- Members of a workspace may join (read) its private topic; nobody but the database writes to it. Created here
-- when realtime.messages exists, and (again, if missing) when broadcast is switched on, since on some stacks the
-- Realtime server creates realtime.messages only after the migrations ran.
create or replace function public._ensure_realtime_broadcast_policy()
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if pg_catalog.to_regclass('realtime.messages') is null then
    return;
  end if;
  if not exists (select 1 from pg_catalog.pg_policies
                 where schemaname = 'realtime' and tablename = 'messages'
                   and policyname = 'bisonsync_members_receive') then
    create policy bisonsync_members_receive on realtime.messages
      for select to authenticated
      using (
        realtime.messages.extension = 'broadcast'
        and public.is_workspace_member(public.bisonsync_topic_workspace((select realtime.topic())))
      );
  end if;
end
$$;

create or replace function public.set_realtime_broadcast(p_enabled boolean)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_table text;
begin
  if p_enabled and pg_catalog.to_regprocedure('realtime.send(jsonb, text, text, boolean)') is null then
    raise exception 'Realtime broadcast from the database is not available: realtime.send() does not exist'
      using errcode = '42883', hint = 'Start Realtime (supabase start / a hosted project) first.';
  end if;
  if p_enabled then
    perform public._ensure_realtime_broadcast_policy();
  end if;
  foreach v_table in array array['client_metrics_daily', 'sender_emails_cache', 'mailbox_status_history'] loop
    execute format('drop trigger if exists bisonsync_broadcast on public.%I', v_table);
    if p_enabled then
      execute format(
        'create trigger bisonsync_broadcast after insert or update or delete on public.%I '
        'for each row execute function public.bisonsync_broadcast_change()', v_table);
    end if;
  end loop;
  insert into public.bisonsync_settings (key, value) values ('realtime_broadcast', to_jsonb(p_enabled))
  on conflict (key) do update set value = excluded.value, updated_at = now();
  return p_enabled;
end
$$;

create or replace function public.realtime_broadcast_enabled()
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select 1 from pg_catalog.pg_trigger where tgname = 'bisonsync_broadcast' and not tgisinternal)
$$;

revoke all on function public._ensure_realtime_broadcast_policy() from public, anon, authenticated, service_role;
revoke all on function public.bisonsync_broadcast_change() from public, anon, authenticated, service_role;
revoke all on function public.set_realtime_broadcast(boolean),
  public.realtime_broadcast_enabled() from public, anon, authenticated;
grant execute on function public.set_realtime_broadcast(boolean) to service_role;
-- the dashboard asks which transport to use
grant execute on function public.realtime_broadcast_enabled() to authenticated, service_role;
revoke all on function public.bisonsync_topic_workspace(text) from public, anon;
grant execute on function public.bisonsync_topic_workspace(text) to authenticated, service_role;

select public._ensure_realtime_broadcast_policy();
