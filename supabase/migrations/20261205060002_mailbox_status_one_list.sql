-- Mailbox statuses: one list.
--
-- The known statuses were written out in the status check, the canonicaliser, the webhook's status label, the
-- tie-break order of mailbox_status_wins (twice), the stats buckets and an error message. They now live in ONE
-- place, the call of define_mailbox_statuses() below, and everything else derives from it:
-- * mailbox_status_canonical(): a status whose words (case, spaces, '_' and '-' ignored) match a known status is
--   spelled as that status; any other non-empty status is kept as sent (trimmed, at most 64 characters); null
--   for null or blank. It is THE check of a stored status: sender_emails_cache (constraint
--   sender_emails_cache_status_known_check) and now mailbox_status_history (old_status / new_status; 'Deleted',
--   the old status of an undeleted mailbox, is kept as sent too).
-- * mailbox_status_label() (the webhook's variant, which turned unknown statuses into null and so into
--   'Connected') is dropped: an email_account_added event keeps an unknown status as sent, like the poll does,
--   so the webhook and the next poll agree.
-- * mailbox_status_wins() ranks statuses by their precedence (unknown: 0), get_account_status_stats() counts
--   `other` as "not in the list", apply_mailbox_status() names the list in its error.
-- Functions rather than a table: the canonicaliser runs in a check constraint and must stay immutable.

-- The list is an argument of ONE call below. bisonsync_private.define_mailbox_statuses(list) (re)creates the three
-- functions that know it, with the list compiled into them as constants: mailbox_statuses() (the list, readable),
-- mailbox_status_canonical() and mailbox_status_wins(). Compiled, not looked up: those two run several times per
-- mailbox in every sync page, in a check constraint and a trigger, and a lookup of the list in each call made a
-- sync page about twice as slow. To change the list, a migration calls define_mailbox_statuses() again.
create or replace function bisonsync_private.define_mailbox_statuses(p_statuses text[])
returns void
language plpgsql
set search_path = ''
as $def$
declare
  v_values text;
  v_spellings text;
  v_precedence text;
begin
  if p_statuses is null or cardinality(p_statuses) = 0 or array_position(p_statuses, null) is not null then
    raise exception 'a non-empty list of statuses is required' using errcode = '22023';
  end if;
  if (select count(distinct lower(pg_catalog.regexp_replace(s, '[\s_-]+', ' ', 'g'))) from unnest(p_statuses) s)
     <> cardinality(p_statuses)
     or exists (select 1 from unnest(p_statuses) s where btrim(s) = '' or s <> btrim(s) or length(s) > 64) then
    raise exception 'statuses must be trimmed, non-empty, at most 64 characters, and distinct ignoring case, '
                    'spaces, underscores and hyphens' using errcode = '22023';
  end if;
  -- precedence = position in the list: the last one wins a tie
  select string_agg(format('(%L, %s)', s, n), ', ' order by n desc),
         string_agg(format('when %L then %L', lower(pg_catalog.regexp_replace(s, '[\s_-]+', ' ', 'g')), s),
                    ' ' order by n),
         string_agg(format('when %L then %s', s, n), ' ' order by n desc)
    into v_values, v_spellings, v_precedence
  from unnest(p_statuses) with ordinality as t(s, n);

  execute format($f$
    create or replace function public.mailbox_statuses()
    returns table (status text, precedence integer)
    language sql
    immutable
    parallel safe
    set search_path = ''
    as $body$ values %s $body$
  $f$, v_values);

  execute format($f$
    create or replace function public.mailbox_status_canonical(p_status text)
    returns text
    language sql
    immutable
    parallel safe
    set search_path = ''
    as $body$
      select case lower(btrim(pg_catalog.regexp_replace(coalesce(p_status, ''), '[\s_-]+', ' ', 'g')))
        when '' then null
        %s
        else left(btrim(p_status), 64)
      end
    $body$
  $f$, v_spellings);

  execute format($f$
    create or replace function public.mailbox_status_wins(
      p_old_at timestamptz,
      p_old_source text,
      p_old_status text,
      p_new_at timestamptz,
      p_new_source text,
      p_new_status text
    )
    returns boolean
    language sql
    immutable
    parallel safe
    set search_path = ''
    as $body$
      select p_new_at is not null and (
        p_old_at is null
        or p_new_at > p_old_at
        or (p_new_at = p_old_at
            and (case p_new_source when 'poll' then 2 when 'webhook' then 1 else 0 end,
                 case public.mailbox_status_canonical(p_new_status) %2$s else 0 end)
              > (case p_old_source when 'poll' then 2 when 'webhook' then 1 else 0 end,
                 case public.mailbox_status_canonical(p_old_status) %2$s else 0 end))
      )
    $body$
  $f$, null, v_precedence);
