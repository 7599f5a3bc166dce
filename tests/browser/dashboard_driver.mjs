// Drives the dashboard in Debian's headless Chromium with playwright-core (no browser download), for
// tests/browser/test_dashboard.py. Talks to pytest in JSON lines: prints {"event": "ready", ...} once signed in,
// waits for a "go" line on stdin (pytest then changes the data), and prints {"event": "done", ...}.
//
// Input (env): DASHBOARD_URL, DASHBOARD_EMAIL, DASHBOARD_PASSWORD, DASHBOARD_WORKSPACE, DASHBOARD_ARTIFACTS,
// CHROMIUM_PATH (default /usr/bin/chromium).

import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};
const url = env('DASHBOARD_URL');
const workspace = env('DASHBOARD_WORKSPACE');
const artifacts = env('DASHBOARD_ARTIFACTS');
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const t0 = Date.now();
const say = (obj) => process.stdout.write(`${JSON.stringify({ ...obj, t: Date.now() - t0 })}\n`);
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

const profile = mkdtempSync(join(tmpdir(), 'bisonsync-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env('CHROMIUM_PATH', '/usr/bin/chromium'),
  headless: true,
  viewport: { width: 1440, height: 1000 },
  deviceScaleFactor: 1,
  reducedMotion: 'reduce',
  colorScheme: 'light',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
  ],
});
const problems = [];

/** axe-core's WCAG 2.x A/AA checks on the page as it is now: [{id, impact, help, nodes, targets}]. */
async function accessibility(page) {
  await page.addScriptTag({ path: axePath });
  return page.evaluate(async () => {
    const res = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
}
const offsite = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('request', (req) => {
    const host = new URL(req.url()).hostname;
    if (!['127.0.0.1', 'localhost'].includes(host) && !req.url().startsWith('data:')) offsite.push(req.url());
  });
  let navigations = 0;
  page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) navigations += 1; });

  await page.goto(url, { waitUntil: 'load' });
  await page.locator('#signin-view').waitFor({ state: 'visible', timeout: 15000 });
  await page.screenshot({ path: join(artifacts, 'dashboard-signin.png') });
  const a11ySignin = await accessibility(page);

  // A wrong password first: the form must say so and stay on the sign-in view.
  await page.fill('#email', env('DASHBOARD_EMAIL'));
  await page.fill('#password', 'definitely-not-the-password');
  await page.click('#signin-form button[type="submit"]');
  await page.locator('#signin-error').filter({ hasText: /./ }).waitFor({ timeout: 15000 });
  const signinError = await page.locator('#signin-error').textContent();

  await page.fill('#password', env('DASHBOARD_PASSWORD'));
  await page.click('#signin-form button[type="submit"]');
  const card = page.locator(`.ws-card[data-workspace-id="${workspace}"]`);
  const sent = card.locator('[data-testid="sent-value"]');
  const interested = card.locator('[data-testid="interested-value"]');
  await sent.filter({ hasText: /\d/ }).waitFor({ timeout: 20000 });
  await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 20000 });
  await page.locator('#leads .lead, #leads .empty').first().waitFor({ timeout: 20000 });
  await page.evaluate(() => { window.__sameDocument = 'yes'; });
  const before = { sent: await sent.textContent(), interested: await interested.textContent(), leads: await page.locator('#leads .lead').count() };
  const navigationsBefore = navigations;
  const workspaces = await page.locator('.ws-card').evaluateAll((els) => els.map((el) => el.dataset.workspaceId));
  say({ event: 'ready', before, signinError, workspaces, user: await page.locator('#user-email').textContent() });

  const go = await lines.next();
  if (go.done || go.value.trim() !== 'go') throw new Error(`expected "go", got ${JSON.stringify(go.value)}`);

  const changed = async (locator, old) => {
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      const now = await locator.textContent();
      if (now !== old) return now;
      await page.waitForTimeout(100);
    }
    return null;
  };
  const started = Date.now();
  const afterSent = await changed(sent, before.sent);
  const afterInterested = await changed(interested, before.interested);
  const latencyMs = Date.now() - started;
  const newLeadName = await page.locator('#leads .lead').first().locator('.lead-name').textContent().catch(() => null);
  await page.waitForTimeout(600); // let the other panels settle before the picture
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
  const a11y = await accessibility(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(artifacts, 'dashboard-dark.png'), fullPage: true });
  const a11yDark = await accessibility(page);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  await page.screenshot({ path: join(artifacts, 'dashboard-mobile.png'), fullPage: true });
  say({
    event: 'done',
    after: { sent: afterSent, interested: afterInterested, leads: await page.locator('#leads .lead').count() },
    newLeadName,
    latencyMs,
    sameDocument: await page.evaluate(() => window.__sameDocument === 'yes'),
    navigations: navigations - navigationsBefore,
    liveState: await page.locator('#live-status').getAttribute('data-state'),
    transport: await page.evaluate(() => document.body.dataset.realtime ?? null),
    panelErrors: await page.locator('.panel-error').allTextContents(),
    accessibility: { signin: a11ySignin, light: a11y, dark: a11yDark },
    problems,
    offsite,
  });
} catch (err) {
  say({ event: 'error', message: String(err?.stack ?? err), problems, offsite });
  process.exitCode = 1;
} finally {
  stdin.close(); // or node would wait for pytest to close our stdin
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
