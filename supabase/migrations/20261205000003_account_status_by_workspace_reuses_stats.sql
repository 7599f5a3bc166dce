-- History fix (carried forward from an edit to 20261129000700_analytics_alerts.sql, which had already been
-- applied): account_status_by_workspace reuses get_account_status_stats, so the status buckets have one
-- definition. Same signature and result.

create or replace function public.account_status_by_workspace()
returns table (
  workspace_id uuid,
  workspace_name text,
  instance text,
  active boolean,
  total bigint,
  connected bigint,
  disconnected bigint,
  failed bigint,
  not_connected bigint,
  disconnect_rate numeric
)
language sql
stable
set search_path = ''
as $$
  -- one definition of the buckets: get_account_status_stats, per workspace
  select w.id, w.name, w.instance, w.active,
         st.total, st.connected, st.disconnected, st.failed, st.not_connected, st.disconnect_rate
  from public.workspaces w
  cross join lateral public.get_account_status_stats(w.id) st
$$;
