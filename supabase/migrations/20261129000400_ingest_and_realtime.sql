-- bisonsync 4/4: webhook delivery ledger, exactly-once ingest, replay, health, realtime publication.

create table public.webhook_deliveries (
  id                 bigint generated always as identity primary key,
  -- deterministic key derived by the service; set on the FIRST delivery of an event only
  dedup_key          text unique,
  -- for repeats: the first delivery with the same key
  duplicate_of       bigint references public.webhook_deliveries (id),
  -- null for a rejected delivery whose workspace is unknown
  workspace_id       uuid references public.workspaces (id) on delete set null,
  instance           text,
  bison_workspace_id bigint,
  event_type         text not null check (event_type = lower(event_type)),
  status             text not null check (status in ('applied', 'duplicate', 'ignored', 'rejected', 'failed')),
  processing_ms      numeric,
  error              text,
  -- what applying the delivery did: [{kind: metric|lead|reply|mailbox, ...}]
  effects            jsonb,
  received_at        timestamptz not null default now(),
  applied_at         timestamptz,
  replay_count       integer not null default 0,
  last_replayed_at   timestamptz,
  -- the full envelope {"event":{...},"data":{...}}, kept for replay; nulled by prune_ledger() after retention
  payload            jsonb,
  constraint webhook_deliveries_duplicate_check check (status <> 'duplicate' or duplicate_of is not null),
  constraint webhook_deliveries_repeat_check check (
    duplicate_of is null or (dedup_key is null and status in ('duplicate', 'failed'))
  )
);

comment on table public.webhook_deliveries is
  'Ledger: one row per webhook delivery. The first delivery of a dedup_key carries the key and its effects are '
  'applied at most once (status applied; ignored = accepted without effects, replayable; failed = recorded '
  'failure, retried on the next delivery of the key or by replay_delivery). Repeats: status duplicate (or '
  'failed), dedup_key null, duplicate_of = the first. 401s: status rejected, no payload.';

-- INCLUDE (status): webhook_health counts a workspace's 24 h by index-only scan
create index webhook_deliveries_workspace_received_idx
  on public.webhook_deliveries (workspace_id, received_at desc) include (status);
create index webhook_deliveries_status_received_idx on public.webhook_deliveries (status, received_at);
create index webhook_deliveries_duplicate_of_idx on public.webhook_deliveries (duplicate_of)
  where duplicate_of is not null;
create index webhook_deliveries_payload_received_idx on public.webhook_deliveries (received_at)
  where payload is not null;

alter table public.mailbox_status_history
  add constraint mailbox_status_history_delivery_fk
  foreign key (delivery_id) references public.webhook_deliveries (id) on delete set null;

-- Per-workspace last delivery, updated by every ingest/record call: a table so realtime subscribers see health
-- change (views emit nothing).
create table public.webhook_activity (
  workspace_id     uuid primary key references public.workspaces (id) on delete cascade,
  last_delivery_at timestamptz not null,
  last_event_type  text,
  last_status      text,
  last_error       text,
  deliveries_total bigint not null default 0,
  updated_at       timestamptz not null default now()
);

create function public._touch_activity(
  p_workspace_id uuid,
  p_event_type text,
  p_status text,
  p_error text,
  p_at timestamptz
)
returns void
language sql
set search_path = ''
as $$
  insert into public.webhook_activity as a
    (workspace_id, last_delivery_at, last_event_type, last_status, last_error, deliveries_total)
  select p_workspace_id, p_at, p_event_type, p_status, p_error, 1
  where p_workspace_id is not null
  on conflict (workspace_id) do update set
    deliveries_total = a.deliveries_total + 1,
    last_delivery_at = greatest(a.last_delivery_at, excluded.last_delivery_at),
    last_event_type  = case when excluded.last_delivery_at >= a.last_delivery_at
                            then excluded.last_event_type else a.last_event_type end,
    last_status      = case when excluded.last_delivery_at >= a.last_delivery_at
                            then excluded.last_status else a.last_status end,
    last_error       = case when excluded.last_delivery_at >= a.last_delivery_at
                            then excluded.last_error else a.last_error end,
    updated_at       = pg_catalog.now()
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Effects
-- ---------------------------------------------------------------------------------------------------------------

