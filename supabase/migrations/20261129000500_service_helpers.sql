-- bisonsync 5: helpers the service and CLI call: readiness probe and ledger listing for replay.

-- Readiness: answers only when the database is up AND the schema is migrated (the newest applied version).
create function public.bisonsync_ping()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'ok', true,
    'schema_version', (select max(version) from supabase_migrations.schema_migrations)
  )
$$;

revoke execute on function public.bisonsync_ping() from public, anon, authenticated;
grant execute on function public.bisonsync_ping() to service_role;

-- Ledger entries to replay (`bisonsync replay`): oldest first, bounded.
create function public.list_deliveries(
  p_status text default 'ignored',
  p_since timestamptz default null,
  p_until timestamptz default null,
  p_event_type text default null,
  p_limit integer default 1000
)
returns table (id bigint, event_type text, status text, received_at timestamptz, workspace_id uuid)
language sql
stable
security definer
set search_path = ''
as $$
  select d.id, d.event_type, d.status, d.received_at, d.workspace_id
    from public.webhook_deliveries d
   where d.status = p_status
     and d.payload is not null
     and (p_since is null or d.received_at >= p_since)
     and (p_until is null or d.received_at < p_until)
     and (p_event_type is null or d.event_type = lower(p_event_type))
   order by d.received_at, d.id
   limit greatest(0, least(coalesce(p_limit, 1000), 100000))
$$;

revoke execute on function public.list_deliveries(text, timestamptz, timestamptz, text, integer)
  from public, anon, authenticated;
grant execute on function public.list_deliveries(text, timestamptz, timestamptz, text, integer) to service_role;
