// Walks medic's web console in Debian's headless chromium, as a person would: signs in, sees
// the firing alert, approves the repair waiting for approval and watches it end verified,
// silences the alert from its page, runs a range query and sees the graph; on every page it
// saves a screenshot, runs axe-core and tabs through every control. Prints what it found as
// JSON for medic's end-to-end test (crates/cli/tests/it/console.rs):
//
//   node console.mjs BASE_URL USER PASSWORD OUT_DIR
import { chromium } from 'playwright-core';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const [base, user, password, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node console.mjs BASE_URL USER PASSWORD OUT_DIR');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`${executablePath} not found: install the Debian package chromium`);
  process.exit(3);
}
const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = { errors: [], axe: {}, keyboard: {}, screenshots: [], steps: [] };
// axe-core is injected as a script: the console's CSP would refuse it, so the test bypasses CSP.
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
const page = await context.newPage();
page.on('pageerror', (e) => report.errors.push(`${page.url()}: ${e}`));
page.on('console', (m) => { if (m.type() === 'error') report.errors.push(`${page.url()}: ${m.text()}`); });
const step = (s) => report.steps.push(s);

/** Screenshot, accessibility and keyboard checks of the page as it is now. */
async function check(name, { keyboard = true } = {}) {
  await page.waitForTimeout(100);
  const file = `${out}/${name}.png`;
  await page.screenshot({ path: file, fullPage: true });
  report.screenshots.push(file);
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  report.axe[name] = result;
  if (!keyboard) return;
  // Every control is reached by Tab, in some order.
  const unreached = await page.evaluate(async () => {
    // Inside a closed <details> only its summary can be reached (it opens the rest).
    const controls = [...document.querySelectorAll('a[href], button, input, select, textarea, summary')]
      .filter((e) => !e.disabled && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
      .filter((e) => e.tagName === 'SUMMARY' || !e.closest('details:not([open])'));
    controls.forEach((c, i) => { c.dataset.kb = String(i); });
    return controls.length;
  });
  const seen = new Set();
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.locator('body').focus().catch(() => {});
  for (let i = 0; i < unreached + 5; i++) {
    await page.keyboard.press('Tab');
    const k = await page.evaluate(() => document.activeElement && document.activeElement.dataset.kb);
    if (k != null) seen.add(k);
  }
  report.keyboard[name] = await page.evaluate((seen) => [...document.querySelectorAll('[data-kb]')]
    .filter((e) => !seen.includes(e.dataset.kb)).map((e) => e.outerHTML.slice(0, 80)), [...seen]);
}

try {
  // First load: the page, its scripts and style, until the sign-in form can be used.
  const began = Date.now();
  await page.goto(`${base}/console/`);
  await page.locator('#login-user').waitFor();
  const ms = Date.now() - began;
  // Bytes on the wire (headers included) of the page and everything it loaded.
  const bytes = await page.evaluate(() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
    .reduce((n, e) => n + e.transferSize, 0));
  report.firstLoad = { ms, bytes };
  await check('login');

  await page.fill('#login-user', user);
  await page.fill('#login-pass', password);
  await page.click('button[type=submit]');
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.locator('section[aria-label="Firing alerts"] .big').waitFor();
  report.overviewFiring = await page.locator('section[aria-label="Firing alerts"]').innerText();
  await page.getByText('awaiting approval').first().waitFor();
  step('signed in; overview');
  await check('overview');

  await page.click('nav >> text=Alerts');
  await page.getByRole('link', { name: 'DiskFull' }).waitFor();
  step('alert listed');
  await check('alerts');

  // The repair waiting for a person: approve it, watch it end verified.
  await page.click('nav >> text=Repairs');
  await page.getByRole('link', { name: 'clean-disk' }).first().waitFor();
  await check('repairs');
  await page.getByRole('link', { name: 'clean-disk' }).first().click();
  await page.locator('#approve').waitFor();
  await check('repair-awaiting');
  await page.fill('#decision-comment', 'go ahead');
  await page.click('#approve');
  await page.locator('#execution-status', { hasText: 'succeeded' }).waitFor({ timeout: 30000 });
  step('approved; verified');
  await check('repair-verified');

  // Silence the alert from its page, its matchers filled in, the preview showing it.
  await page.click('nav >> text=Alerts');
  await page.getByRole('link', { name: 'DiskFull' }).click();
  await page.locator('#silence-alert').click();
  await page.locator('#silence-preview', { hasText: 'would catch 1 alert' }).waitFor();
  report.silenceMatchers = await page.inputValue('#silence-matchers');
  await check('silence-form');
  await page.fill('#silence-comment', 'disk being cleaned');
  await page.click('text=Create silence');
  await page.locator('#alert-state', { hasText: 'silenced' }).waitFor({ timeout: 15000 });
  step('silenced');
  await check('alert-silenced');
  await page.click('nav >> text=Silences');
  await page.getByText('disk being cleaned').waitFor();
  report.silenced = await page.locator('details summary').first().innerText();
  await check('silences');
  // Edited: the new comment, the same alert held back.
  await page.getByRole('button', { name: /^Edit silence/ }).first().click();
  await page.locator('#silence-preview', { hasText: 'would catch 1 alert' }).waitFor();
  await page.fill('#silence-comment', 'disk being cleaned, still');
  await page.click('text=Save silence');
  await page.getByText('disk being cleaned, still').waitFor();
  step('silence edited');

  // The playbook with its trust standing; a run by hand after its dry run.
  await page.click('nav >> text=Playbooks');
  await page.getByRole('heading', { name: 'Trust by action' }).waitFor();
  await check('playbooks');
  await page.click('text=Run clean-disk by hand…');
  await page.fill('textarea[id^="run-labels-"]', '{alertname="DiskFull", instance="db2"}');
  await page.click('text=Dry run');
  await page.getByText(/The playbook would (not )?act on these labels:/).waitFor();
  report.dryRun = await page.locator('form[aria-label="Run clean-disk by hand"] pre').innerText();
  await check('run-dry-run');
  await page.click('text=Start the repair');
  await page.locator('#execution-status', { hasText: 'awaiting approval' }).waitFor();
  report.byHand = await page.locator('h1').innerText();

  // An incident: its timeline, a comment.
  await page.click('nav >> text=Incidents');
  await page.getByRole('link', { name: /Disk cleanup on db1/ }).click();
  await page.locator('#incident-status').waitFor();
  await page.fill('#incident-comment', 'cleaning the disk');
  await page.click('form[aria-label="Comment"] button[type=submit]');
  await page.locator('.timeline', { hasText: 'cleaning the disk' }).waitFor();
  await check('incident');
  await page.click('nav >> text=Incidents');
  await page.getByRole('heading', { name: 'Incidents' }).waitFor();
  await check('incidents');

  // The anomaly rule's series with its band.
  await page.click('nav >> text=Anomalies');
  await page.getByRole('heading', { name: 'Series' }).waitFor();
  report.anomalyChart = await page.locator('svg.chart').count();
  await check('anomalies');
  await page.click('nav >> text=Status');
  await page.getByRole('heading', { name: 'Configuration (secrets masked)' }).waitFor();
  await page.locator('text=DiskFull').first().waitFor();
  await check('status');

  // A range query and its graph.
  await page.click('nav >> text=Query');
  await page.fill('#promql', 'ALERTS');
  await page.selectOption('#range', '300');
  await page.click('text=Run');
  // A flat line has an empty box, which playwright calls hidden: wait for it to be drawn.
  await page.locator('svg.chart polyline.series').first().waitFor({ state: 'attached' });
  report.graphLines = await page.locator('svg.chart polyline.series').count();
  step('graph');
  await check('query');
  // A query PromQL has a word about: its info shows above the graph, as text.
  await page.fill('#promql', 'rate(ALERTS[5m])');
  await page.click('text=Run');
  await page.locator('#query-result ul.notes li').first().waitFor();
  report.queryNotes = await page.locator('#query-result ul.notes li').allTextContents();
  await check('query-notes');

  // Logs: a LogQL query and its lines.
  await page.click('nav >> text=Logs');
  await page.fill('#logql', '{job="app"} |= "disk"');
  await page.click('text=Run');
  await page.getByText('disk usage at 97%').waitFor();
  await check('logs');

  // A thousand alerts: the list draws and still answers the keyboard.
  const t0 = Date.now();
  await page.click('nav >> text=Alerts');
  await page.locator('tbody tr').nth(999).waitFor({ timeout: 20000 });
  const drawn = Date.now() - t0;
  const rows = await page.locator('tbody tr').count();
  const t1 = Date.now();
  await page.focus('#alert-filter');
  await page.keyboard.type('{alertname="Bulk"}');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1000);
  report.thousand = { rows, drawMs: drawn, filterMs: Date.now() - t1 };
  await check('alerts-1000', { keyboard: false });
  // A viewer: the same pages, without the controls its role may not use.
  await page.click('text=Sign out');
  await page.fill('#login-user', 'vic');
  await page.fill('#login-pass', password);
  await page.click('button[type=submit]');
  // Signed in again, the page it was on.
  await page.getByText('vic (viewer)').waitFor();
  await page.click('nav >> text=Alerts');
  await page.fill('#alert-filter', '{alertname="DiskFull"}');
  await page.keyboard.press('Enter');
  await page.getByRole('link', { name: 'DiskFull' }).click();
  await page.getByRole('heading', { name: 'History' }).waitFor();
  const viewer = {
    silence: await page.locator('#silence-alert').count(),
    ack: await page.getByRole('button', { name: 'Acknowledge' }).count(),
  };
  await check('viewer-alert');
  await page.click('nav >> text=Repairs');
  await page.getByRole('link', { name: 'clean-disk' }).first().click();
  await page.locator('#execution-status').waitFor();
  viewer.approve = await page.locator('#approve').count();
  await page.click('nav >> text=Playbooks');
  await page.getByRole('heading', { name: 'Trust by action' }).waitFor();
  viewer.pause = await page.locator('text=Pause clean-disk').count();
  viewer.run = await page.locator('text=Run clean-disk by hand…').count();
  report.viewer = viewer;
} catch (e) {
  report.failure = String(e && e.stack || e);
  await page.screenshot({ path: `${out}/failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
