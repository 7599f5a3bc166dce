-- History fix (carried forward from an edit to 20261129000100_tenants.sql, which had already been applied):
-- clean_label stripped the letter "v", because E'\v' is not an escape in PostgreSQL (it means a plain "v").
-- The vertical tab is written as E'\x0b'. Applied migrations are never edited; the fix lives here.

create or replace function public.clean_label(p_value text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select nullif(pg_catalog.btrim(p_value, E' \t\n\r\f\x0b\u00a0'), '')
$$;
