// Unit tests of the KPI formulas (spec email-bison.md §5.11, §5.6, §5.5): `npm test` in web/.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  dedupeMailboxes,
  kpi,
  mailboxAlerts,
  monthInfo,
  projectEndOfMonth,
  progressPct,
  replyRateDrops,
  statusBreakdown,
  thresholdColour,
  webhookStatus,
} from '../src/kpi.js';

test('monthInfo knows month lengths, leap years included', () => {
  assert.deepEqual(monthInfo('2026-11-29'), { year: 2026, month: 11, day: 29, daysInMonth: 30, monthStart: '2026-11-01' });
  assert.equal(monthInfo('2028-02-10').daysInMonth, 29);
  assert.equal(monthInfo('2026-02-10').daysInMonth, 28);
  assert.equal(monthInfo('2026-12-31').daysInMonth, 31);
});

test('projection EOM = round(MTD / day × days in month)', () => {
  assert.equal(projectEndOfMonth(1000, 10, 30), 3000);
  assert.equal(projectEndOfMonth(100, 3, 31), 1033); // 1033.33 rounds down
  assert.equal(projectEndOfMonth(101, 2, 31), 1566); // 1565.5 rounds half up
  assert.equal(projectEndOfMonth(0, 15, 30), 0);
});

test('progress % and the colour thresholds (>= 100 green, >= 80 amber, else red)', () => {
  assert.equal(progressPct(50, 200), 25);
  assert.equal(progressPct(5, 0), null);
  assert.equal(progressPct(5, null), null);
  assert.equal(thresholdColour(100), 'green');
  assert.equal(thresholdColour(99.99), 'amber');
  assert.equal(thresholdColour(80), 'amber');
  assert.equal(thresholdColour(79.99), 'red');
  assert.equal(thresholdColour(null), 'none');
});

test('kpi: pace colour from the projection, quota, expected by now, on track', () => {
  const k = kpi(10000, 30000, 10, 30);
  assert.ok(Math.abs(k.progress - 100 / 3) < 1e-9);
  assert.equal(k.projected, 30000);
  assert.equal(k.projectedPct, 100);
  assert.equal(k.colour, 'green');
  assert.equal(k.dailyQuota, 1000);
  assert.equal(k.expectedByNow, 10000);
  assert.equal(k.onTrack, true);
  assert.equal(k.variance, -20000);
  assert.equal(k.dailyAverage, 1000);
  assert.equal(kpi(8500, 30000, 10, 30).colour, 'amber'); // projected 25,500 = 85 %
  assert.equal(kpi(7000, 30000, 10, 30).colour, 'red');
  const none = kpi(7000, null, 10, 30);
  assert.equal(none.colour, 'none');
  assert.equal(none.onTrack, null);
});

test('webhook status by age: < 60 min healthy, < 180 min degraded, else down', () => {
  const now = Date.parse('2026-11-29T12:00:00Z');
  assert.equal(webhookStatus('2026-11-29T11:01:00Z', now), 'healthy');
  assert.equal(webhookStatus('2026-11-29T10:00:00Z', now), 'degraded');
  assert.equal(webhookStatus('2026-11-29T08:59:00Z', now), 'down');
  assert.equal(webhookStatus(null, now), 'silent');
});

test('a mailbox shared by two workspaces counts once (newest sync wins)', () => {
  const rows = [
    { instance: 'a', bison_sender_id: 1, status: 'Connected', last_synced_at: '2026-11-01T00:00:00Z' },
    { instance: 'a', bison_sender_id: 1, status: 'Disconnected', last_synced_at: '2026-11-02T00:00:00Z' },
    { instance: 'b', bison_sender_id: 1, status: 'Connected', last_synced_at: null },
  ];
  const live = dedupeMailboxes(rows);
  assert.equal(live.length, 2);
  assert.equal(live.find((r) => r.instance === 'a').status, 'Disconnected');
});

test('status breakdown by provider, largest first, nulls as Unknown', () => {
  const rows = [
    { email_provider: 'Google', status: 'Connected' },
    { email_provider: 'Google', status: 'Disconnected' },
    { email_provider: null, status: 'Failed' },
  ];
  assert.deepEqual(statusBreakdown(rows, 'email_provider'), [
    { name: 'Google', total: 2, Connected: 1, Disconnected: 1, Failed: 0, 'Not connected': 0 },
    { name: 'Unknown', total: 1, Connected: 0, Disconnected: 0, Failed: 1, 'Not connected': 0 },
  ]);
});

test('alerts: case-correct statuses, burnt mailboxes, bounce and silence rules', () => {
  const now = Date.parse('2026-11-29T12:00:00Z');
  const base = { status: 'Connected', emails_sent_count: 0, total_replied_count: 0, bounced_count: 0, last_synced_at: '2026-11-29T11:00:00Z' };
  const rows = [
    { ...base, status: 'Disconnected' },
    { ...base, status: 'Failed' },
    { ...base, emails_sent_count: 250, total_replied_count: 0 }, // burnt + no replies
    { ...base, emails_sent_count: 60, total_replied_count: 3, bounced_count: 4 }, // bounce 6.7 %
    { ...base, emails_sent_count: 51, total_replied_count: 5, bounced_count: 3 }, // bounce 5.9 % but reply 9.8 %
    { ...base, emails_sent_count: 50, total_replied_count: 5, bounced_count: 3 }, // sent not > 50
  ];
  const texts = mailboxAlerts(rows, now).map((a) => `${a.level}:${a.text}`);
  assert.ok(texts.includes('critical:1 disconnected mailbox'));
  assert.ok(texts.includes('critical:1 failed mailbox'));
  assert.ok(texts.some((t) => t.startsWith('critical:1 burnt mailbox')));
  assert.ok(texts.includes('warning:2 mailboxes bouncing over 5 %'));
  assert.ok(texts.includes('warning:1 mailbox with 100+ sends and no reply'));
  const stale = mailboxAlerts([{ ...base, last_synced_at: '2026-11-28T10:00:00Z' }], now);
  assert.deepEqual(stale.map((a) => a.level), ['critical']);
  assert.equal(mailboxAlerts([{ ...base, last_synced_at: '2026-11-28T23:00:00Z' }], now)[0].level, 'warning');
});

test('reply-rate drop: strictly more than 20 % relative, previous above 0', () => {
  const pts = [
    { series: 'Google', date: '2026-11-27', value: 3 },
    { series: 'Google', date: '2026-11-28', value: 2.3 }, // -23.3 %
    { series: 'Outlook', date: '2026-11-27', value: 2.5 },
    { series: 'Outlook', date: '2026-11-28', value: 2 }, // exactly -20 %: no alert
    { series: 'Yahoo', date: '2026-11-27', value: 0 },
    { series: 'Yahoo', date: '2026-11-28', value: 0 },
  ];
  const drops = replyRateDrops(pts);
  assert.deepEqual(drops.map((d) => d.series), ['Google']);
});
