// report_browser.cjs - opens a testbench report in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) and prints what test_report.c asserts on, as one JSON line:
// console errors and page errors, every request the page made, each chart's state (Chart.js
// instance, datasets, data points, painted pixels), the guidance matrix's cells and the SLO and
// workload shown above each matrix, and a
// workload tables' rows, and a full-page screenshot written to the path given.
//   node report_browser.cjs REPORT.html SCREENSHOT.png   (PLAYWRIGHT_CORE = the module's folder)
'use strict';
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

async function main() {
  const [html, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in CI needs --no-sandbox; the rest keep Chromium's own traffic off the (closed) network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const url = 'file://' + html;
  const out = { console: [], page_errors: [], requests: [] };
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.type() + ': ' + m.text()); });
  page.on('pageerror', (e) => out.page_errors.push(String(e)));
  page.on('request', (r) => { if (r.url() !== url) out.requests.push(r.url()); });
  await page.goto(url, { waitUntil: 'load' });
  out.charts = await page.evaluate(() => Array.from(document.querySelectorAll('canvas')).map((c) => {
    const chart = window.Chart ? Chart.getChart(c) : undefined;
    let points = 0;
    if (chart) {
      chart.data.datasets.forEach((d) => {
        points += d.data.filter((v) => v !== null && v !== undefined &&
          (typeof v !== 'object' || (v.y !== null && v.y !== undefined))).length;
      });
    }
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink++;
    // A study setup's chart names its setup (the section heading's data-setup-name) and lists
    // each series with its point count, so the test can hold them against study.csv.
    const heading = c.dataset.setup !== undefined ? document.getElementById('setup' + c.dataset.setup) : null;
    const series = chart ? chart.data.datasets.map((d) => ({
      label: d.label, n: d.data.filter((v) => v && v.y !== null && v.y !== undefined).length,
      xs: d.data.map((v) => (v && typeof v === 'object' ? v.x : null)),
      ys: d.data.map((v) => (typeof v === 'number' ? v : v && typeof v === 'object' ? v.y : null)) })) : [];
    return { kind: c.dataset.kind || '', detail: c.dataset.metric || c.dataset.series || '',
             run: c.dataset.run || '', setup: heading ? heading.dataset.setupName : '',
             chart: !!chart, datasets: chart ? chart.data.datasets.length : 0,
             points: points, ink: ink, series: series };
  }));
  out.setups = await page.evaluate(() => Array.from(document.querySelectorAll('h3.setup')).map((h) => {
    let text = '';
    for (let e = h.nextElementSibling; e && e.tagName !== 'H3'; e = e.nextElementSibling) text += e.textContent + '\n';
    return { name: h.dataset.setupName, text: h.textContent + '\n' + text };
  }));
  // The workload tables (workload, sessions, turns, reasoning): each row's cell texts.
  out.tables = await page.evaluate(() => Array.from(document.querySelectorAll(
    'table.workload, table.sessions, table.turns, table.reasoning')).map((t) => ({
    kind: t.className, run: t.dataset.run || '',
    rows: Array.from(t.querySelectorAll('tbody tr')).map((tr) =>
      Array.from(tr.querySelectorAll('td')).map((td) => td.textContent)) })));
  out.cells = await page.evaluate(() => Array.from(document.querySelectorAll('td.cell')).map((td) =>
    Object.assign({ class: td.className, text: td.textContent }, td.dataset)));
  // Each guidance matrix with the text shown above it (its SLO and workload), in page order.
  out.matrices = await page.evaluate(() => Array.from(document.querySelectorAll('table.matrix')).map((t) => {
    let e = t.previousElementSibling;
    while (e && !(e.matches && e.matches('p.basis'))) e = e.previousElementSibling;
    const r = t.getBoundingClientRect();
    const b = e ? e.getBoundingClientRect() : null;
    return { basis: e ? e.textContent : '', workload: e ? e.dataset.workload : '',
             above: !!(b && b.bottom <= r.top + 1), visible: !!(b && b.height > 0) };
  }));
  await page.screenshot({ path: shot, fullPage: true });
  await browser.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
