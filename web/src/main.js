// The live dashboard: sign in with supabase-js against the project's Supabase (or the devstack), read the
// member's workspaces through PostgREST (RLS), and keep every panel current from Realtime: postgres_changes, or,
// when the database broadcasts (`select public.set_realtime_broadcast(true)`), KPI and mailbox changes from each
// workspace's private broadcast topic `bisonsync:<workspace id>` (membership checked once per join, not per row).

import { createClient } from '@supabase/supabase-js';
import * as data from './data.js';
import { monthInfo } from './kpi.js';
import {
  refreshRelativeTimes,
  renderAlerts,
  renderLeads,
  renderMailboxes,
  renderPanelError,
  renderProviders,
  renderSummaryKpis,
  renderWebhooks,
  renderWorkspaces,
  ensureSummary,
} from './views.js';

const $ = (sel) => document.querySelector(sel);

/** Which panels a change on each published table makes stale. */
const TABLE_PANELS = {
  client_metrics_daily: ['kpis'],
  workspaces: ['kpis', 'webhooks'],
  client_leads: ['leads'],
  sender_emails_cache: ['mailboxes'],
  provider_performance_history: ['providers'],
  webhook_activity: ['webhooks'],
};
/** With database broadcast on, these tables arrive on the per-workspace private topics instead. */
const BROADCAST_PANELS = {
  client_metrics_daily: ['kpis'],
  sender_emails_cache: ['mailboxes'],
  mailbox_status_history: ['mailboxes'],
};
/** How long to gather changes before re-querying (mailbox syncs arrive in bursts of hundreds of rows). */
const DEBOUNCE_MS = { kpis: 120, leads: 120, webhooks: 250, mailboxes: 1200, providers: 1000 };

const state = {
  sb: null,
  channel: null,
  /** 'broadcast' when the database broadcasts KPI and mailbox changes, else 'postgres_changes' */
  transport: 'postgres_changes',
  /** workspace id -> its private broadcast channel */
  topics: new Map(),
  mtd: [],
  daily: [],
  mailboxes: [],
  providerRows: [],
  webhooks: [],
  timers: new Map(),
  ticker: null,
  started: false,
  lastUpdate: null,
};

function isoDaysAgo(days) {
  const d = new Date(Date.now() - days * 86400000);
  return d.toISOString().slice(0, 10);
}

function workspaceNames() {
  return new Map(state.mtd.map((r) => [r.workspace_id, r.workspace_name]));
}

function markUpdated() {
  state.lastUpdate = new Date();
  const el = $('#last-update');
  el.textContent = `Updated ${state.lastUpdate.toLocaleTimeString()}`;
  el.dateTime = state.lastUpdate.toISOString();
}

function providerPoints() {
  return state.providerRows.map((r) => ({ series: r.email_provider, date: r.snapshot_date, value: Number(r.avg_reply_rate) }));
}

function renderAlertsNow() {
  renderAlerts($('#alerts'), { mailboxes: state.mailboxes, providerPoints: providerPoints(), webhooks: state.webhooks });
}

// -- loaders, one per panel -------------------------------------------------------------------------------------

const loaders = {
  async kpis() {
    const mtd = await data.fetchMonthToDate(state.sb);
    const since = mtd.length ? mtd.map((r) => monthInfo(r.metric_date).monthStart).sort()[0] : isoDaysAgo(31);
    state.daily = await data.fetchDaily(state.sb, since);
    state.mtd = mtd;
    renderSummaryKpis($('#summary'), mtd);
    renderWorkspaces($('#workspaces'), mtd, state.daily);
    syncBroadcastTopics(); // a workspace added to (or removed from) the member changes the topics to join
  },
  async leads() {
    renderLeads($('#leads'), await data.fetchRecentLeads(state.sb), workspaceNames());
  },
  async mailboxes() {
    state.mailboxes = await data.fetchMailboxes(state.sb);
    renderMailboxes($('#mailboxes'), $('#sum-mailboxes'), state.mailboxes);
    renderAlertsNow();
  },
  async providers() {
    state.providerRows = await data.fetchProviderHistory(state.sb, isoDaysAgo(30));
    renderProviders($('#providers'), state.providerRows);
    renderAlertsNow();
  },
  async webhooks() {
    state.webhooks = await data.fetchWebhookHealth(state.sb);
    renderWebhooks($('#webhooks'), $('#sum-webhooks'), state.webhooks);
    renderAlertsNow();
  },
};
const PANEL_ELEMENT = { kpis: '#workspaces', leads: '#leads', mailboxes: '#mailboxes', providers: '#providers', webhooks: '#webhooks' };

