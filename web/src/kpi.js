// KPI formulas of the predecessor's dashboards (spec email-bison.md §5.11, §5.6), as pure functions so they can
// be unit-tested with `node --test` and never drift between panels.

/** Parts of a workspace-local ISO date (`YYYY-MM-DD`) and the length of its month. */
export function monthInfo(isoDate) {
  const [year, month, day] = String(isoDate).slice(0, 10).split('-').map(Number);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return { year, month, day, daysInMonth, monthStart: `${String(isoDate).slice(0, 8)}01` };
}

/** Projection EOM = round(MTD / day_of_month × days_in_month). */
export function projectEndOfMonth(mtd, dayOfMonth, daysInMonth) {
  if (!dayOfMonth || dayOfMonth <= 0) return mtd;
  return Math.round((mtd / dayOfMonth) * daysInMonth);
}

/** Progress % = value / target × 100; null without a (positive) target. */
export function progressPct(value, target) {
  if (target === null || target === undefined || target <= 0) return null;
  return (value / target) * 100;
}

/** Colour thresholds: ≥ 100 % green, ≥ 80 % amber, otherwise red; 'none' when there is no target. */
export function thresholdColour(pct) {
  if (pct === null || pct === undefined || Number.isNaN(pct)) return 'none';
  if (pct >= 100) return 'green';
  if (pct >= 80) return 'amber';
  return 'red';
}

export const COLOUR_LABEL = { green: 'On pace', amber: 'Slightly behind', red: 'Behind', none: 'No target' };

/**
 * Everything a KPI tile shows. The colour is the projection's share of the target (pace), so a workspace that is
 * on pace is green on day 3 as on day 30; `progress` is the plain month-to-date share.
 */
export function kpi(mtd, target, dayOfMonth, daysInMonth) {
  const projected = projectEndOfMonth(mtd, dayOfMonth, daysInMonth);
  const progress = progressPct(mtd, target);
  const projectedPct = progressPct(projected, target);
  const hasTarget = progress !== null;
  const dailyQuota = hasTarget ? target / daysInMonth : null; // Daily quota = target / days_in_month
  const expectedByNow = hasTarget ? dailyQuota * dayOfMonth : null; // Expected by now = quota × days elapsed
  return {
    mtd,
    target: hasTarget ? target : null,
    progress,
    projected,
    projectedPct,
    colour: thresholdColour(projectedPct),
    dailyQuota,
    expectedByNow,
    onTrack: hasTarget ? mtd >= expectedByNow : null, // on track if emails ≥ expected
    variance: hasTarget ? mtd - target : null, // Variance = emails − target
    dailyAverage: dayOfMonth > 0 ? mtd / dayOfMonth : 0, // daily average = emails / days elapsed
  };
}

/** Rate in % with a zero denominator giving 0. */
export function ratePct(part, whole) {
  return whole > 0 ? (part / whole) * 100 : 0;
}

/** Webhook status by age of the last delivery (archived useSystemHealth: < 60 min healthy, < 180 degraded). */
export function webhookStatus(lastDeliveryAt, now = Date.now()) {
  if (!lastDeliveryAt) return 'silent';
  const ageMin = (now - new Date(lastDeliveryAt).getTime()) / 60000;
  if (ageMin < 60) return 'healthy';
  if (ageMin < 180) return 'degraded';
  return 'down';
}

/**
 * Mailboxes as the stats functions count them: a mailbox shared by several workspaces of one instance counts
 * once in agency-wide totals (its most recently synced row), like `live_mailboxes(null)`.
 */
export function dedupeMailboxes(rows) {
  const byKey = new Map();
  for (const row of rows) {
    const key = `${row.instance}\u0000${row.bison_sender_id}`;
    const seen = byKey.get(key);
    if (!seen || String(row.last_synced_at ?? '') > String(seen.last_synced_at ?? '')) byKey.set(key, row);
  }
  return [...byKey.values()];
}

const STATUSES = ['Connected', 'Disconnected', 'Failed', 'Not connected'];

