// Rendering. Workspace cards are keyed by workspace id and patched in place (numbers flash when they change);
// the list panels are small and re-rendered whole.

import { lineChart, monthBars, statusBar } from './charts.js';
import { fill, fmt, h, setLive } from './dom.js';
import {
  COLOUR_LABEL,
  dedupeMailboxes,
  kpi,
  mailboxAlerts,
  monthInfo,
  ratePct,
  replyRateDrops,
  statusBreakdown,
  thresholdColour,
  webhookStatus,
} from './kpi.js';

// -- month-to-date: summary tiles and workspace cards ---------------------------------------------------------

function progressBar(k, what) {
  const pct = k.progress ?? 0;
  const expected = k.expectedByNow !== null && k.target ? (k.expectedByNow / k.target) * 100 : null;
  const bar = h('div', {
    class: `progress tone-${k.colour}`,
    role: 'progressbar',
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': Math.round(Math.min(pct, 100)),
    'aria-label': k.target ? `${what}: ${fmt.pct(pct)} of the monthly target` : `${what}: no monthly target`,
  }, h('div', { class: 'progress-fill', style: { width: `${Math.min(pct, 100)}%` } }));
  if (expected !== null) {
    bar.append(h('div', { class: 'progress-marker', style: { left: `${Math.min(expected, 100)}%` }, title: `Expected by today: ${fmt.int(Math.round(k.expectedByNow))}` }));
  }
  return bar;
}

function paceChip(k) {
  if (k.target === null) return h('span', { class: 'chip tone-none' }, 'No target set');
  return h('span', { class: `chip tone-${k.colour}` }, h('span', { class: 'chip-dot', 'aria-hidden': 'true' }), COLOUR_LABEL[k.colour]);
}

/** The chip plus "projected N (P %)": the projection is what the colour judges. */
function pace(k) {
  return [
    paceChip(k),
    h('span', { class: 'meter-projection' }, k.target === null ? `projected ${fmt.int(k.projected)}` : `projected ${fmt.int(k.projected)} · ${fmt.pct(k.projectedPct)}`),
  ];
}

/** One KPI block: big number, "of target · %", bar with the expected-by-today marker, projection chip. */
function meterView(key, what) {
  return h('div', { class: 'meter', 'data-kpi': key },
    h('div', { class: 'meter-label' }, what),
    h('div', { class: 'meter-figure' },
      h('span', { class: 'meter-value', 'data-testid': `${key}-value` }),
      h('span', { class: 'meter-target' })),
    h('div', { class: 'meter-bar' }),
    h('div', { class: 'meter-pace' }));
}

function updateMeter(el, k, what) {
  setLive(el.querySelector('.meter-value'), fmt.int(k.mtd));
  el.querySelector('.meter-target').textContent = k.target ? `of ${fmt.int(k.target)} · ${fmt.pct(k.progress)}` : 'no target';
  fill(el.querySelector('.meter-bar'), progressBar(k, what));
  fill(el.querySelector('.meter-pace'), pace(k));
}

function workspaceCard(row) {
  const card = h('article', { class: 'card ws-card', 'data-workspace-id': row.workspace_id, 'aria-labelledby': `ws-${row.workspace_id}` },
    h('header', { class: 'ws-head' },
      h('h3', { id: `ws-${row.workspace_id}`, class: 'ws-name' }),
      h('span', { class: 'ws-date' })),
    h('div', { class: 'meters' }, meterView('sent', 'Emails sent'), meterView('interested', 'Interested leads')),
    h('dl', { class: 'mini-stats' },
      h('div', {}, h('dt', {}, 'Replies'), h('dd', { 'data-testid': 'replies-value' })),
      h('div', {}, h('dt', {}, 'Bounced'), h('dd', { 'data-testid': 'bounced-value' })),
      h('div', {}, h('dt', {}, 'Unsubscribed'), h('dd', { 'data-testid': 'unsubscribed-value' })),
      h('div', {}, h('dt', {}, 'Sent today'), h('dd', { 'data-testid': 'today-value' }))),
    h('figure', { class: 'ws-chart' }, h('div', { class: 'ws-bars' }), h('figcaption', {}, 'Emails sent per day this month · dashed line: daily quota')));
  return card;
}