async function load(panel) {
  try {
    await loaders[panel]();
    markUpdated();
  } catch (err) {
    console.error(err);
    renderPanelError($(PANEL_ELEMENT[panel]), err);
  }
}

function schedule(panel) {
  if (state.timers.has(panel)) return;
  state.timers.set(panel, setTimeout(() => {
    state.timers.delete(panel);
    if (state.started) load(panel);
  }, DEBOUNCE_MS[panel]));
}

async function loadAll() {
  await load('kpis'); // first: the other panels use its workspace names
  await Promise.all(['leads', 'mailboxes', 'providers', 'webhooks'].map(load));
}

// -- realtime ---------------------------------------------------------------------------------------------------

function setLiveStatus(kind, text, detail) {
  const el = $('#live-status');
  el.dataset.state = kind;
  el.querySelector('.live-text').textContent = text;
  el.title = detail ?? '';
}

async function chooseTransport() {
  // Members may ask whether the database broadcasts; an older schema without the function means it does not.
  const { data, error } = await state.sb.rpc('realtime_broadcast_enabled');
  state.transport = !error && data === true ? 'broadcast' : 'postgres_changes';
  document.body.dataset.realtime = state.transport;
}

/** Join the private topic of every workspace the member sees (and leave those no longer shown). */
function syncBroadcastTopics() {
  if (state.transport !== 'broadcast' || !state.started) return;
  const wanted = new Set(state.mtd.map((r) => r.workspace_id));
  for (const [id, channel] of state.topics) {
    if (!wanted.has(id)) {
      state.sb.removeChannel(channel);
      state.topics.delete(id);
    }
  }
  for (const id of wanted) {
    if (state.topics.has(id)) continue;
    const channel = state.sb.channel(`bisonsync:${id}`, { config: { private: true } });
    for (const table of Object.keys(BROADCAST_PANELS)) {
      channel.on('broadcast', { event: table }, () => {
        for (const panel of BROADCAST_PANELS[table]) schedule(panel);
      });
    }
    channel.subscribe((status, err) => {
      if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        setLiveStatus('reconnecting', 'Reconnecting…', err ? String(err.message ?? err) : status);
      }
    });
    state.topics.set(id, channel);
  }
}

function subscribe() {
  let channel = state.sb.channel('bisonsync-dashboard');
  const viaBroadcast = state.transport === 'broadcast' ? BROADCAST_PANELS : {};
  for (const table of Object.keys(TABLE_PANELS)) {
    if (table in viaBroadcast) continue;
    channel = channel.on('postgres_changes', { event: '*', schema: 'public', table }, () => {
      for (const panel of TABLE_PANELS[table]) schedule(panel);
    });
  }
  // The join reply (SUBSCRIBED) comes before the server has set up the database subscription; Realtime confirms
  // that with a `system` message. Only then is every later change sure to arrive, so that is when the page calls
  // itself live and re-reads everything: changes made before it, or while the socket was down, sent nothing.
  let confirmTimer = null;
  const goLive = () => {
    clearTimeout(confirmTimer);
    setLiveStatus('live', 'Live');
    if (state.started) loadAll();
  };
  channel = channel.on('system', {}, (payload) => {
    if (payload?.extension !== 'postgres_changes') return;
    if (payload.status === 'ok') goLive();
    else setLiveStatus('reconnecting', 'Realtime error', payload.message);
  });
  channel.subscribe((status, err) => {
    if (status === 'SUBSCRIBED') {
      setLiveStatus('connecting', 'Subscribing…');
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(goLive, 5000); // a server that never confirms still gets a live page
    } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
      setLiveStatus('reconnecting', 'Reconnecting…', err ? String(err.message ?? err) : status);
    } else if (status === 'CLOSED') {
      setLiveStatus('offline', 'Offline');
    }
  });
  state.channel = channel;
}

