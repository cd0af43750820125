// Opens a page in Debian's headless chromium, waits for it to load, and prints as JSON what
// it drew: each inline <svg>'s rendered size and how many of its lines have a visible length.
// Takes a full-page screenshot. playwright makes a fresh empty profile for each launch. Used by medic's end-to-end tests:
//
//   node render.mjs URL_OR_FILE OUT.png
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';

const [target, out] = process.argv.slice(2);
if (!target || !out) {
  console.error('usage: node render.mjs URL_OR_FILE OUT.png');
  process.exit(2);
}
const url = /^https?:/.test(target) ? target : pathToFileURL(target).href;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(executablePath)) {
  console.error(`${executablePath} not found: install the Debian package chromium`);
  process.exit(3);
}
const browser = await chromium.launch({
  executablePath,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const requests = [];
  page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  const drawn = await page.evaluate(() => [...document.querySelectorAll('svg')].map((svg) => {
    const box = svg.getBoundingClientRect();
    const lines = [...svg.querySelectorAll('polyline, line')].filter((l) => {
      const b = l.getBBox();
      return b.width > 0 || b.height > 0;
    });
    return {
      width: box.width,
      height: box.height,
      visible_lines: lines.length,
      series: svg.querySelectorAll('polyline.series').length,
      markers: [...svg.querySelectorAll('line.marker')].length,
      title: svg.querySelector('title')?.textContent ?? '',
    };
  }));
  await page.screenshot({ path: out, fullPage: true });
  const title = await page.title();
  console.log(JSON.stringify({ title, svgs: drawn, errors, requests }));
} finally {
  await browser.close();
}