/** Status counts grouped by a column (email_provider or reseller), largest group first. */
export function statusBreakdown(rows, column) {
  const groups = new Map();
  for (const row of rows) {
    const name = row[column] ?? 'Unknown';
    let g = groups.get(name);
    if (!g) {
      g = { name, total: 0, Connected: 0, Disconnected: 0, Failed: 0, 'Not connected': 0 };
      groups.set(name, g);
    }
    g.total += 1;
    if (STATUSES.includes(row.status)) g[row.status] += 1;
  }
  return [...groups.values()].sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
}

/** Infrastructure alerts (spec §5.6), with the case bug fixed: statuses compared as Email Bison sends them. */
export function mailboxAlerts(rows, now = Date.now()) {
  const alerts = [];
  const count = (pred) => rows.filter(pred).length;
  const disconnected = count((r) => r.status === 'Disconnected');
  const failed = count((r) => r.status === 'Failed');
  const sent = (r) => r.emails_sent_count ?? 0;
  const replied = (r) => r.total_replied_count ?? 0;
  if (disconnected) alerts.push({ level: 'critical', text: `${disconnected} disconnected mailbox${disconnected === 1 ? '' : 'es'}` });
  if (failed) alerts.push({ level: 'critical', text: `${failed} failed mailbox${failed === 1 ? '' : 'es'}` });
  const burnt = count((r) => sent(r) >= 200 && ratePct(replied(r), sent(r)) < 0.4);
  if (burnt) alerts.push({ level: 'critical', text: `${burnt} burnt mailbox${burnt === 1 ? '' : 'es'} (reply rate < 0.4 % over 200+ sends): consider cancelling` });
  const bouncy = count((r) => sent(r) > 50 && ratePct(r.bounced_count ?? 0, sent(r)) > 5);
  if (bouncy) alerts.push({ level: 'warning', text: `${bouncy} mailbox${bouncy === 1 ? '' : 'es'} bouncing over 5 %` });
  const silent = count((r) => sent(r) >= 100 && replied(r) === 0);
  if (silent) alerts.push({ level: 'warning', text: `${silent} mailbox${silent === 1 ? '' : 'es'} with 100+ sends and no reply` });
  const low = count((r) => sent(r) >= 50 && ratePct(replied(r), sent(r)) >= 0.4 && ratePct(replied(r), sent(r)) < 2);
  if (low > 10) alerts.push({ level: 'warning', text: `${low} mailboxes with a low reply rate (0.4–2 %)` });
  const synced = rows.map((r) => r.last_synced_at).filter(Boolean).sort();
  if (synced.length) {
    const ageH = (now - new Date(synced[synced.length - 1]).getTime()) / 3600000;
    if (ageH > 24) alerts.push({ level: 'critical', text: `Mailbox sync is ${Math.floor(ageH)} h old` });
    else if (ageH > 12) alerts.push({ level: 'warning', text: `Mailbox sync is ${Math.floor(ageH)} h old` });
  }
  const idle = count((r) => r.status === 'Connected' && sent(r) === 0);
  if (idle > 20) alerts.push({ level: 'info', text: `${idle} connected mailboxes have no activity` });
  return alerts;
}

/** Reply-rate drops (spec §5.5): latest snapshot vs the previous one, strictly more than 20 % relative. */
export function replyRateDrops(points, thresholdPct = 20) {
  const bySeries = new Map();
  for (const p of points) {
    if (!bySeries.has(p.series)) bySeries.set(p.series, []);
    bySeries.get(p.series).push(p);
  }
  const drops = [];
  for (const [series, pts] of bySeries) {
    pts.sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
    if (pts.length < 2) continue;
    const cur = pts[pts.length - 1];
    const prev = pts[pts.length - 2];
    if (prev.value > 0) {
      const drop = ((prev.value - cur.value) / prev.value) * 100;
      if (drop > thresholdPct) drops.push({ series, drop, from: prev.value, to: cur.value });
    }
  }
  return drops;
}