function updateWorkspaceCard(card, row, dailyRows) {
  const mi = monthInfo(row.metric_date);
  const sent = kpi(Number(row.emails_sent_mtd), row.monthly_sending_target, mi.day, mi.daysInMonth);
  const interested = kpi(Number(row.positive_replies_mtd), row.monthly_kpi_target, mi.day, mi.daysInMonth);
  card.querySelector('.ws-name').textContent = row.workspace_name;
  card.querySelector('.ws-date').textContent = `Day ${mi.day} of ${mi.daysInMonth} · ${row.timezone}`;
  updateMeter(card.querySelector('[data-kpi="sent"]'), sent, 'Emails sent');
  updateMeter(card.querySelector('[data-kpi="interested"]'), interested, 'Interested leads');
  const sentMtd = Number(row.emails_sent_mtd);
  setLive(card.querySelector('[data-testid="replies-value"]'), `${fmt.int(Number(row.replies_mtd))} · ${fmt.pct(ratePct(Number(row.replies_mtd), sentMtd))}`);
  setLive(card.querySelector('[data-testid="bounced-value"]'), `${fmt.int(Number(row.bounced_mtd))} · ${fmt.pct(ratePct(Number(row.bounced_mtd), sentMtd))}`);
  setLive(card.querySelector('[data-testid="unsubscribed-value"]'), fmt.int(Number(row.unsubscribed_mtd)));
  setLive(card.querySelector('[data-testid="today-value"]'), fmt.int(Number(row.emails_sent)));
  const days = dailyRows
    .filter((d) => d.workspace_id === row.workspace_id && d.metric_date.startsWith(mi.monthStart.slice(0, 8)))
    .map((d) => ({ day: Number(d.metric_date.slice(8, 10)), value: Number(d.emails_sent), date: d.metric_date }));
  fill(card.querySelector('.ws-bars'), monthBars({
    days,
    daysInMonth: mi.daysInMonth,
    today: mi.day,
    quota: sent.dailyQuota,
    label: `${row.workspace_name}: emails sent per day this month, ${fmt.int(Number(row.emails_sent))} today${sent.dailyQuota ? `, daily quota ${fmt.int(Math.round(sent.dailyQuota))}` : ''}`,
  }));
}

export function renderWorkspaces(container, mtdRows, dailyRows) {
  if (!mtdRows.length) {
    fill(container, h('p', { class: 'empty' }, 'You are not a member of any workspace yet. Ask an admin to add you.'));
    return;
  }
  container.querySelector(':scope > .empty')?.remove();
  const existing = new Map([...container.querySelectorAll(':scope > .ws-card')].map((el) => [el.dataset.workspaceId, el]));
  const keep = new Set();
  for (const row of mtdRows) {
    let card = existing.get(row.workspace_id);
    if (!card) card = workspaceCard(row);
    container.append(card); // (re)appending keeps the order of mtdRows
    updateWorkspaceCard(card, row, dailyRows);
    keep.add(row.workspace_id);
  }
  for (const [id, el] of existing) if (!keep.has(id)) el.remove();
}

function summaryTile(id, label) {
  return h('section', { class: 'card tile', id, 'aria-labelledby': `${id}-label` },
    h('h2', { class: 'tile-label', id: `${id}-label` }, label),
    h('div', { class: 'tile-value', 'data-testid': `${id}-value` }),
    h('div', { class: 'tile-sub' }),
    h('div', { class: 'tile-extra' }));
}

export function ensureSummary(container) {
  if (container.childElementCount) return;
  container.append(
    summaryTile('sum-volume', 'Email volume this month'),
    summaryTile('sum-leads', 'Interested leads this month'),
    summaryTile('sum-mailboxes', 'Mailboxes connected'),
    summaryTile('sum-webhooks', 'Webhooks healthy'),
  );
}

function overall(rows, mtdKey, targetKey) {
  let mtd = 0;
  let target = 0;
  let projected = 0;
  for (const row of rows) {
    const mi = monthInfo(row.metric_date);
    const k = kpi(Number(row[mtdKey]), row[targetKey], mi.day, mi.daysInMonth);
    mtd += k.mtd;
    projected += k.projected;
    target += k.target ?? 0;
  }
  const progress = target ? (mtd / target) * 100 : null;
  const projectedPct = target ? (projected / target) * 100 : null;
  return { mtd, target: target || null, progress, projected, projectedPct, colour: thresholdColour(projectedPct), expectedByNow: null };
}

function updateTile(tile, value, sub, extra, tone) {
  setLive(tile.querySelector('.tile-value'), value);
  tile.querySelector('.tile-sub').textContent = sub;
  fill(tile.querySelector('.tile-extra'), extra ?? '');
  tile.dataset.tone = tone ?? 'none';
}

export function renderSummaryKpis(container, mtdRows) {
  ensureSummary(container);
  for (const [id, mtdKey, targetKey, what] of [
    ['sum-volume', 'emails_sent_mtd', 'monthly_sending_target', 'Email volume'],
    ['sum-leads', 'positive_replies_mtd', 'monthly_kpi_target', 'Lead generation'],
  ]) {
    const k = overall(mtdRows, mtdKey, targetKey);
    const tile = container.querySelector(`#${id}`);
    updateTile(tile, fmt.int(k.mtd), k.target ? `of ${fmt.int(k.target)} target · ${fmt.pct(k.progress)}` : 'no targets set',
      [progressBar(k, what), h('div', { class: 'meter-pace' }, pace(k))], k.colour);
  }
}

