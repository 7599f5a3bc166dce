-- Demo workspaces for the local stack (`bisonsync dev up`, `supabase db reset`). No secrets: webhook tokens and
-- API keys are configured per environment (see docs/schema.md, workspace_credentials).
-- Names carry a trailing space on purpose: upsert_workspace trims them, as it does for Email Bison's names.

select public.upsert_workspace('seed.bison.local', 1, 'Demo Client A ', 'America/Chicago');
select public.upsert_workspace('seed.bison.local', 2, 'Demo Client B ', 'Europe/London');
select public.upsert_workspace('seed.bison.local', 3, 'Demo Client C ', 'UTC');

update public.workspaces w
set monthly_kpi_target = t.kpi, monthly_sending_target = t.sending
from (values (1, 40, 30000), (2, 25, 20000), (3, 10, 8000)) as t (bison_id, kpi, sending)
where w.instance = 'seed.bison.local' and w.bison_workspace_id = t.bison_id;
