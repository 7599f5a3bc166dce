-- Pricing and custom-variable aliases: data in tables, not rules in code.
--
-- 1. public.mailbox_pricing_rules: what a mailbox costs per month (measure 'price', USD) and how many emails it
--    may send per day (measure 'daily_volume'), by provider or reseller. mailbox_price() / mailbox_daily_volume()
--    take the FIRST rule of the measure (by position) whose pattern matches the lower-cased reseller or provider
--    ('equals' or 'contains') and whose min_domain_mailboxes (if any) the domain reaches; amount, divided by the
--    domain's live mailbox count n when per_domain_mailbox; price rounded to cents, volume down to a whole
--    number; no matching rule: 0. Seeded with the rules the functions had: price CheapInboxes 3, Zapmail 3,
--    Mailr 0.91, ScaledMail 50/n, Google/Gmail 3; volume Mailr floor(495/n), ScaledMail 5 (n >= 49) / 8
--    (n >= 25) / 5, Google/Gmail/Microsoft/Outlook 20.
-- 2. public.lead_custom_variable_aliases: which custom variable names (lower-case, compared trimmed and
--    case-insensitively) fill which client_leads column, in order of preference. Seeded with the lists
--    _upsert_client_lead had written out.
-- Both: RLS on, service_role writes (through the API, e.g. a new reseller's price); authenticated may read the
-- pricing rules (mailbox_price() runs with the caller's rights), the aliases are service_role only. A change
-- applies to the next sync / the next lead event; nothing stored is recomputed.

create table if not exists public.mailbox_pricing_rules (
  measure text not null check (measure in ('price', 'daily_volume')),
  position integer not null check (position > 0),
  match_on text not null check (match_on in ('provider', 'reseller')),
  match_kind text not null default 'equals' check (match_kind in ('equals', 'contains')),
  pattern text not null check (pattern <> '' and pattern = lower(btrim(pattern)) and length(pattern) <= 200),
  min_domain_mailboxes integer check (min_domain_mailboxes >= 1),
  amount numeric not null check (amount >= 0 and amount < 1000000),
  per_domain_mailbox boolean not null default false,
  note text check (length(note) <= 500),
  updated_at timestamptz not null default now(),
  primary key (measure, position)
);

comment on table public.mailbox_pricing_rules is
  'Mailbox price (USD per month) and daily sending volume by provider / reseller: the first matching rule of a '
  'measure (by position) applies; see mailbox_price() and mailbox_daily_volume().';
comment on column public.mailbox_pricing_rules.pattern is
  'lower-case; compared with the lower-cased reseller or provider (match_on) for equality or containment';
comment on column public.mailbox_pricing_rules.amount is
  'USD per month (price) or emails per day (daily_volume); divided by the live mailboxes on the domain in the '
  'workspace when per_domain_mailbox';
comment on column public.mailbox_pricing_rules.min_domain_mailboxes is
  'the rule applies only when the domain has at least this many live mailboxes (null: always)';

insert into public.mailbox_pricing_rules
  (measure, position, match_on, match_kind, pattern, min_domain_mailboxes, amount, per_domain_mailbox, note)
values
  ('price', 10, 'reseller', 'contains', 'cheapinboxes', null, 3.00, false, 'CheapInboxes: $3'),
  ('price', 20, 'reseller', 'equals', 'zapmail', null, 3.00, false, 'Zapmail: $3'),
  ('price', 30, 'reseller', 'equals', 'mailr', null, 0.91, false, 'Mailr: $0.91'),
  ('price', 40, 'reseller', 'equals', 'scaledmail', null, 50, true, 'ScaledMail: $50 per domain, shared'),
  ('price', 50, 'provider', 'equals', 'google', null, 3.00, false, 'Google Workspace: $3'),
  ('price', 60, 'provider', 'equals', 'gmail', null, 3.00, false, 'Gmail: $3'),
  ('daily_volume', 10, 'reseller', 'equals', 'mailr', null, 495, true, 'Mailr: 495 per domain, shared'),
  ('daily_volume', 20, 'reseller', 'equals', 'scaledmail', 49, 5, false, 'ScaledMail, 49+ on the domain: 5'),
  ('daily_volume', 30, 'reseller', 'equals', 'scaledmail', 25, 8, false, 'ScaledMail, 25-48 on the domain: 8'),
  ('daily_volume', 40, 'reseller', 'equals', 'scaledmail', null, 5, false, 'ScaledMail, fewer: 5'),
  ('daily_volume', 50, 'provider', 'equals', 'google', null, 20, false, 'Google Workspace: 20'),
  ('daily_volume', 60, 'provider', 'equals', 'gmail', null, 20, false, 'Gmail: 20'),
  ('daily_volume', 70, 'provider', 'equals', 'microsoft', null, 20, false, 'Microsoft: 20'),
  ('daily_volume', 80, 'provider', 'equals', 'outlook', null, 20, false, 'Outlook: 20')
on conflict (measure, position) do nothing;

drop trigger if exists mailbox_pricing_rules_updated_at on public.mailbox_pricing_rules;
create trigger mailbox_pricing_rules_updated_at before update on public.mailbox_pricing_rules
  for each row execute function bisonsync_private._set_updated_at();

create or replace function public.mailbox_price(p_provider text, p_reseller text, p_domain_mailboxes integer)
returns numeric
language sql
stable
parallel safe
set search_path = ''
as $$
  select coalesce((
    select round(r.amount / case when r.per_domain_mailbox then greatest(coalesce(p_domain_mailboxes, 1), 1)
                                 else 1 end, 2)
    from public.mailbox_pricing_rules r
    cross join lateral (select lower(case r.match_on when 'provider' then p_provider else p_reseller end) as v) m
    where r.measure = 'price'
      and case r.match_kind when 'equals' then m.v = r.pattern else strpos(m.v, r.pattern) > 0 end
      and (r.min_domain_mailboxes is null or p_domain_mailboxes >= r.min_domain_mailboxes)
    order by r.position
    limit 1), 0)
$$;

comment on function public.mailbox_price(text, text, integer) is
  'USD per month: the first matching price rule of mailbox_pricing_rules (n = live mailboxes on the domain in '
  'the workspace), rounded to cents; 0 when no rule matches.';

create or replace function public.mailbox_daily_volume(p_provider text, p_reseller text, p_domain_mailboxes integer)
returns integer
language sql
stable
parallel safe
set search_path = ''
as $$
  select coalesce((
    select floor(r.amount / case when r.per_domain_mailbox then greatest(coalesce(p_domain_mailboxes, 1), 1)
                                 else 1 end)::integer
    from public.mailbox_pricing_rules r
    cross join lateral (select lower(case r.match_on when 'provider' then p_provider else p_reseller end) as v) m
    where r.measure = 'daily_volume'
      and case r.match_kind when 'equals' then m.v = r.pattern else strpos(m.v, r.pattern) > 0 end
      and (r.min_domain_mailboxes is null or p_domain_mailboxes >= r.min_domain_mailboxes)
    order by r.position
    limit 1), 0)
$$;

comment on function public.mailbox_daily_volume(text, text, integer) is
  'Theoretical emails per day: the first matching daily_volume rule of mailbox_pricing_rules (n = live '
  'mailboxes on the domain in the workspace), rounded down; 0 when no rule matches.';

create table if not exists public.lead_custom_variable_aliases (
  lead_column text not null
    check (lead_column in ('phone', 'address', 'city', 'state', 'zip', 'renewal_date', 'birthday')),
  alias text not null check (alias <> '' and alias = lower(btrim(alias)) and length(alias) <= 200),
  preference integer not null check (preference > 0),
  primary key (lead_column, alias)
);

comment on table public.lead_custom_variable_aliases is
  'Email Bison custom variable names (lower-case) that fill a client_leads column, most preferred first '
  '(lowest preference); the first non-empty value wins.';

insert into public.lead_custom_variable_aliases (lead_column, alias, preference) values
  ('phone', 'phone number', 1),
  ('phone', 'cell phone', 2),
  ('phone', 'cellphone', 3),
  ('phone', 'company phone', 4),
  ('phone', 'phone', 5),
  ('phone', 'mobile', 6),
  ('phone', 'cell', 7),
  ('phone', 'phone_number', 8),
  ('address', 'street address', 1),
  ('address', 'address', 2),
  ('address', 'street', 3),
  ('address', 'address1', 4),
  ('address', 'address_1', 5),
  ('address', 'mailing address', 6),
  ('address', 'home address', 7),
  ('city', 'city', 1),
  ('city', 'town', 2),
  ('state', 'state', 1),
  ('state', 'province', 2),
  ('state', 'region', 3),
  ('zip', 'zip', 1),
  ('zip', 'zip code', 2),
  ('zip', 'zipcode', 3),
  ('zip', 'zip_code', 4),
  ('zip', 'postal code', 5),
  ('zip', 'postal_code', 6),
  ('zip', 'postcode', 7),
  ('renewal_date', 'renewal date', 1),
  ('renewal_date', 'renewal_date', 2),
  ('renewal_date', 'renewal', 3),
  ('renewal_date', 'policy renewal date', 4),
  ('renewal_date', 'expiration date', 5),
  ('renewal_date', 'x-date', 6),
  ('birthday', 'date of birth', 1),
  ('birthday', 'birthday', 2),
  ('birthday', 'birth date', 3),
  ('birthday', 'birthdate', 4),
  ('birthday', 'dob', 5),
  ('birthday', 'date_of_birth', 6)
on conflict (lead_column, alias) do nothing;

-- The value of a lead's custom variables for one client_leads column (by the aliases above).
create or replace function bisonsync_private.lead_custom_variable(p_custom_variables jsonb, p_lead_column text)
returns text
language sql
stable
set search_path = ''
as $$
  select bisonsync_private._custom_variable(
    p_custom_variables,
    array(select a.alias from public.lead_custom_variable_aliases a
          where a.lead_column = p_lead_column
          order by a.preference, a.alias))
$$;

create or replace function bisonsync_private._upsert_client_lead(
  p_workspace_id uuid,
  p_lead jsonb,
  p_stage text,
  p_at timestamptz,
  p_reply jsonb,
  p_campaign jsonb,
  p_sender_email jsonb,
  p_notes text,
  p_create boolean
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_lead jsonb := case when jsonb_typeof(p_lead) = 'object' then p_lead else '{}'::jsonb end;
  v_bison_id bigint := bisonsync_private._try_bigint(v_lead ->> 'id');
  v_email text := lower(public.clean_label(v_lead ->> 'email'));
  v_stage text := lower(public.clean_label(p_stage));
  v_at timestamptz := coalesce(p_at, pg_catalog.now());
  v_reply_at timestamptz;
  v_cv jsonb;
  v_id uuid;
  r public.client_leads;
  n public.client_leads;
  v_attempt integer := 0;
begin
  if v_stage is not null and public.pipeline_stage_rank(v_stage) is null then
    raise exception 'unknown pipeline stage "%"', p_stage using errcode = '22023',
      detail = 'stages: new, replied, interested, quoting, follow-up, nurture, won, lost, unsubscribed, bounced';
  end if;
  if v_bison_id is null and v_email is null then
    raise exception 'lead has neither id nor email (data.lead.id / data.lead.email)' using errcode = '22023';
  end if;
  if jsonb_typeof(p_reply) = 'object' then
    v_reply_at := coalesce(bisonsync_private._try_timestamptz(p_reply ->> 'date_received'), v_at);
  end if;

  loop
    v_attempt := v_attempt + 1;
    r := null;
    if v_bison_id is not null then
      select * into r from public.client_leads l
      where l.workspace_id = p_workspace_id and l.bison_lead_id = v_bison_id
      for no key update;
    end if;
    if r.id is null and v_email is not null then
      select * into r from public.client_leads l
      where l.workspace_id = p_workspace_id and l.lead_email = v_email
      for no key update;
    end if;
    if r.id is null and not p_create then
      return jsonb_build_object('lead_id', null, 'action', 'not_found');
    end if;

    n := r;
    if r.id is null then
      n.id := gen_random_uuid();
      n.workspace_id := p_workspace_id;
      n.bison_lead_id := v_bison_id;
      n.lead_email := v_email;
      n.custom_variables := '[]'::jsonb;
      n.pipeline_stage := 'new';
      n.interested := false;
      n.created_at := pg_catalog.now();
    else
      -- only fill identity gaps; never steal an identity another row of this workspace holds
      if n.bison_lead_id is null and v_bison_id is not null then
        n.bison_lead_id := v_bison_id;  -- no row holds it: the id lookup above found none
      end if;
      if n.lead_email is null and v_email is not null and not exists (
        select 1 from public.client_leads l where l.workspace_id = p_workspace_id and l.lead_email = v_email
      ) then
        n.lead_email := v_email;
      end if;
    end if;

    n.first_name := coalesce(public.clean_label(v_lead ->> 'first_name'), n.first_name);
    n.last_name := coalesce(public.clean_label(v_lead ->> 'last_name'), n.last_name);
    n.title := coalesce(public.clean_label(v_lead ->> 'title'), n.title);
    n.company := coalesce(public.clean_label(v_lead ->> 'company'), n.company);
    n.lead_status := coalesce(public.clean_label(v_lead ->> 'status'), n.lead_status);

    v_cv := bisonsync_private._merge_custom_variables(n.custom_variables, v_lead -> 'custom_variables');
    n.custom_variables := v_cv;
    n.phone := coalesce(bisonsync_private.lead_custom_variable(v_cv, 'phone'),
                        public.clean_label(v_lead ->> 'phone'), n.phone);
    n.address := coalesce(bisonsync_private.lead_custom_variable(v_cv, 'address'), n.address);
    n.city := coalesce(bisonsync_private.lead_custom_variable(v_cv, 'city'), n.city);
    n.state := coalesce(bisonsync_private.lead_custom_variable(v_cv, 'state'), n.state);
    n.zip := coalesce(bisonsync_private.lead_custom_variable(v_cv, 'zip'), n.zip);
    n.renewal_date := coalesce(bisonsync_private.lead_custom_variable(v_cv, 'renewal_date'), n.renewal_date);
    n.birthday := coalesce(bisonsync_private.lead_custom_variable(v_cv, 'birthday'), n.birthday);

    if v_stage is not null
       and public.pipeline_stage_rank(v_stage) > public.pipeline_stage_rank(n.pipeline_stage) then
      n.pipeline_stage := v_stage;
    end if;
    if v_stage = 'interested' then
      n.interested := true;
      n.interested_at := coalesce(n.interested_at, v_at);
    end if;
    if public.clean_label(p_notes) is not null then
      n.notes := p_notes;
    end if;
    if v_reply_at is not null and (n.last_reply_at is null or v_reply_at >= n.last_reply_at) then
      n.last_reply_at := v_reply_at;
      n.bison_reply_id := coalesce(bisonsync_private._try_bigint(p_reply ->> 'id'), n.bison_reply_id);
      n.bison_reply_uuid := coalesce(public.clean_label(p_reply ->> 'uuid'), n.bison_reply_uuid);
    end if;
    n.campaign_name := coalesce(public.clean_label(p_campaign ->> 'name'), n.campaign_name);
    n.sender_email := coalesce(lower(public.clean_label(p_sender_email ->> 'email')), n.sender_email);
    n.updated_at := pg_catalog.now();

    if r.id is not null then
      update public.client_leads l set
        bison_lead_id = n.bison_lead_id, lead_email = n.lead_email, first_name = n.first_name,
        last_name = n.last_name, title = n.title, company = n.company, phone = n.phone, address = n.address,
        city = n.city, state = n.state, zip = n.zip, renewal_date = n.renewal_date, birthday = n.birthday,
        custom_variables = n.custom_variables, lead_status = n.lead_status, pipeline_stage = n.pipeline_stage,
        interested = n.interested, interested_at = n.interested_at, notes = n.notes,
        bison_reply_id = n.bison_reply_id, bison_reply_uuid = n.bison_reply_uuid, last_reply_at = n.last_reply_at,
        campaign_name = n.campaign_name, sender_email = n.sender_email
      where l.id = r.id;
      return jsonb_build_object('lead_id', r.id, 'action', 'updated', 'stage', n.pipeline_stage,
                                'previous_stage', r.pipeline_stage);
    end if;

    insert into public.client_leads select n.* on conflict do nothing returning id into v_id;
    if v_id is not null then
      return jsonb_build_object('lead_id', v_id, 'action', 'created', 'stage', n.pipeline_stage,
                                'previous_stage', null);
    end if;
    -- a concurrent transaction created the lead between our lookup and insert: look it up again and merge
    if v_attempt >= 3 then
      raise exception 'could not upsert lead % / % in workspace %', v_bison_id, v_email, p_workspace_id
        using errcode = '40001';
    end if;
  end loop;
end
$$;

alter table public.mailbox_pricing_rules enable row level security;
alter table public.lead_custom_variable_aliases enable row level security;
drop policy if exists mailbox_pricing_rules_read on public.mailbox_pricing_rules;
create policy mailbox_pricing_rules_read on public.mailbox_pricing_rules for select to authenticated using (true);
-- lead_custom_variable_aliases: no policy, no grant -> service_role only.

revoke all on table public.mailbox_pricing_rules, public.lead_custom_variable_aliases
  from public, anon, authenticated;
grant all on table public.mailbox_pricing_rules, public.lead_custom_variable_aliases to service_role;
grant select on table public.mailbox_pricing_rules to authenticated;

revoke all on function bisonsync_private.lead_custom_variable(jsonb, text)
  from public, anon, authenticated, service_role;