// -- mailboxes, alerts ---------------------------------------------------------------------------------------

export function renderMailboxes(panel, tile, rows) {
  const live = dedupeMailboxes(rows);
  const connected = live.filter((r) => r.status === 'Connected').length;
  const down = live.filter((r) => r.status === 'Disconnected' || r.status === 'Failed').length;
  const rate = ratePct(down, live.length);
  updateTile(tile, fmt.int(connected), `of ${fmt.int(live.length)} live mailboxes`,
    h('span', { class: `chip tone-${down ? (rate >= 5 ? 'red' : 'amber') : 'green'}` }, h('span', { class: 'chip-dot', 'aria-hidden': 'true' }),
      down ? `${fmt.int(down)} down · ${fmt.pct(rate)}` : 'None down'),
    down ? (rate >= 5 ? 'red' : 'amber') : 'green');
  if (!live.length) {
    fill(panel, h('p', { class: 'empty' }, 'No mailboxes synced yet. The poller fills this from Email Bison.'));
    return;
  }
  const byProvider = statusBreakdown(live, 'email_provider');
  const byReseller = statusBreakdown(live, 'reseller');
  fill(panel,
    h('div', { class: 'legend legend-status', 'aria-hidden': 'true' },
      h('span', {}, h('span', { class: 'swatch seg-ok' }), 'Connected'),
      h('span', {}, h('span', { class: 'swatch seg-bad' }), 'Disconnected'),
      h('span', {}, h('span', { class: 'swatch seg-warn' }), 'Failed'),
      h('span', {}, h('span', { class: 'swatch seg-idle' }), 'Not connected')),
    h('h3', { class: 'sub-head' }, 'By provider'),
    h('div', { class: 'status-list' }, byProvider.map(statusBar)),
    h('h3', { class: 'sub-head' }, 'By reseller'),
    h('div', { class: 'status-list' }, byReseller.map(statusBar)));
}

export function renderAlerts(container, { mailboxes, providerPoints, webhooks }) {
  const alerts = mailboxAlerts(dedupeMailboxes(mailboxes));
  for (const d of replyRateDrops(providerPoints)) {
    alerts.push({ level: 'warning', text: `${d.series}: reply rate fell ${d.drop.toFixed(0)} % (${d.from.toFixed(2)} % → ${d.to.toFixed(2)} %)` });
  }
  for (const w of webhooks) {
    const st = webhookStatus(w.last_delivery_at);
    if (st === 'down') alerts.push({ level: 'critical', text: `${w.workspace_name}: no webhook for ${fmt.ago(w.last_delivery_at).replace(' ago', '')}` });
    if (w.deliveries_24h > 0 && !w.is_healthy) alerts.push({ level: 'warning', text: `${w.workspace_name}: webhook success ${fmt.pct(Number(w.success_rate_24h))} in 24 h` });
  }
  const order = { critical: 0, warning: 1, info: 2 };
  alerts.sort((a, b) => order[a.level] - order[b.level]);
  if (!alerts.length) {
    fill(container, h('p', { class: 'all-clear' }, h('span', { class: 'chip-dot', 'aria-hidden': 'true' }), 'No alerts: mailboxes, providers and webhooks look fine.'));
    return;
  }
  const icon = { critical: '!', warning: '▲', info: 'i' };
  fill(container, h('ul', { class: 'alerts' }, alerts.map((a) => h('li', { class: `alert alert-${a.level}` },
    h('span', { class: 'alert-icon', 'aria-hidden': 'true' }, icon[a.level]),
    h('span', { class: 'sr-only' }, `${a.level}: `), a.text))));
}

// -- leads, providers, webhooks --------------------------------------------------------------------------------

function initials(lead) {
  const parts = [lead.first_name, lead.last_name].filter(Boolean);
  if (parts.length) return parts.map((p) => p[0]).join('').slice(0, 2).toUpperCase();
  return (lead.lead_email ?? '?')[0].toUpperCase();
}