// -- sign-in / sign-out -----------------------------------------------------------------------------------------

function showSignIn(message) {
  document.body.classList.remove('signed-in');
  $('#dashboard-view').hidden = true;
  $('#user-box').hidden = true;
  $('#signin-view').hidden = false;
  if (message) $('#signin-error').textContent = message;
  $('#email').focus();
}

async function startDashboard(session) {
  if (state.started) return;
  state.started = true;
  document.body.classList.add('signed-in');
  $('#signin-view').hidden = true;
  $('#dashboard-view').hidden = false;
  $('#user-box').hidden = false;
  $('#user-email').textContent = session.user.email ?? '';
  ensureSummary($('#summary'));
  setLiveStatus('connecting', 'Connecting…');
  // Realtime private channels authorise with the session's token, which the client takes from auth.
  await state.sb.realtime.setAuth(session.access_token);
  await chooseTransport();
  subscribe();
  await loadAll();
  syncBroadcastTopics();
  $('#dashboard-view').setAttribute('aria-busy', 'false');
  let ticks = 0;
  state.ticker = setInterval(() => {
    ticks += 1;
    refreshRelativeTimes(document);
    renderAlertsNow(); // webhook silence is judged by age
    // Safety net: month-to-date moves at each workspace's local midnight without any row changing.
    if (ticks % 10 === 0 && document.visibilityState === 'visible') loadAll();
  }, 30000);
}

document.addEventListener('visibilitychange', () => {
  if (state.started && document.visibilityState === 'visible' && (!state.lastUpdate || Date.now() - state.lastUpdate > 300000)) loadAll();
});

async function stopDashboard() {
  state.started = false;
  clearInterval(state.ticker);
  for (const t of state.timers.values()) clearTimeout(t);
  state.timers.clear();
  if (state.channel) await state.sb.removeChannel(state.channel);
  state.channel = null;
  for (const channel of state.topics.values()) await state.sb.removeChannel(channel);
  state.topics.clear();
  setLiveStatus('offline', 'Signed out');
}

function wireSignIn() {
  const form = $('#signin-form');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    $('#signin-error').textContent = '';
    button.disabled = true;
    button.textContent = 'Signing in…';
    const { error } = await state.sb.auth.signInWithPassword({ email: $('#email').value.trim(), password: $('#password').value });
    button.disabled = false;
    button.textContent = 'Sign in';
    if (error) {
      $('#signin-error').textContent = error.message === 'Invalid login credentials' ? 'Wrong email or password.' : error.message;
      $('#password').select();
    } else {
      $('#password').value = '';
    }
  });
  $('#sign-out').addEventListener('click', () => state.sb.auth.signOut());
}

async function main() {
  let config;
  try {
    const resp = await fetch('config.json', { cache: 'no-store' });
    config = await resp.json();
  } catch (err) {
    showSignIn(`Could not load config.json from the service: ${err.message}`);
    return;
  }
  if (!config.supabaseUrl || !config.anonKey) {
    $('#signin-form').hidden = true;
    showSignIn('The service has no SUPABASE_URL and SUPABASE_ANON_KEY set, so the dashboard cannot reach Supabase.');
    return;
  }
  state.sb = createClient(config.supabaseUrl, config.anonKey, {
    auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: false, storageKey: 'bisonsync-dashboard-auth' },
    // Phoenix serializer 1.0.0 (JSON objects): what every Supabase Realtime speaks, the devstack's emulator included.
    realtime: { vsn: '1.0.0' },
  });
  wireSignIn();
  // Supabase warns against awaiting other client calls inside this callback: hand off to the event loop.
  state.sb.auth.onAuthStateChange((event, session) => {
    setTimeout(() => {
      if (session && !state.started) startDashboard(session);
      else if (!session && (state.started || event === 'INITIAL_SESSION')) {
        if (state.started) stopDashboard();
        showSignIn();
      }
    }, 0);
  });
}

main();
