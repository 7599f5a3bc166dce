-- bisonsync ingest, round 2: real Email Bison traffic and authentication before anything is written.
--
--   * ingest_delivery: a per-workspace token that does not match writes NOTHING (no ledger row, no activity, no
--     workspace); a delivery first recorded under an earlier dedup-key scheme is recognised (p_legacy_keys);
--     processing time is stored for every delivery; event.instance_url is kept on the row as information only.
--   * names: NFC-normalised and bounded before they are compared or stored (no renames between NFC/NFD forms, no
--     index row too large).
--   * custom_variables sent as a keyed object are merged like the documented array.
--   * mailbox events: lower-case statuses; pending_move / pending_deletion stored as sent.
--   * the predecessor's monitoring relations: webhook_delivery_log (view over the ledger) and the predecessor's
--     columns on webhook_health.

-- ---------------------------------------------------------------------------------------------------------------
-- Names
-- ---------------------------------------------------------------------------------------------------------------

-- A workspace name as stored and compared: trimmed, Unicode NFC, at most 200 characters.
create or replace function public.workspace_label(p_value text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select public.clean_label(pg_catalog.left(pg_catalog.normalize(public.clean_label(p_value), 'NFC'), 200))
$$;

revoke all on function public.workspace_label(text) from public, anon;
grant execute on function public.workspace_label(text) to authenticated, service_role;

create or replace function public._ensure_workspace(p_instance text, p_bison_workspace_id bigint, p_name text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  v_instance text := lower(public.clean_label(p_instance));
  v_id uuid;
begin
  if v_instance is null then
    raise exception 'instance is required (the configured Email Bison instance)' using errcode = '22023';
  end if;
  if pg_catalog.length(v_instance) > 253 then
    raise exception 'instance is not a host name (longer than 253 characters)' using errcode = '22023';
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
          coalesce(public.workspace_label(p_name), 'Workspace ' || p_bison_workspace_id))
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

create or replace function public._rename_workspace(p_workspace_id uuid, p_name text)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_name text := public.workspace_label(p_name);
  v_old text;
begin
  if v_name is null then
    return false;
  end if;
  select w.name into v_old from public.workspaces w where w.id = p_workspace_id;
  -- NFC on both sides: a name stored before NFC normalisation must not look renamed
  if not found or public.workspace_label(v_old) = v_name then
    return false;
  end if;
  select w.name into v_old from public.workspaces w where w.id = p_workspace_id for no key update;
  if public.workspace_label(v_old) = v_name then
    return false;
  end if;
  update public.workspaces set name = v_name where id = p_workspace_id;
  insert into public.workspace_name_history (workspace_id, name) values (p_workspace_id, v_old);
  return true;
end
$$;

create or replace function public._workspace_id_by_name(p_name text)
returns uuid
language plpgsql
stable
set search_path = ''
as $$
declare
  v_name text := public.workspace_label(p_name);
  v_ids uuid[];
begin
  select array_agg(w.id) into v_ids from public.workspaces w where w.name = v_name;
  if v_ids is null then
    select array_agg(distinct h.workspace_id) into v_ids
    from public.workspace_name_history h where h.name = v_name;
  end if;
  if v_ids is null then
    raise exception 'unknown workspace name "%"', coalesce(v_name, '')
      using errcode = 'P0002', hint = 'names are compared trimmed and NFC-normalised; prefer the workspace id overload';
  end if;
  if array_length(v_ids, 1) > 1 then
    raise exception 'ambiguous workspace name "%": % workspaces carry it', v_name, array_length(v_ids, 1)
      using errcode = 'P0003', hint = 'use the workspace id overload';
  end if;
  return v_ids[1];
end
$$;

revoke all on function public._ensure_workspace(text, bigint, text), public._rename_workspace(uuid, text),
  public._workspace_id_by_name(text) from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Custom variables: the documented array of {name, value}, or a keyed object {name: value}
-- ---------------------------------------------------------------------------------------------------------------

create or replace function public._custom_variables_array(p_value jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select case jsonb_typeof(p_value)
    when 'array' then p_value
    when 'object' then coalesce(
      (select jsonb_agg(jsonb_build_object(
                'name', e.key,
                'value', case when jsonb_typeof(e.value) = 'object' and e.value ? 'value' then e.value -> 'value'
                              else e.value end)
              order by e.key)
       from jsonb_each(p_value) e),
      '[]'::jsonb)
    else '[]'::jsonb
  end
$$;

create or replace function public._merge_custom_variables(p_old jsonb, p_new jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  with o as (
    select e.value, e.ord, lower(public.clean_label(e.value ->> 'name')) as k
    from jsonb_array_elements(public._custom_variables_array(p_old)) with ordinality as e (value, ord)
  ),
  n as (
    select distinct on (k) e.value, e.ord, lower(public.clean_label(e.value ->> 'name')) as k
    from jsonb_array_elements(public._custom_variables_array(p_new)) with ordinality as e (value, ord)
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

revoke all on function public._custom_variables_array(jsonb), public._merge_custom_variables(jsonb, jsonb)
  from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Mailbox statuses: webhooks send lower case; the API also knows pending_move and pending_deletion
-- ---------------------------------------------------------------------------------------------------------------

alter table public.sender_emails_cache drop constraint if exists sender_emails_cache_status_check;
alter table public.sender_emails_cache add constraint sender_emails_cache_status_check
  check (status in ('Connected', 'Disconnected', 'Failed', 'Not connected', 'pending_move', 'pending_deletion'));

-- A mailbox status as stored: the four REST statuses capitalised as the REST API sends them, whatever case a
-- webhook used; pending_move / pending_deletion as the API names them; anything else null (unknown).
create or replace function public.mailbox_status_label(p_status text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select case pg_catalog.replace(lower(public.clean_label(p_status)), '_', ' ')
    when 'connected' then 'Connected'
    when 'disconnected' then 'Disconnected'
    when 'failed' then 'Failed'
    when 'not connected' then 'Not connected'
    when 'pending move' then 'pending_move'
    when 'pending deletion' then 'pending_deletion'
  end
$$;

revoke all on function public.mailbox_status_label(text) from public, anon;
grant execute on function public.mailbox_status_label(text) to authenticated, service_role;

create or replace function public.apply_mailbox_status(
  p_mailbox_id uuid,
  p_status text,
  p_source text,
  p_event_at timestamptz,
  p_delivery_id bigint default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status text := public.mailbox_status_label(p_status);
  r public.sender_emails_cache;
begin
  if v_status is null then
    raise exception 'unknown mailbox status "%"', p_status using errcode = '22023',
      detail = 'statuses: Connected, Disconnected, Failed, Not connected, pending_move, pending_deletion '
               '(any case)';
  end if;
  if p_source not in ('webhook', 'poll') or p_source is null then
    raise exception 'unknown status source "%" (webhook or poll)', p_source using errcode = '22023';
  end if;
  if p_event_at is null then
    raise exception 'event time is required' using errcode = '22023';
  end if;

  select * into r from public.sender_emails_cache s where s.id = p_mailbox_id for no key update;
  if not found then
    raise exception 'unknown mailbox %', p_mailbox_id using errcode = 'P0002';
  end if;
  if not public.mailbox_status_wins(r.status_observed_at, r.status_source, r.status,
                                    p_event_at, p_source, v_status) then
    return jsonb_build_object('mailbox_id', r.id, 'action', 'stale', 'status', r.status,
                              'previous_status', r.status);
  end if;

  update public.sender_emails_cache s set
    status = v_status,
    status_observed_at = p_event_at,
    status_source = p_source,
    status_changed_at = case when r.status is distinct from v_status then p_event_at else r.status_changed_at end
  where s.id = r.id;

  if r.status is distinct from v_status then
    insert into public.mailbox_status_history
      (workspace_id, bison_sender_id, email_address, old_status, new_status, source, event_at, delivery_id)
    values (r.workspace_id, r.bison_sender_id, r.email_address, r.status, v_status, p_source, p_event_at,
            p_delivery_id);
    return jsonb_build_object('mailbox_id', r.id, 'action', 'changed', 'status', v_status,
                              'previous_status', r.status);
  end if;
  return jsonb_build_object('mailbox_id', r.id, 'action', 'confirmed', 'status', v_status,
                            'previous_status', r.status);
end
$$;

-- Mailbox events (email_account_*): match by data.sender_email.id within the workspace, else by email, so a
-- webhook updates the row the poll wrote (same workspace now that the instance comes from configuration). A
-- mailbox not cached at all is created under its (workspace, sender id), the key the poll upserts on, so the poll
-- later updates that same row. Statuses in any case; pending_move / pending_deletion as the API names them.
create or replace function public._apply_mailbox_event(
  p_workspace_id uuid,
  p_event_type text,
  p_sender jsonb,
  p_at timestamptz,
  p_delivery_id bigint
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_sender jsonb := case when jsonb_typeof(p_sender) = 'object' then p_sender else '{}'::jsonb end;
  v_sender_id bigint := public._try_bigint(v_sender ->> 'id');
  v_email text := lower(public.clean_label(v_sender ->> 'email'));
  v_target text;
  v_id uuid;
  v_undeleted boolean := false;
  r public.sender_emails_cache;
begin
  if v_sender_id is null and v_email is null then
    raise exception '% needs data.sender_email.id or data.sender_email.email', p_event_type using errcode = '22023';
  end if;
  v_target := case p_event_type
    when 'email_account_disconnected' then 'Disconnected'
    when 'email_account_reconnected' then 'Connected'
    when 'email_account_added' then coalesce(public.mailbox_status_label(v_sender ->> 'status'), 'Connected')
  end;

  if v_sender_id is not null then
    select * into r from public.sender_emails_cache s
    where s.workspace_id = p_workspace_id and s.bison_sender_id = v_sender_id
    for no key update;
  end if;
  if r.id is null and v_email is not null then
    -- with a sender id given, a deleted row of the same address is another (older) Bison mailbox
    select * into r from public.sender_emails_cache s
    where s.workspace_id = p_workspace_id and s.email_address = v_email
      and (v_sender_id is null or s.deleted_at is null)
    order by (s.deleted_at is null) desc, s.updated_at desc
    limit 1
    for no key update;
  end if;

  if p_event_type = 'email_account_removed' then
    if r.id is null then
      return jsonb_build_object('kind', 'mailbox', 'action', 'not_found', 'bison_sender_id', v_sender_id,
                                'email', v_email);
    end if;
    if r.deleted_at is null and (r.status_observed_at is null or p_at >= r.status_observed_at) then
      update public.sender_emails_cache s set deleted_at = p_at where s.id = r.id;
      return jsonb_build_object('kind', 'mailbox', 'mailbox_id', r.id, 'action', 'deleted');
    end if;
    return jsonb_build_object('kind', 'mailbox', 'mailbox_id', r.id, 'action', 'stale');
  end if;

  if r.id is null then
    if v_sender_id is null or v_email is null then
      return jsonb_build_object('kind', 'mailbox', 'action', 'not_found', 'bison_sender_id', v_sender_id,
                                'email', v_email);
    end if;
    insert into public.sender_emails_cache (workspace_id, bison_sender_id, email_address, account_name, status,
                                            status_changed_at, status_observed_at, status_source)
    values (p_workspace_id, v_sender_id, v_email, public.clean_label(v_sender ->> 'name'), v_target,
            p_at, p_at, 'webhook')
    on conflict (workspace_id, bison_sender_id) do nothing
    returning id into v_id;
    if v_id is not null then
      insert into public.mailbox_status_history
        (workspace_id, bison_sender_id, email_address, old_status, new_status, source, event_at, delivery_id)
      values (p_workspace_id, v_sender_id, v_email, null, v_target, 'webhook', p_at, p_delivery_id);
      return jsonb_build_object('kind', 'mailbox', 'mailbox_id', v_id, 'action', 'inserted', 'status', v_target);
    end if;
    select * into strict r from public.sender_emails_cache s
    where s.workspace_id = p_workspace_id and s.bison_sender_id = v_sender_id
    for no key update;
  end if;

  if p_event_type = 'email_account_added' and r.deleted_at is not null and r.deleted_at < p_at then
    update public.sender_emails_cache s set deleted_at = null where s.id = r.id;
    v_undeleted := true;
  end if;
  return jsonb_build_object('kind', 'mailbox', 'undeleted', v_undeleted)
         || public.apply_mailbox_status(r.id, v_target, 'webhook', p_at, p_delivery_id);
end
$$;

revoke all on function public._apply_mailbox_event(uuid, text, jsonb, timestamptz, bigint)
  from public, anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Ledger: instance_url as information, bounded labels, authentication that writes nothing on refusal
-- ---------------------------------------------------------------------------------------------------------------

alter table public.webhook_deliveries add column if not exists instance_url text;
comment on column public.webhook_deliveries.instance_url is
  'event.instance_url as the delivery carried it (information only, at most 500 characters): the instance is '
  'the configured one (see the instance column), never this value.';
grant select (instance_url) on table public.webhook_deliveries to authenticated;

-- The event type as the ledger stores it: trimmed, lower-case, at most 100 characters (the payload keeps it whole).
create or replace function public._ledger_event_type(p_event_type text)
returns text
language sql
immutable
set search_path = ''
as $$
  select lower(public.clean_label(pg_catalog.left(public.clean_label(p_event_type), 100)))
$$;

revoke all on function public._ledger_event_type(text) from public, anon, authenticated, service_role;

drop function if exists public.ingest_delivery(text, text, bigint, text, text, jsonb, timestamptz, numeric, text);

create or replace function public.ingest_delivery(
  p_dedup_key text,
  p_instance text,
  p_bison_workspace_id bigint,
  p_workspace_name text,
  p_event_type text,
  p_payload jsonb,
  p_received_at timestamptz default now(),
  p_processing_ms numeric default null,
  p_token_hash text default null,
  p_legacy_keys text[] default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_key text := public.clean_label(p_dedup_key);
  v_type text := public._ledger_event_type(p_event_type);
  v_instance text := lower(public.clean_label(p_instance));
  v_at timestamptz := coalesce(p_received_at, pg_catalog.now());
  v_instance_url text;
  v_ws uuid;
  v_id bigint;
  v_orig public.webhook_deliveries;
  v_retry jsonb;
  v_result jsonb;
  v_orig_lead jsonb;
begin
  -- Per-workspace token (the caller passes its sha256; null = already authenticated, e.g. the global token).
  -- A token that does not belong to this exact workspace writes nothing at all: no ledger row, no activity, no
  -- workspace. The caller counts the refusal (metrics, log); nothing here is attributed to a workspace a
  -- request named without proving it may.
  if p_token_hash is not null and not exists (
    select 1
    from public.workspace_credentials c
    join public.workspaces w on w.id = c.workspace_id
    where c.webhook_token_hash = lower(p_token_hash)
      and w.instance = v_instance and w.bison_workspace_id = p_bison_workspace_id
  ) then
    return jsonb_build_object('status', 'rejected', 'error', 'invalid webhook token');
  end if;
  if v_key is null then
    raise exception 'dedup key is required' using errcode = '22023';
  end if;
  if pg_catalog.length(v_key) > 500 then
    raise exception 'dedup key longer than 500 characters' using errcode = '22023';
  end if;
  if v_type is null then
    raise exception 'event type is required (event.type)' using errcode = '22023';
  end if;
  if jsonb_typeof(p_payload) is distinct from 'object' then
    raise exception 'payload must be the JSON envelope object {"event":{...},"data":{...}}' using errcode = '22023';
  end if;
  v_instance_url := pg_catalog.left(public.clean_label(p_payload -> 'event' ->> 'instance_url'), 500);

  v_ws := public._ensure_workspace(v_instance, p_bison_workspace_id, p_workspace_name);

  -- a delivery first recorded under an earlier key scheme: its retries are repeats of that row
  if p_legacy_keys is not null then
    select * into v_orig from public.webhook_deliveries w
    where w.dedup_key = any (p_legacy_keys) and w.dedup_key is distinct from v_key
    order by w.id limit 1;
  end if;

  if v_orig.id is null then
    -- The unique index decides which concurrent copy is first; later copies wait here for it to commit.
    insert into public.webhook_deliveries
      (dedup_key, workspace_id, instance, instance_url, bison_workspace_id, event_type, status, processing_ms,
       received_at, payload)
    values (v_key, v_ws, v_instance, v_instance_url, p_bison_workspace_id, v_type, 'ignored', p_processing_ms,
            v_at, p_payload)
    on conflict (dedup_key) do nothing
    returning id into v_id;

    if v_id is not null then
      -- only a first delivery may rename: a retried copy can carry a name from before a rename
      perform public._rename_workspace(v_ws, p_workspace_name);
      v_result := public._apply_delivery_effects(v_id);
      update public.webhook_deliveries w
      set processing_ms = round(coalesce(p_processing_ms, 0)
                                + extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000, 3)
      where w.id = v_id;
      perform public._touch_activity(v_ws, v_type, v_result ->> 'status', null, v_at);
      return v_result;
    end if;

    select * into strict v_orig from public.webhook_deliveries w where w.dedup_key = v_key;
  end if;

  v_orig_lead := (select e from jsonb_array_elements(coalesce(v_orig.effects, '[]'::jsonb)) e
                  where e ->> 'kind' = 'lead' limit 1);
  if v_orig.status = 'failed' and v_orig.duplicate_of is null then
    -- the sender retried a delivery we failed to apply: apply it now (at most once, row-locked)
    v_retry := public._apply_delivery_effects(v_orig.id);
  end if;
  insert into public.webhook_deliveries
    (duplicate_of, workspace_id, instance, instance_url, bison_workspace_id, event_type, status, processing_ms,
     received_at)
  values (v_orig.id, v_ws, v_instance, v_instance_url, p_bison_workspace_id, v_type, 'duplicate',
          round(coalesce(p_processing_ms, 0) + extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000,
                3),
          v_at)
  returning id into v_id;
  perform public._touch_activity(v_ws, v_type, 'duplicate', null, v_at);
  return jsonb_strip_nulls(jsonb_build_object('lead_id', coalesce(v_retry ->> 'lead_id', v_orig_lead ->> 'lead_id')))
         || jsonb_build_object('status', 'duplicate', 'delivery_id', v_id, 'duplicate_of', v_orig.id,
                               'workspace_id', v_ws, 'event_type', v_type,
                               'original_status', coalesce(v_retry ->> 'status', v_orig.status),
                               'retried', v_retry is not null,
                               'effects', coalesce(v_retry -> 'effects', '[]'::jsonb));
end
$$;

comment on function public.ingest_delivery(text, text, bigint, text, text, jsonb, timestamptz, numeric, text, text[])
  is 'One call per webhook delivery, one transaction: find/create the workspace (instance, bison id), record the '
     'delivery in the ledger (unique dedup_key; p_legacy_keys: keys of earlier schemes that also identify it), '
     'apply its effects only if it is the first delivery of that key, store processing_ms = p_processing_ms '
     '(time spent before the call) + time in this call. With p_token_hash that is not this workspace''s token: '
     '{"status":"rejected"} and nothing written. Missing required fields -> 22023 (nothing written). '
     'service_role only.';

create or replace function public.record_failed_delivery(
  p_dedup_key text,
  p_instance text,
  p_bison_workspace_id bigint,
  p_workspace_name text,
  p_event_type text,
  p_payload jsonb,
  p_error text,
  p_received_at timestamptz default now(),
  p_processing_ms numeric default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_key text := public.clean_label(p_dedup_key);
  v_type text := coalesce(public._ledger_event_type(p_event_type), 'unknown');
  v_at timestamptz := coalesce(p_received_at, pg_catalog.now());
  v_instance text := lower(public.clean_label(p_instance));
  v_error text := pg_catalog.left(p_error, 2000);
  v_instance_url text := case when jsonb_typeof(p_payload -> 'event') = 'object'
                              then pg_catalog.left(public.clean_label(p_payload -> 'event' ->> 'instance_url'), 500)
                         end;
  v_ws uuid;
  v_id bigint;
  v_orig bigint;
begin
  if pg_catalog.length(v_key) > 500 then
    v_key := null;  -- cannot be indexed: recorded without a key (replayable by id)
  end if;
  if pg_catalog.length(v_instance) > 253 then
    v_instance := null;
  end if;
  if v_instance is not null and p_bison_workspace_id is not null then
    v_ws := public._ensure_workspace(v_instance, p_bison_workspace_id, p_workspace_name);
  end if;
  if v_key is not null then
    insert into public.webhook_deliveries (dedup_key, workspace_id, instance, instance_url, bison_workspace_id,
                                           event_type, status, processing_ms, error, received_at, payload)
    values (v_key, v_ws, v_instance, v_instance_url, p_bison_workspace_id, v_type, 'failed', p_processing_ms,
            v_error, v_at, p_payload)
    on conflict (dedup_key) do nothing
    returning id into v_id;
    if v_id is null then
      select w.id into strict v_orig from public.webhook_deliveries w where w.dedup_key = v_key;
    end if;
  end if;
  if v_id is null then
    insert into public.webhook_deliveries (duplicate_of, workspace_id, instance, instance_url, bison_workspace_id,
                                           event_type, status, processing_ms, error, received_at, payload)
    values (v_orig, v_ws, v_instance, v_instance_url, p_bison_workspace_id, v_type, 'failed', p_processing_ms,
            v_error, v_at, case when v_orig is null then p_payload end)
    returning id into v_id;
  end if;
  perform public._touch_activity(v_ws, v_type, 'failed', v_error, v_at);
  return jsonb_strip_nulls(jsonb_build_object('status', 'failed', 'delivery_id', v_id, 'duplicate_of', v_orig,
                                              'workspace_id', v_ws));
end
$$;

revoke all on function
  public.ingest_delivery(text, text, bigint, text, text, jsonb, timestamptz, numeric, text, text[]),
  public.record_failed_delivery(text, text, bigint, text, text, jsonb, text, timestamptz, numeric)
  from public, anon, authenticated;
grant execute on function
  public.ingest_delivery(text, text, bigint, text, text, jsonb, timestamptz, numeric, text, text[]),
  public.record_failed_delivery(text, text, bigint, text, text, jsonb, text, timestamptz, numeric)
  to service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Health: only deliveries that passed authentication count (rejections of earlier versions are shown apart)
-- and the predecessor's columns are added at the end.
-- ---------------------------------------------------------------------------------------------------------------

create or replace view public.webhook_health
with (security_invoker = true)
as
select
  w.id as workspace_id,
  w.name as workspace_name,
  (select max(d.received_at) from public.webhook_deliveries d
    where d.workspace_id = w.id and d.status <> 'rejected') as last_delivery_at,
  s.deliveries_24h,
  s.applied_24h,
  s.ignored_24h,
  s.duplicate_24h,
  s.failed_24h,
  s.rejected_24h,
  r.success_rate_24h,
  r.success_rate_24h >= 95 as is_healthy,
  a.last_event_type,
  a.last_status,
  a.last_error,
  w.active,
  -- the predecessor's names
  (select max(d.received_at) from public.webhook_deliveries d
    where d.workspace_id = w.id and d.status <> 'rejected') as last_webhook_at,
  s.deliveries_24h::integer as webhook_count_24h,
  a.last_error as last_error_message
from public.workspaces w
cross join lateral (
  select
    count(*) filter (where d.status <> 'rejected') as deliveries_24h,
    count(*) filter (where d.status = 'applied') as applied_24h,
    count(*) filter (where d.status = 'ignored') as ignored_24h,
    count(*) filter (where d.status = 'duplicate') as duplicate_24h,
    count(*) filter (where d.status = 'failed') as failed_24h,
    count(*) filter (where d.status = 'rejected') as rejected_24h
  from public.webhook_deliveries d
  where d.workspace_id = w.id and d.received_at > now() - interval '24 hours'
) s
cross join lateral (
  select case when s.deliveries_24h = 0 then 100.00
              else round((s.applied_24h + s.ignored_24h + s.duplicate_24h)::numeric / s.deliveries_24h * 100, 2)
         end as success_rate_24h
) r
left join public.webhook_activity a on a.workspace_id = w.id;

comment on view public.webhook_health is
  'Per workspace over the rolling 24 h before now(), authenticated deliveries only: success_rate_24h = (applied '
  '+ ignored + duplicate) / deliveries * 100 (100 when there were none); is_healthy = success_rate_24h >= 95. '
  'last_webhook_at, webhook_count_24h and last_error_message carry the predecessor''s names. security_invoker: '
  'RLS of the caller applies.';

-- A ledger row's payload for whoever may read the ledger's payload column (service_role, the owner), else null.
-- The view below calls it instead of naming the column: a security_invoker view is checked for every base column
-- it names, so naming payload would refuse members the whole view, not just that column. The effective role is
-- the `role` setting (SET ROLE, as PostgREST does), else the session user; a caller cannot raise either.
create or replace function public.webhook_delivery_payload(p_delivery_id bigint)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select d.payload
  from public.webhook_deliveries d
  where d.id = p_delivery_id
    and pg_catalog.has_column_privilege(
          case when pg_catalog.current_setting('role') = 'none' then session_user::text
               else pg_catalog.current_setting('role') end,
          'public.webhook_deliveries', 'payload', 'SELECT')
$$;

revoke all on function public.webhook_delivery_payload(bigint) from public, anon;
grant execute on function public.webhook_delivery_payload(bigint) to authenticated, service_role;

-- The predecessor's delivery log, as a view over the ledger (one row per delivery).
create or replace view public.webhook_delivery_log
with (security_invoker = true)
as
select
  d.id,
  d.event_type,
  w.name as workspace_name,
  public.webhook_delivery_payload(d.id) as payload,
  round(d.processing_ms)::integer as processing_time_ms,
  d.status in ('applied', 'ignored', 'duplicate') as success,
  d.error as error_message,
  d.received_at as created_at,
  d.workspace_id,
  d.status,
  d.duplicate_of
from public.webhook_deliveries d
left join public.workspaces w on w.id = d.workspace_id
where d.status <> 'rejected';

comment on view public.webhook_delivery_log is
  'The predecessor''s webhook_delivery_log over the ledger: id, event_type, workspace_name, payload (service_role '
  'only), processing_time_ms, success (applied, ignored or duplicate), error_message, created_at; plus '
  'workspace_id, status, duplicate_of. Authenticated deliveries only. security_invoker: RLS of the caller applies.';

revoke all on table public.webhook_health, public.webhook_delivery_log from public, anon, authenticated;
grant select on table public.webhook_health, public.webhook_delivery_log to service_role;
grant select on table public.webhook_health to authenticated;
-- members: every column but the payload (lead PII stays in client_leads, which they may read anyway)
grant select (id, event_type, workspace_name, processing_time_ms, success, error_message, created_at,
              workspace_id, status, duplicate_of)
  on table public.webhook_delivery_log to authenticated;

-- A refused delivery (kept for callers of record_rejected_delivery; the service no longer records refusals): the
-- row is kept for forensics but touches no activity, so health and silence alerts reflect authenticated traffic
-- only.
create or replace function public._record_rejected(
  p_event_type text,
  p_workspace_id uuid,
  p_instance text,
  p_bison_workspace_id bigint,
  p_error text,
  p_received_at timestamptz
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_type text := coalesce(public._ledger_event_type(p_event_type), 'unknown');
  v_at timestamptz := coalesce(p_received_at, pg_catalog.now());
  v_ws uuid;
  v_id bigint;
begin
  select w.id into v_ws from public.workspaces w where w.id = p_workspace_id;  -- unknown id -> null
  insert into public.webhook_deliveries (workspace_id, instance, bison_workspace_id, event_type, status, error,
                                         received_at)
  values (v_ws, pg_catalog.left(lower(public.clean_label(p_instance)), 253), p_bison_workspace_id, v_type,
          'rejected', pg_catalog.left(p_error, 500), v_at)
  returning id into v_id;
  return v_id;
end
$$;

revoke all on function public._record_rejected(text, uuid, text, bigint, text, timestamptz)
  from public, anon, authenticated, service_role;
