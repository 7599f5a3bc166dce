// Reads, as the signed-in member (RLS decides which workspaces they see). Every function returns plain rows and
// throws on an error, so the caller can show it in the panel it belongs to.

const PAGE = 1000; // PostgREST's default max rows per request

function check({ data, error }, what) {
  if (error) {
    const err = new Error(`${what}: ${error.message ?? error}`);
    err.cause = error;
    throw err;
  }
  return data ?? [];
}

export async function fetchMonthToDate(sb) {
  return check(
    await sb
      .from('client_metrics')
      .select('workspace_id,workspace_name,metric_date,timezone,emails_sent_mtd,positive_replies_mtd,replies_mtd,bounced_mtd,unsubscribed_mtd,emails_sent,positive_replies,monthly_kpi_target,monthly_sending_target,updated_at')
      .eq('metric_type', 'mtd')
      .order('workspace_name'),
    'month-to-date metrics',
  );
}

export async function fetchDaily(sb, sinceIsoDate) {
  return check(
    await sb
      .from('client_metrics')
      .select('workspace_id,metric_date,emails_sent,positive_replies,replies')
      .eq('metric_type', 'daily')
      .gte('metric_date', sinceIsoDate)
      .order('metric_date'),
    'daily metrics',
  );
}

export async function fetchRecentLeads(sb, limit = 12) {
  return check(
    await sb
      .from('client_leads')
      .select('id,workspace_id,first_name,last_name,lead_email,company,title,pipeline_stage,interested_at,campaign_name')
      .not('interested_at', 'is', null)
      .order('interested_at', { ascending: false })
      .limit(limit),
    'recent interested leads',
  );
}

export async function fetchMailboxes(sb) {
  const rows = [];
  for (let from = 0; ; from += PAGE) {
    const page = check(
      await sb
        .from('sender_emails_cache')
        .select('id,workspace_id,instance,bison_sender_id,status,email_provider,reseller,emails_sent_count,total_replied_count,bounced_count,last_synced_at')
        .is('deleted_at', null)
        .order('id')
        .range(from, from + PAGE - 1),
      'mailboxes',
    );
    rows.push(...page);
    if (page.length < PAGE) return rows;
  }
}

export async function fetchProviderHistory(sb, sinceIsoDate) {
  return check(
    await sb
      .from('provider_performance_history')
      .select('snapshot_date,email_provider,instance,avg_reply_rate,total_sent,active_accounts,total_accounts')
      .gte('snapshot_date', sinceIsoDate)
      .order('snapshot_date'),
    'provider performance',
  );
}

export async function fetchWebhookHealth(sb) {
  return check(
    await sb
      .from('webhook_health')
      .select('workspace_id,workspace_name,last_delivery_at,deliveries_24h,applied_24h,failed_24h,rejected_24h,success_rate_24h,is_healthy,last_event_type,last_error')
      .order('workspace_name'),
    'webhook health',
  );
}