end
$def$;

revoke all on function bisonsync_private.define_mailbox_statuses(text[])
  from public, anon, authenticated, service_role;

-- THE list, least to most severe: on a tie of time and source the more severe status wins.
select bisonsync_private.define_mailbox_statuses(
  array['Connected', 'Not connected', 'pending_move', 'pending_deletion', 'Failed', 'Disconnected']);

comment on function public.mailbox_statuses() is
  'The known mailbox statuses, as stored, with their precedence when two observations of the same time and '
  'source disagree (higher wins; a status not in this list ranks 0). Defined by '
  'bisonsync_private.define_mailbox_statuses().';

comment on function public.mailbox_status_canonical(text) is
  'One spelling per known mailbox status (see mailbox_statuses()), whatever the case, spaces, underscores or '
  'hyphens; any other status is kept as sent (trimmed, at most 64 characters); null for null or blank.';

create or replace function public.get_account_status_stats(p_workspace_id uuid default null)
returns table (
  total bigint,
  connected bigint,
  disconnected bigint,
  failed bigint,
  not_connected bigint,
  disconnect_rate numeric,
  pending_move bigint,
  pending_deletion bigint,
  other bigint
)
language sql
stable
set search_path = ''
as $$
  select
    count(*),
    count(*) filter (where m.status = 'Connected'),
    count(*) filter (where m.status = 'Disconnected'),
    count(*) filter (where m.status = 'Failed'),
    count(*) filter (where m.status = 'Not connected'),
    case when count(*) > 0
         then round((count(*) filter (where m.status in ('Disconnected', 'Failed')))::numeric / count(*) * 100, 2)
         else 0 end,
    count(*) filter (where m.status = 'pending_move'),
    count(*) filter (where m.status = 'pending_deletion'),
    count(*) filter (where m.status not in (select s.status from public.mailbox_statuses() s))
  from public.live_mailboxes(p_workspace_id) m
$$;

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
  r public.sender_emails_cache;
  v_status text := public.mailbox_status_canonical(p_status);
begin
  if v_status is null then
    raise exception 'a mailbox status is required' using errcode = '22023',
      detail = 'e.g. ' || (select string_agg(s.status, ', ' order by s.precedence)
                           from public.mailbox_statuses() s);
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

-- The webhook side: email_account_added keeps a status it does not know (canonicalised like the poll's).
create or replace function bisonsync_private._apply_mailbox_event(
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
  v_sender_id bigint := bisonsync_private._try_bigint(v_sender ->> 'id');
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
    when 'email_account_added' then coalesce(public.mailbox_status_canonical(v_sender ->> 'status'), 'Connected')
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

drop function if exists public.mailbox_status_label(text);

-- History rows carry canonical statuses too (checked for new rows; rows written before stay as they are).
alter table public.mailbox_status_history drop constraint if exists mailbox_status_history_status_canonical_check;
alter table public.mailbox_status_history add constraint mailbox_status_history_status_canonical_check
  check (old_status = public.mailbox_status_canonical(old_status)
         and new_status = public.mailbox_status_canonical(new_status)) not valid;

revoke all on function public.mailbox_statuses() from public, anon;
grant execute on function public.mailbox_statuses() to authenticated, service_role;