-- Mailbox events (email_account_*): match by data.sender_email.id within the workspace, else by email; event time
-- is the delivery's received_at; ordering by mailbox_status_wins(). Returns one effect object.
create function public._apply_mailbox_event(
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
    when 'email_account_added' then
      case when v_sender ->> 'status' in ('Connected', 'Disconnected', 'Failed', 'Not connected')
           then v_sender ->> 'status' else 'Connected' end
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
    -- inserted concurrently: lock it and apply as an observation
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

-- Apply the effects of one first delivery (status ignored or failed) exactly once: the row is locked, an
-- already-applied row is returned unchanged. Shared by ingest_delivery (new deliveries, retried failures) and
-- replay_delivery. Validation errors raise 22023 (the caller's transaction rolls back).
create function public._apply_delivery_effects(p_delivery_id bigint)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  d public.webhook_deliveries;
  v_data jsonb;
  v_lead jsonb;
  v_reply jsonb;
  v_campaign jsonb;
  v_sender jsonb;
  v_lead_effect jsonb;
  v_effects jsonb := '[]'::jsonb;
  v_status text := 'applied';
  v_reason text;
  v_lead_result jsonb;
begin
  select * into d from public.webhook_deliveries w where w.id = p_delivery_id for no key update;
  if not found then
    raise exception 'unknown delivery %', p_delivery_id using errcode = 'P0002';
  end if;
  if d.status = 'applied' then
    return jsonb_build_object('status', 'applied', 'delivery_id', d.id, 'workspace_id', d.workspace_id,
                              'event_type', d.event_type, 'effects', coalesce(d.effects, '[]'::jsonb),
                              'already_applied', true);
  end if;
  if d.status not in ('ignored', 'failed') or d.duplicate_of is not null then
    raise exception 'delivery % has status % and cannot be applied (only first deliveries that are ignored or '
                    'failed can)', d.id, d.status using errcode = '22023';
  end if;
  if d.payload is null then
    raise exception 'delivery % has no payload (pruned after retention or never stored)', d.id
      using errcode = '22023';
  end if;
  if d.workspace_id is null then
    raise exception 'delivery % has no workspace', d.id using errcode = '22023';
  end if;

  v_data := case when jsonb_typeof(d.payload -> 'data') = 'object' then d.payload -> 'data' else '{}'::jsonb end;
  v_lead := case when jsonb_typeof(v_data -> 'lead') = 'object' then v_data -> 'lead' end;
  v_reply := case when jsonb_typeof(v_data -> 'reply') = 'object' then v_data -> 'reply' end;
  v_campaign := case when jsonb_typeof(v_data -> 'campaign') = 'object' then v_data -> 'campaign' end;
  v_sender := case when jsonb_typeof(v_data -> 'sender_email') = 'object' then v_data -> 'sender_email' end;

  if d.event_type in ('lead_replied', 'lead_interested', 'email_bounced', 'lead_unsubscribed')
     and public._try_bigint(v_lead ->> 'id') is null and public.clean_label(v_lead ->> 'email') is null then
    raise exception '% needs data.lead.id or data.lead.email (dedup key %)', d.event_type, d.dedup_key
      using errcode = '22023';
  end if;

  case d.event_type
    when 'email_sent' then
      v_effects := v_effects || (jsonb_build_object('kind', 'metric')
                   || public._increment_metric(d.workspace_id, 'emails_sent', 1, d.received_at));

    when 'lead_replied', 'lead_interested' then
      v_effects := v_effects || (jsonb_build_object('kind', 'metric')
                   || public._increment_metric(d.workspace_id,
                                               case d.event_type when 'lead_replied' then 'replies'
                                                                 else 'interested' end,
                                               1, d.received_at));
      v_lead_effect := public._upsert_client_lead(
        d.workspace_id, v_lead,
        case d.event_type when 'lead_replied' then 'replied' else 'interested' end,
        d.received_at, v_reply, v_campaign, v_sender, null, true);
      v_effects := v_effects || (jsonb_build_object('kind', 'lead') || v_lead_effect);
      if v_reply is not null then
        v_effects := v_effects || (jsonb_build_object('kind', 'reply')
                     || public._upsert_lead_reply(d.workspace_id, (v_lead_effect ->> 'lead_id')::uuid, v_lead,
                                                  v_reply, v_campaign, v_sender,
                                                  d.event_type = 'lead_interested', d.received_at));
      end if;

    when 'email_bounced', 'lead_unsubscribed' then
      v_effects := v_effects || (jsonb_build_object('kind', 'metric')
                   || public._increment_metric(d.workspace_id,
                                               case d.event_type when 'email_bounced' then 'bounced'
                                                                 else 'unsubscribed' end,
                                               1, d.received_at));
      -- update the lead if we know it; a bounce/unsubscribe of an unknown lead creates none
      v_effects := v_effects || (jsonb_build_object('kind', 'lead')
                   || public._upsert_client_lead(
                        d.workspace_id, v_lead,
                        case d.event_type when 'email_bounced' then 'bounced' else 'unsubscribed' end,
                        d.received_at, null, v_campaign, null, null, false));

    when 'email_account_disconnected', 'email_account_reconnected', 'email_account_added',
         'email_account_removed' then
      v_effects := v_effects || public._apply_mailbox_event(d.workspace_id, d.event_type, v_sender,
                                                            d.received_at, d.id);
      if v_effects -> 0 ->> 'action' = 'not_found' then
        v_status := 'ignored';  -- nothing to apply yet; replayable once the poll has cached the mailbox
        v_reason := 'mailbox not in cache';
      end if;

    else
      v_status := 'ignored';
      v_reason := 'no handler for event type';
  end case;

  update public.webhook_deliveries w set
    status = v_status,
    effects = v_effects,  -- `error` keeps the text of an earlier failure
    applied_at = case when v_status = 'applied' then pg_catalog.clock_timestamp() end
  where w.id = d.id;

  select e into v_lead_result from jsonb_array_elements(v_effects) e where e ->> 'kind' = 'lead' limit 1;
  return jsonb_strip_nulls(jsonb_build_object('status', v_status, 'delivery_id', d.id,
                                              'workspace_id', d.workspace_id, 'event_type', d.event_type,
                                              'reason', v_reason, 'lead_id', v_lead_result ->> 'lead_id',
                                              'lead_action', v_lead_result ->> 'action'))
         || jsonb_build_object('effects', v_effects);
end
$$;

-- ---------------------------------------------------------------------------------------------------------------
-- Public ledger functions (service_role only)
-- ---------------------------------------------------------------------------------------------------------------

create function public.ingest_delivery(
  p_dedup_key text,
  p_instance text,
  p_bison_workspace_id bigint,
  p_workspace_name text,
  p_event_type text,
  p_payload jsonb,
  p_received_at timestamptz default now(),
  p_processing_ms numeric default null,
  p_token_hash text default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_key text := public.clean_label(p_dedup_key);
  v_type text := lower(public.clean_label(p_event_type));
  v_at timestamptz := coalesce(p_received_at, pg_catalog.now());
  v_ws uuid;
  v_id bigint;
  v_orig public.webhook_deliveries;
  v_retry jsonb;
  v_result jsonb;
  v_orig_lead jsonb;
begin
  -- Per-workspace token (the caller passes its sha256; null = already authenticated, e.g. the global token).
  -- Checked before anything else, and a refused delivery never creates a workspace.
  if p_token_hash is not null then
    select w.id into v_ws from public.workspaces w
    where w.instance = lower(public.clean_label(p_instance)) and w.bison_workspace_id = p_bison_workspace_id;
    if not exists (
      select 1 from public.workspace_credentials c
      where c.workspace_id = v_ws and c.webhook_token_hash = lower(p_token_hash)
    ) then
      v_id := public._record_rejected(v_type, v_ws, p_instance, p_bison_workspace_id, 'invalid webhook token', v_at);
      return jsonb_strip_nulls(jsonb_build_object('status', 'rejected', 'delivery_id', v_id, 'workspace_id', v_ws,
                                                  'event_type', coalesce(v_type, 'unknown'),
                                                  'error', 'invalid webhook token'));
    end if;
  end if;
  if v_key is null then
    raise exception 'dedup key is required' using errcode = '22023';
  end if;
  if v_type is null then
    raise exception 'event type is required (event.type)' using errcode = '22023';
  end if;
  if jsonb_typeof(p_payload) is distinct from 'object' then
    raise exception 'payload must be the JSON envelope object {"event":{...},"data":{...}}' using errcode = '22023';
  end if;

  v_ws := public._ensure_workspace(p_instance, p_bison_workspace_id, p_workspace_name);

  -- The unique index decides which concurrent copy is first; later copies wait here for it to commit.
  insert into public.webhook_deliveries
    (dedup_key, workspace_id, instance, bison_workspace_id, event_type, status, processing_ms, received_at, payload)
  values (v_key, v_ws, lower(public.clean_label(p_instance)), p_bison_workspace_id, v_type, 'ignored',
          p_processing_ms, v_at, p_payload)
  on conflict (dedup_key) do nothing
  returning id into v_id;

  if v_id is not null then
    -- only a first delivery may rename: a retried copy can carry a name from before a rename
    perform public._rename_workspace(v_ws, p_workspace_name);
    v_result := public._apply_delivery_effects(v_id);
    perform public._touch_activity(v_ws, v_type, v_result ->> 'status', null, v_at);
    return v_result;
  end if;

  select * into strict v_orig from public.webhook_deliveries w where w.dedup_key = v_key;
  v_orig_lead := (select e from jsonb_array_elements(coalesce(v_orig.effects, '[]'::jsonb)) e
                  where e ->> 'kind' = 'lead' limit 1);
  if v_orig.status = 'failed' then
    -- the sender retried a delivery we failed to apply: apply it now (at most once, row-locked)
    v_retry := public._apply_delivery_effects(v_orig.id);
  end if;
  insert into public.webhook_deliveries
    (duplicate_of, workspace_id, instance, bison_workspace_id, event_type, status, processing_ms, received_at)
  values (v_orig.id, v_ws, lower(public.clean_label(p_instance)), p_bison_workspace_id, v_type, 'duplicate',
          p_processing_ms, v_at)
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

comment on function public.ingest_delivery(text, text, bigint, text, text, jsonb, timestamptz, numeric, text) is
  'One call per webhook delivery, one transaction: find/create the workspace, record the delivery in the ledger '
  '(unique dedup_key), apply its effects only if it is the first delivery of that key. Returns '
  '{"status":"applied"|"ignored"|"duplicate"|"rejected","delivery_id",...}. With p_token_hash, the delivery is '
  'rejected (recorded, nothing applied) unless it matches the workspace''s webhook_token_hash. Missing required '
  'fields -> 22023 (nothing written). service_role only.';

-- Record a delivery the service could not ingest (ingest_delivery raised): kept with its payload so the next
-- delivery of the same key retries it and replay_delivery can apply it later.
create function public.record_failed_delivery(
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
  v_type text := coalesce(lower(public.clean_label(p_event_type)), 'unknown');
  v_at timestamptz := coalesce(p_received_at, pg_catalog.now());
  v_instance text := lower(public.clean_label(p_instance));
  v_ws uuid;
  v_id bigint;
  v_orig bigint;
begin
  if v_instance is not null and p_bison_workspace_id is not null then
    v_ws := public._ensure_workspace(v_instance, p_bison_workspace_id, p_workspace_name);
  end if;
  if v_key is not null then
    insert into public.webhook_deliveries (dedup_key, workspace_id, instance, bison_workspace_id, event_type,
                                           status, processing_ms, error, received_at, payload)
    values (v_key, v_ws, v_instance, p_bison_workspace_id, v_type, 'failed', p_processing_ms, p_error, v_at,
            p_payload)
    on conflict (dedup_key) do nothing
    returning id into v_id;
    if v_id is null then
      select w.id into strict v_orig from public.webhook_deliveries w where w.dedup_key = v_key;
    end if;
  end if;
  if v_id is null then
    insert into public.webhook_deliveries (duplicate_of, workspace_id, instance, bison_workspace_id, event_type,
                                           status, processing_ms, error, received_at, payload)
    values (v_orig, v_ws, v_instance, p_bison_workspace_id, v_type, 'failed', p_processing_ms, p_error, v_at,
            case when v_orig is null then p_payload end)
    returning id into v_id;
  end if;
  perform public._touch_activity(v_ws, v_type, 'failed', p_error, v_at);
  return jsonb_strip_nulls(jsonb_build_object('status', 'failed', 'delivery_id', v_id, 'duplicate_of', v_orig,
                                              'workspace_id', v_ws));
end
$$;

-- A delivery refused for its token (HTTP 401): counted for health, no payload stored. The claimed instance and
-- bison workspace id are kept when known (forensics); the workspace id only when it exists.
create function public._record_rejected(
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
  v_type text := coalesce(lower(public.clean_label(p_event_type)), 'unknown');
  v_at timestamptz := coalesce(p_received_at, pg_catalog.now());
  v_ws uuid;
  v_id bigint;
begin
  select w.id into v_ws from public.workspaces w where w.id = p_workspace_id;  -- unknown id -> null
  insert into public.webhook_deliveries (workspace_id, instance, bison_workspace_id, event_type, status, error,
                                         received_at)
  values (v_ws, lower(public.clean_label(p_instance)), p_bison_workspace_id, v_type, 'rejected', p_error, v_at)
  returning id into v_id;
  perform public._touch_activity(v_ws, v_type, 'rejected', p_error, v_at);
  return v_id;
end
$$;

create function public.record_rejected_delivery(
  p_event_type text,
  p_workspace_id uuid,
  p_error text,
  p_received_at timestamptz default now()
)
returns bigint
language sql
security definer
set search_path = ''
as $$
  select public._record_rejected(p_event_type, p_workspace_id, null, null, p_error, p_received_at)
$$;

create function public.replay_delivery(p_delivery_id bigint)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  d public.webhook_deliveries;
  v_result jsonb;
begin
  select * into d from public.webhook_deliveries w where w.id = p_delivery_id for no key update;
  if not found then
    raise exception 'unknown delivery %', p_delivery_id using errcode = 'P0002';
  end if;
  if d.duplicate_of is not null then
    raise exception 'delivery % repeats delivery %: replay that one', d.id, d.duplicate_of using errcode = '22023';
  end if;
  if d.status = 'applied' then
    return jsonb_build_object('status', 'applied', 'delivery_id', d.id, 'workspace_id', d.workspace_id,
                              'event_type', d.event_type, 'effects', coalesce(d.effects, '[]'::jsonb),
                              'replayed', false);
  end if;
  v_result := public._apply_delivery_effects(d.id);
  update public.webhook_deliveries w
  set replay_count = w.replay_count + 1, last_replayed_at = pg_catalog.now()
  where w.id = d.id;
  return v_result || jsonb_build_object('replayed', true, 'previous_status', d.status);
end
$$;

comment on function public.replay_delivery(bigint) is
  'Re-apply an ignored or failed first delivery from its stored payload (e.g. after a new handler shipped); '
  'idempotent: an applied delivery is returned unchanged. service_role only.';

create function public.prune_ledger(p_now timestamptz default now())
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_days integer;
  v_count bigint;
begin
  select (s.value #>> '{}')::integer into v_days
  from public.bisonsync_settings s where s.key = 'ledger_payload_retention_days';
  v_days := coalesce(v_days, 90);
  update public.webhook_deliveries w set payload = null
  where w.payload is not null and w.received_at < p_now - pg_catalog.make_interval(days => v_days);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

comment on function public.prune_ledger(timestamptz) is
  'Null the payloads of deliveries older than bisonsync_settings.ledger_payload_retention_days (default 90); '
  'the rows stay so history, health and dedup stay right. Returns the number of payloads pruned.';

-- ---------------------------------------------------------------------------------------------------------------
-- Health over a true rolling 24 h window
-- ---------------------------------------------------------------------------------------------------------------

create view public.webhook_health
with (security_invoker = true)
as
select
  w.id as workspace_id,
  w.name as workspace_name,
  (select max(d.received_at) from public.webhook_deliveries d where d.workspace_id = w.id) as last_delivery_at,
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
  w.active
from public.workspaces w
cross join lateral (
  select
    count(*) as deliveries_24h,
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
  'Per workspace over the rolling 24 h before now(): success_rate_24h = (applied + ignored + duplicate) / all '
  'deliveries * 100 (100 when there were none); is_healthy = success_rate_24h >= 95. Silence is judged by the '
  'alert job from last_delivery_at. security_invoker: RLS of the caller applies.';

-- ---------------------------------------------------------------------------------------------------------------
-- RLS and grants
-- ---------------------------------------------------------------------------------------------------------------

alter table public.webhook_deliveries enable row level security;
alter table public.webhook_activity enable row level security;

create policy webhook_deliveries_member_read on public.webhook_deliveries
  for select to authenticated using (public.is_workspace_member(workspace_id));
create policy webhook_activity_member_read on public.webhook_activity
  for select to authenticated using (public.is_workspace_member(workspace_id));

revoke all on table public.webhook_deliveries, public.webhook_activity, public.webhook_health
  from public, anon, authenticated;
grant all on table public.webhook_deliveries, public.webhook_activity to service_role;
grant select on table public.webhook_health to service_role, authenticated;
grant select on table public.webhook_activity to authenticated;
-- members see their ledger rows without payloads (lead PII stays in client_leads, which they may read anyway)
grant select (id, dedup_key, duplicate_of, workspace_id, instance, bison_workspace_id, event_type, status,
              processing_ms, error, effects, received_at, applied_at, replay_count, last_replayed_at)
  on table public.webhook_deliveries to authenticated;
revoke all on sequence public.webhook_deliveries_id_seq from public, anon, authenticated;
grant usage, select on sequence public.webhook_deliveries_id_seq to service_role;

revoke all on function public._touch_activity(uuid, text, text, text, timestamptz),
  public._record_rejected(text, uuid, text, bigint, text, timestamptz),
  public._apply_mailbox_event(uuid, text, jsonb, timestamptz, bigint),
  public._apply_delivery_effects(bigint) from public, anon, authenticated, service_role;
revoke all on function
  public.ingest_delivery(text, text, bigint, text, text, jsonb, timestamptz, numeric, text),
  public.record_failed_delivery(text, text, bigint, text, text, jsonb, text, timestamptz, numeric),
  public.record_rejected_delivery(text, uuid, text, timestamptz),
  public.replay_delivery(bigint),
  public.prune_ledger(timestamptz)
  from public, anon, authenticated;
grant execute on function
  public.ingest_delivery(text, text, bigint, text, text, jsonb, timestamptz, numeric, text),
  public.record_failed_delivery(text, text, bigint, text, text, jsonb, text, timestamptz, numeric),
  public.record_rejected_delivery(text, uuid, text, timestamptz),
  public.replay_delivery(bigint),
  public.prune_ledger(timestamptz)
  to service_role;

-- ---------------------------------------------------------------------------------------------------------------
-- Realtime: every table a consumer watches, with full old rows on UPDATE/DELETE. Not published:
-- webhook_deliveries (big payloads; watch webhook_activity instead), workspace_credentials, settings.
-- ---------------------------------------------------------------------------------------------------------------

alter table public.workspaces replica identity full;
alter table public.client_metrics_daily replica identity full;
alter table public.client_leads replica identity full;
alter table public.lead_replies replica identity full;
alter table public.sender_emails_cache replica identity full;
alter table public.mailbox_status_history replica identity full;
alter table public.webhook_activity replica identity full;
alter table public.provider_performance_history replica identity full;

alter publication supabase_realtime add table
  public.workspaces,
  public.client_metrics_daily,
  public.client_leads,
  public.lead_replies,
  public.sender_emails_cache,
  public.mailbox_status_history,
  public.webhook_activity,
  public.provider_performance_history;