export function renderLeads(panel, leads, workspaceNames) {
  if (!leads.length) {
    fill(panel, h('p', { class: 'empty' }, 'No interested leads yet this month. They appear here the moment Email Bison reports one.'));
    return;
  }
  fill(panel, h('ol', { class: 'lead-list' }, leads.map((lead) => {
    const name = [lead.first_name, lead.last_name].filter(Boolean).join(' ') || lead.lead_email || 'Unknown lead';
    return h('li', { class: 'lead', 'data-lead-id': lead.id },
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(lead)),
      h('div', { class: 'lead-main' },
        h('div', { class: 'lead-name' }, name),
        h('div', { class: 'lead-meta' }, [lead.lead_email, lead.company].filter(Boolean).join(' · '))),
      h('div', { class: 'lead-side' },
        h('span', { class: 'pill' }, lead.pipeline_stage),
        h('div', { class: 'lead-ws' }, workspaceNames.get(lead.workspace_id) ?? ''),
        h('time', { datetime: lead.interested_at, title: fmt.dateTime(lead.interested_at), 'data-ago': lead.interested_at }, fmt.ago(lead.interested_at))));
  })));
}

export function providerSeries(rows) {
  const instances = new Set(rows.map((r) => r.instance));
  const name = (r) => (instances.size > 1 ? `${r.email_provider} · ${r.instance}` : r.email_provider);
  const map = new Map();
  for (const r of rows) {
    const key = name(r);
    if (!map.has(key)) map.set(key, []);
    map.get(key).push({ date: r.snapshot_date, value: Number(r.avg_reply_rate), series: key });
  }
  return [...map.entries()].map(([n, points]) => ({ name: n, points })).sort((a, b) => a.name.localeCompare(b.name));
}

export function renderProviders(panel, rows) {
  const series = providerSeries(rows);
  fill(panel, lineChart({
    series,
    title: 'Reply rate by email provider, daily snapshots',
    unit: '%',
    emptyText: 'No provider snapshots yet. The daily snapshot job records one per provider each day.',
  }));
}

const WEBHOOK_LABEL = { healthy: 'Healthy', degraded: 'Quiet', down: 'Silent', silent: 'No deliveries yet' };

export function renderWebhooks(panel, tile, rows) {
  const healthy = rows.filter((w) => w.is_healthy && webhookStatus(w.last_delivery_at) === 'healthy').length;
  const deliveries = rows.reduce((n, w) => n + Number(w.deliveries_24h ?? 0), 0);
  const tone = !rows.length ? 'none' : healthy === rows.length ? 'green' : healthy / rows.length >= 0.8 ? 'amber' : 'red';
  updateTile(tile, `${fmt.int(healthy)} / ${fmt.int(rows.length)}`, 'workspaces with a delivery in the last hour and ≥ 95 % success',
    h('span', { class: 'tile-note' }, `${fmt.int(deliveries)} deliveries in 24 h`), tone);
  if (!rows.length) {
    fill(panel, h('p', { class: 'empty' }, 'No workspaces.'));
    return;
  }
  fill(panel, h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
    h('caption', { class: 'sr-only' }, 'Webhook health per workspace over the last 24 hours'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Workspace'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Last delivery'),
      h('th', { scope: 'col', class: 'num' }, '24 h'), h('th', { scope: 'col', class: 'num' }, 'Success'))),
    h('tbody', {}, rows.map((w) => {
      const st = webhookStatus(w.last_delivery_at);
      const tone = st === 'healthy' && w.is_healthy ? 'green' : st === 'degraded' || (st === 'healthy' && !w.is_healthy) ? 'amber' : st === 'silent' ? 'none' : 'red';
      const label = st === 'healthy' && !w.is_healthy ? 'Errors' : WEBHOOK_LABEL[st];
      return h('tr', { 'data-workspace-id': w.workspace_id },
        h('th', { scope: 'row' }, w.workspace_name),
        h('td', {}, h('span', { class: `chip tone-${tone}` }, h('span', { class: 'chip-dot', 'aria-hidden': 'true' }), label)),
        h('td', {}, w.last_delivery_at
          ? h('time', { datetime: w.last_delivery_at, title: fmt.dateTime(w.last_delivery_at), 'data-ago': w.last_delivery_at }, fmt.ago(w.last_delivery_at))
          : '–', w.last_event_type ? h('div', { class: 'cell-sub' }, w.last_event_type) : null),
        h('td', { class: 'num', 'data-testid': 'deliveries-value' }, fmt.int(Number(w.deliveries_24h ?? 0))),
        h('td', { class: 'num' }, fmt.pct(Number(w.success_rate_24h))));
    })))));
}

/** Refresh every "5 minutes ago" label without a query. */
export function refreshRelativeTimes(root) {
  for (const el of root.querySelectorAll('[data-ago]')) el.textContent = fmt.ago(el.dataset.ago);
}

export function renderPanelError(panel, err) {
  fill(panel, h('p', { class: 'panel-error', role: 'alert' }, `Could not load: ${err.message ?? err}`));
}
