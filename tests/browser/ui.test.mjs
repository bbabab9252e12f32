// Browser tests of Hopper's live web UI: `hopper --demo` (its own demo target on 127.0.0.1)
// and the `many_names` example against `hopper-demo-target`, driven through Debian's chromium.
// Runs are bounded (a run time), and every process started here is stopped by its PID in an
// `after` hook (a hopper through the API first).
//
//   cd tests/browser && HOPPER_BIN=/work/main/target/debug/hopper npm test

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ASSETS, CSV_HEADERS, HOPPER_BIN, eventually, launchBrowser, numberOf, screenshot, startDemoTarget, startExample, startHopper, watchErrors } from './lib/harness.mjs';

/** "# Requests" of the Aggregated row. */
async function aggregatedRequests(page) {
  return numberOf(page.getByTestId('stats-aggregated').locator('td').nth(2));
}
async function headerState(page) {
  return ((await page.getByTestId('header-state').textContent()) || '').trim();
}
async function firstLineOf(path) {
  const text = await readFile(path, 'utf8');
  return text.replace(/^\uFEFF/, '').split(/\r?\n/)[0];
}
async function paintedPixels(locator) {
  return locator.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
}

describe('live UI against hopper --demo', { timeout: 240000 }, () => {
  let hopper, browser, page, errors, csvDir;

  before(async () => {
    csvDir = await mkdtemp(join(tmpdir(), 'hopper-ui-csv-'));
    hopper = await startHopper(['--csv', join(csvDir, 'run'), '--csv-full-history']);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    errors = watchErrors(page);
    await page.goto(hopper.url + '/');
  });

  after(async () => {
    await browser?.close();
    await hopper?.stop();
    if (csvDir) await rm(csvDir, { recursive: true, force: true });
  });

  test('the binary serves the current assets (else rebuild it)', async () => {
    const html = await (await fetch(hopper.url + '/')).text();
    for (const f of ['app.js', 'app.css']) {
      const text = await readFile(join(ASSETS, f), 'utf8');
      assert.ok(html.includes(text), `${HOPPER_BIN} embeds an older ${f}: run cargo build --bin hopper`);
    }
  });

  test('the start form is shown and prefilled', async () => {
    await page.getByTestId('start-form').waitFor();
    assert.equal(await page.getByTestId('dashboard').isVisible(), false);
    const args = await page.evaluate(() => window.templateArgs);
    assert.equal(args.is_report, false);
    assert.equal(await page.getByTestId('start-host').inputValue(), args.host);
    assert.match(args.host, /^http:\/\/127\.0\.0\.1:\d+/, '--demo sets the demo target as host');
    assert.equal(await headerState(page), 'Ready');
    assert.equal(await page.getByTestId('btn-stop').isVisible(), false);
    await screenshot(page, 'start-form');
  });

  test('a refused start shows the server message in the form', async () => {
    await page.getByTestId('start-user-count').fill('abc');
    await page.getByTestId('start-button').click();
    const err = page.getByTestId('start-error');
    await err.waitFor({ state: 'visible' });
    assert.match(await err.textContent(), /user_count/);
    assert.equal(await headerState(page), 'Ready');
  });

  test('starting from the form switches to the dashboard', async () => {
    await page.getByTestId('start-user-count').fill('20');
    await page.getByTestId('start-spawn-rate').fill('10');
    await page.getByTestId('start-advanced').locator('summary').click();
    await page.getByTestId('start-run-time').fill('3m');
    await page.getByTestId('start-button').click();
    await page.getByTestId('dashboard').waitFor({ state: 'visible' });
    assert.equal(await page.getByTestId('start-view').isVisible(), false);
    await eventually(async () => /Spawning|Running/.test(await headerState(page)), { what: 'state spawning/running' });
    assert.equal(await page.getByTestId('start-error').isVisible(), false);
  });

  test('stats rows and the Aggregated row appear and counts grow', async () => {
    await eventually(async () => (await page.getByTestId('stats-row').count()) >= 3, { what: 'three stats rows' });
    const agg = page.getByTestId('stats-aggregated');
    assert.match(await agg.textContent(), /Aggregated/);
    // Aggregated is the last row of the table
    const lastRowText = await page.getByTestId('stats-table').locator('tr').last().textContent();
    assert.match(lastRowText, /Aggregated/);
    const first = await eventually(async () => { const n = await aggregatedRequests(page); return n > 0 && n; }, { what: 'requests counted' });
    await eventually(async () => (await aggregatedRequests(page)) > first, { what: 'counts to grow' });
    await eventually(async () => (await numberOf(page.getByTestId('header-users'))) === 20, { what: '20 users', timeoutMs: 30000 });
    await eventually(async () => (await numberOf(page.getByTestId('header-rps'))) > 0, { what: 'RPS > 0' });
    assert.equal(await headerState(page), 'Running');
    for (const id of ['btn-edit', 'btn-stop', 'btn-reset']) assert.ok(await page.getByTestId(id).isVisible(), id);
    assert.equal(await page.getByTestId('btn-new-test').isVisible(), false);
    assert.equal(await page.getByTestId('header-workers').isVisible(), false, 'workers only when distributed');
    await screenshot(page, 'dashboard');
  });

  test('the stats table filters by name and sorts by column', async () => {
    const rows = page.getByTestId('stats-row');
    const total = await rows.count();
    await page.getByTestId('stats-filter').fill('/products');
    const visible = page.locator('[data-testid="stats-row"]:visible');
    await eventually(async () => (await visible.count()) < total, { what: 'filter to hide rows' });
    for (const t of await visible.locator('td:nth-child(2)').allTextContents()) assert.match(t, /\/products/);
    await page.getByTestId('stats-filter').fill('');
    await eventually(async () => (await visible.count()) === (await rows.count()), { what: 'filter cleared' });

    const header = page.getByTestId('stats-table').locator('th', { hasText: '# Requests' });
    const counts = async () => (await page.getByTestId('stats-body').locator('tr td:nth-child(3)').allTextContents()).map((t) => Number(t.replace(/,/g, '')));
    await header.click(); // numbers sort largest first
    let c = await counts();
    assert.deepEqual(c, [...c].sort((a, b) => b - a));
    await header.click();
    c = await counts();
    assert.deepEqual(c, [...c].sort((a, b) => a - b));
    await header.click(); // back to the server's order (by name)
    const names = await page.getByTestId('stats-body').locator('tr td:nth-child(2)').allTextContents();
    assert.equal(names.length, await rows.count());
  });

  test('charts are drawn with data, with a hover tooltip', async () => {
    await page.getByTestId('tab-charts').click();
    await page.getByTestId('panel-charts').waitFor({ state: 'visible' });
    await eventually(async () => Number(await page.getByTestId('chart-rps').getAttribute('data-points')) >= 3, { what: 'three chart points', timeoutMs: 30000 });
    for (const id of ['chart-rps', 'chart-response-times', 'chart-users']) {
      const points = Number(await page.getByTestId(id).getAttribute('data-points'));
      assert.ok(points >= 3, `${id} has ${points} points`);
      assert.ok((await paintedPixels(page.getByTestId(id))) > 1000, `${id} is blank`);
    }
    const model = await page.evaluate(() => {
      const c = window.hopperUI.charts;
      return { rps: c.rps.length(), users: c.users.ys[0].filter((v) => v > 0).length, rt: c.rt.ys.map((s) => s.filter(Number.isFinite).length) };
    });
    assert.ok(model.rps >= 3 && model.users >= 1, JSON.stringify(model));
    assert.ok(model.rt.every((n) => n >= 1), `response time lines have values: ${JSON.stringify(model)}`);
    const box = await page.getByTestId('chart-rps').boundingBox();
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height / 2);
    await page.getByTestId('chart-rps-card').locator('.chart-tip').waitFor({ state: 'visible' });
    assert.match(await page.getByTestId('chart-rps-card').locator('.chart-tip').textContent(), /RPS/);
    await screenshot(page, 'charts');
    await page.mouse.move(5, 5);
  });

  test('failures, exceptions, ratio, logs and workers tabs', async () => {
    await page.getByTestId('tab-failures').click();
    // the demo target answers /flaky with some 500s and unknown product ids with 404
    await eventually(async () => (await page.getByTestId('failure-row').count()) >= 1, { what: 'a failure row', timeoutMs: 30000 });
    const ths = await page.getByTestId('failures-table').locator('th').allTextContents();
    assert.deepEqual(ths.slice(0, 4), ['# Failures', 'Method', 'Name', 'Message']);
    await screenshot(page, 'failures');

    await page.getByTestId('tab-exceptions').click();
    const exHead = await page.getByTestId('exceptions-table').locator('th').allTextContents();
    assert.deepEqual(exHead.slice(0, 3), ['# occurrences', 'Message', 'Traceback']);

    await page.getByTestId('tab-ratio').click();
    const classes = await page.evaluate(() => window.templateArgs.available_user_classes);
    await eventually(async () => (await page.getByTestId('ratio-per-class').count()) === 1, { what: 'ratio', timeoutMs: 15000 });
    const perClass = await page.getByTestId('ratio-per-class').textContent();
    for (const c of classes) assert.ok(perClass.includes(c), `ratio lists ${c}`);
    assert.match(perClass, /\d+\.\d%/);
    assert.match(await page.getByTestId('ratio-total').textContent(), /\d+\.\d%/);
    await screenshot(page, 'ratio');

    await page.getByTestId('tab-logs').click();
    await eventually(async () => ((await page.getByTestId('logs-master').textContent()) || '').includes('20'), { what: 'log lines', timeoutMs: 15000 });
    await screenshot(page, 'logs');

    await page.getByTestId('tab-workers').click();
    assert.match(await page.getByTestId('workers-empty').textContent(), /--master/);

    await page.getByTestId('tab-download').click();
    await screenshot(page, 'download');
  });

  test('dark theme and a 1920x1080 screen', async () => {
    await page.setViewportSize({ width: 1920, height: 1080 });
    await page.getByTestId('tab-statistics').click();
    await screenshot(page, 'dashboard-1920');
    await page.getByTestId('btn-theme').click();
    assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), 'dark');
    await screenshot(page, 'dashboard-dark');
    await page.getByTestId('tab-charts').click();
    await page.waitForTimeout(300); // one animation frame to repaint the canvases in the dark palette
    await screenshot(page, 'charts-dark');
    await page.getByTestId('btn-theme').click();
    assert.equal(await page.evaluate(() => document.documentElement.getAttribute('data-theme')), 'light');
    await page.setViewportSize({ width: 1366, height: 768 });
  });

  test('edit changes the number of users', async () => {
    await page.getByTestId('tab-statistics').click();
    await page.getByTestId('btn-edit').click();
    await page.getByTestId('edit-modal').waitFor();
    assert.equal(await page.getByTestId('edit-user-count').inputValue(), '20');
    assert.equal(await page.getByTestId('edit-spawn-rate').inputValue(), '10');
    await page.getByTestId('edit-user-count').fill('5');
    await screenshot(page, 'edit-modal');
    await page.getByTestId('edit-submit').click();
    await page.getByTestId('edit-modal').waitFor({ state: 'detached' });
    await eventually(async () => (await numberOf(page.getByTestId('header-users'))) === 5, { what: 'header users to drop to 5', timeoutMs: 30000 });
  });

  test('download links serve Locust\'s CSV headers', async () => {
    await page.getByTestId('tab-download').click();
    const links = {
      requests: 'download-requests-csv',
      history: 'download-history-csv',
      failures: 'download-failures-csv',
      exceptions: 'download-exceptions-csv',
    };
    assert.equal(await page.evaluate(() => window.templateArgs.stats_history_enabled), true, 'started with --csv-full-history');
    for (const [kind, testid] of Object.entries(links)) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId(testid).click()]);
      const path = await download.path();
      assert.equal(await firstLineOf(path), CSV_HEADERS[kind], `${kind} CSV header`);
      assert.match(download.suggestedFilename(), /\.csv$/, `${kind} file name`);
      if (kind === 'requests') assert.match(await readFile(path, 'utf8'), /\r\n,Aggregated,/);
    }
  });

  test('the report opens in a new tab with every section', async () => {
    await page.getByTestId('tab-download').click();
    const [report] = await Promise.all([browser.context.waitForEvent('page'), page.getByTestId('download-report').click()]);
    const reportErrors = watchErrors(report);
    await report.getByTestId('report').waitFor();
    assert.match(await report.getByTestId('report-host').textContent(), /^http:\/\/127\.0\.0\.1:\d+/);
    for (const h of ['Request Statistics', 'Response Time Statistics', 'Failures Statistics', 'Exceptions Statistics', 'Charts', 'Final ratio']) {
      assert.equal(await report.locator('h2', { hasText: h }).count(), 1, h);
    }
    assert.ok((await report.getByTestId('report-requests-body').locator('tr').count()) >= 3);
    assert.match(await report.getByTestId('report-requests-aggregated').textContent(), /Aggregated/);
    assert.ok((await report.getByTestId('report-response-times-body').locator('tr').count()) >= 3);
    assert.ok((await report.getByTestId('report-failures-body').locator('tr').count()) >= 1);
    assert.ok(Number(await report.getByTestId('chart-rps').getAttribute('data-points')) >= 1, 'report chart from history');
    assert.equal(await report.getByTestId('ratio-per-class').count(), 1);
    assert.equal(await report.getByTestId('report-download').getAttribute('href'), '?download=1');
    await screenshot(report, 'report', { fullPage: true });
    assert.deepEqual(reportErrors, []);
    await report.close();
  });

  test('the downloaded report is one file that renders offline', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-report-file').click()]);
    assert.match(download.suggestedFilename(), /\.html$/);
    const html = await readFile(await download.path(), 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+stylesheet/i);
    const dir = await mkdtemp(join(tmpdir(), 'hopper-report-'));
    try {
      const file = join(dir, 'report.html');
      await import('node:fs/promises').then((fs) => fs.writeFile(file, html));
      const offline = await browser.context.newPage();
      const external = [];
      await offline.route('**/*', (route) => {
        const u = route.request().url();
        if (u.startsWith('file:') || u.startsWith('data:')) return route.continue();
        external.push(u);
        return route.abort();
      });
      const errs = watchErrors(offline);
      await offline.goto(pathToFileURL(file).href);
      await offline.getByTestId('report').waitFor();
      assert.equal(await offline.getByTestId('report-download').count(), 0, 'no download link in the downloaded report');
      assert.ok((await offline.getByTestId('report-requests-body').locator('tr').count()) >= 3);
      assert.deepEqual(external, []);
      assert.deepEqual(errs, []);
      await offline.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('stop ends the run', async () => {
    await page.getByTestId('tab-statistics').click();
    await page.getByTestId('btn-stop').click();
    await eventually(async () => (await headerState(page)) === 'Stopped', { what: 'state Stopped', timeoutMs: 20000 });
    await page.getByTestId('btn-new-test').waitFor({ state: 'visible' });
    assert.equal(await page.getByTestId('btn-stop').isVisible(), false);
    assert.equal(await page.getByTestId('btn-edit').isVisible(), false);
  });

  test('reset stats drops the counts', async () => {
    const before = await aggregatedRequests(page);
    assert.ok(before > 0);
    await page.getByTestId('btn-reset').click();
    await eventually(async () => (await aggregatedRequests(page)) === 0, { what: 'aggregated count to reset to 0', timeoutMs: 20000 });
    await eventually(async () => (await page.getByTestId('failure-row').count()) === 0, { what: 'failures cleared', timeoutMs: 20000 });
  });

  test('a new test from the stopped state runs for its run time and stops', async () => {
    await page.getByTestId('btn-new-test').click();
    const modal = page.getByTestId('new-test-modal');
    await modal.waitFor();
    await modal.getByTestId('start-user-count').fill('4');
    await modal.getByTestId('start-spawn-rate').fill('4');
    const adv = modal.getByTestId('start-advanced');
    if (!(await adv.getAttribute('open') !== null)) await adv.locator('summary').click();
    await modal.getByTestId('start-run-time').fill('6s');
    await screenshot(page, 'new-test-modal');
    await modal.getByTestId('start-button').click();
    await modal.waitFor({ state: 'detached' });
    await eventually(async () => (await numberOf(page.getByTestId('header-users'))) === 4, { what: '4 users', timeoutMs: 20000 });
    await eventually(async () => (await aggregatedRequests(page)) > 0, { what: 'requests in the new run' });
    await eventually(async () => (await headerState(page)) === 'Stopped', { what: 'the run time to end the test', timeoutMs: 40000 });
  });

  test('no script errors on the page', () => {
    assert.deepEqual(errors, []);
  });
});

// What examples/many_names.rs requests: 600 pages plus a few names full of markup (kept in step
// with MARKUP_NAMES there). The server sends the first 500 names in sorted order (Locust's cap),
// and the markup names sort first.
const MANY_PAGES = 600;
const MARKUP_NAMES = [
  '/escape/<img src=x onerror=window.__xss=1>',
  '/escape/<script>window.__xss=2</script>',
  `/escape/"double" & 'single' </td>`,
  '/escape/&amp; &lt;b&gt;',
];
const ALL_NAMES = [...Array.from({ length: MANY_PAGES }, (_, n) => `/fast?page=${n}`), ...MARKUP_NAMES].sort();
const SHOWN_NAMES = ALL_NAMES.slice(0, 500);

describe('many_names example against hopper-demo-target: 600+ real names', { timeout: 180000 }, () => {
  let target, hopper, browser, page, errors;

  before(async () => {
    target = await startDemoTarget(['--threads', '2']);
    hopper = await startExample('many_names', ['-H', target.url, '--autostart', '-u', '20', '-r', '20', '-t', '150s', '--autoquit', '5']);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    errors = watchErrors(page);
    // long tasks (main thread busy > 50 ms) while the real table updates; reported, loosely bounded
    await page.addInitScript(() => {
      window.__longTasks = [];
      try {
        new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
          .observe({ type: 'longtask', buffered: true });
      } catch { /* not supported: nothing to report */ }
    });
    await page.goto(hopper.url + '/');
  });

  after(async () => {
    await browser?.close();
    await hopper?.stop();
    await target?.stop();
  });

  test('the example serves the current assets (else rebuild it)', async () => {
    const html = await (await fetch(hopper.url + '/')).text();
    for (const f of ['app.js', 'app.css']) {
      const text = await readFile(join(ASSETS, f), 'utf8');
      assert.ok(html.includes(text), `many_names embeds an older ${f}: run cargo build -p hopper --examples`);
    }
  });

  test('500 rows + Aggregated, Locust\'s cap, in the server\'s order', async () => {
    const names = () => page.locator('[data-testid="stats-row"] td:nth-child(2)').allTextContents();
    // every name is seen within a lap of the shared counter; then the 500 sent are fixed
    await eventually(async () => (await names()).join('\n') === SHOWN_NAMES.join('\n'),
      { what: 'the first 500 of the 604 names, sorted', timeoutMs: 60000 });
    assert.equal(await page.getByTestId('stats-row').count(), 500);
    assert.equal((await page.getByTestId('stats-aggregated').locator('td').nth(1).textContent()).trim(), 'Aggregated');
    assert.equal(await page.getByTestId('stats-filter-info').textContent(), '500 names');
    await eventually(async () => (await numberOf(page.getByTestId('header-users'))) === 20, { what: '20 users' });
    // the CSV download is not capped: all 604 names and Aggregated
    const csv = await (await fetch(hopper.url + '/stats/requests/csv')).text();
    assert.equal(csv.trim().split(/\r?\n/).length, 1 + ALL_NAMES.length + 1);
  });

  test('rows are updated in place across polls', async (t) => {
    // time every real update of the table
    await page.evaluate(() => {
      const table = window.hopperUI.statsTable;
      const setRows = table.setRows;
      window.__setRowsMs = [];
      table.setRows = function (...args) {
        const t0 = performance.now();
        const r = setRows.apply(this, args);
        window.__setRowsMs.push(performance.now() - t0);
        return r;
      };
    });
    const rows = page.locator('[data-testid="stats-row"]');
    const counts = () => page.locator('[data-testid="stats-row"] td:nth-child(3)').allTextContents();
    const tagged = await page.evaluate(() => [...document.querySelectorAll('[data-testid="stats-row"]')]
      .map((tr, i) => { tr.__tag = i + 1; tr.__name = tr.cells[1].textContent; return tr.__name; }));
    assert.equal(tagged.length, 500);
    const first = await counts();
    const inPlace = () => page.evaluate(() => {
      const trs = [...document.querySelectorAll('[data-testid="stats-row"]')];
      return {
        rows: trs.length,
        tagged: trs.filter((tr) => tr.__tag > 0).length,
        distinct: new Set(trs.map((tr) => tr.__tag)).size,
        sameName: trs.filter((tr) => tr.cells[1].textContent === tr.__name).length,
      };
    });
    const same = { rows: 500, tagged: 500, distinct: 500, sameName: 500 };
    let total = await aggregatedRequests(page);
    for (let poll = 1; poll <= 3; poll++) {
      const before = total;
      total = await eventually(async () => { const n = await aggregatedRequests(page); return n > before ? n : 0; },
        { what: `poll ${poll} to raise the Aggregated count above ${before}` });
      assert.deepEqual(await inPlace(), same, `after poll ${poll}: rows were re-created instead of updated in place`);
    }
    // each lap of the counter requests every name, so every row's count moves
    await eventually(async () => (await counts()).every((c, i) => c !== first[i]), { what: 'every row\'s count to change', timeoutMs: 60000 });
    assert.deepEqual(await inPlace(), same, 'rows were re-created instead of updated in place');
    assert.equal(await rows.count(), 500);
    const ms = await page.evaluate(() => window.__setRowsMs);
    assert.ok(ms.length >= 3, `setRows ran ${ms.length} times`);
    const max = Math.max(...ms);
    t.diagnostic(`updating 500 real rows in place: ${ms.length} polls, median ${ms.sort((a, b) => a - b)[ms.length >> 1].toFixed(1)} ms, max ${max.toFixed(1)} ms`);
    assert.ok(max < 5000, `an update of the table took ${max} ms`);
  });

  test('names with markup are shown literally and never run', async () => {
    const body = page.getByTestId('stats-body');
    assert.equal(await body.locator('img').count(), 0);
    assert.equal(await body.locator('script').count(), 0);
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    const names = await body.locator('tr td:nth-child(2)').allTextContents();
    assert.deepEqual(names.slice(0, MARKUP_NAMES.length), [...MARKUP_NAMES].sort(), 'the markup names, literally, first');
    // and the HTML report built from the same real stats
    const report = await browser.context.newPage();
    const reportErrors = watchErrors(report);
    await report.goto(hopper.url + '/stats/report');
    const reportNames = await report.getByTestId('report-requests-table').locator('tbody tr td:nth-child(2)').allTextContents();
    for (const n of MARKUP_NAMES) assert.ok(reportNames.includes(n), `report shows literally: ${n}`);
    assert.equal(await report.locator('img[src="x"]').count(), 0);
    assert.equal(await report.evaluate(() => window.__xss), undefined);
    assert.deepEqual(reportErrors, []);
    await report.close();
  });

  test('the filter works on the real rows and the page stays responsive', async (t) => {
    const filter = page.getByTestId('stats-filter');
    const info = page.getByTestId('stats-filter-info');
    const visible = page.locator('[data-testid="stats-row"]:visible');
    const expect = (q) => SHOWN_NAMES.filter((n) => `${n} get`.includes(q.toLowerCase()));
    // typed key by key, each keystroke filtering 500 rows while polls keep coming
    await filter.click();
    const t0 = Date.now();
    await page.keyboard.type('escape');
    await eventually(async () => (await info.textContent()) === '4 of 500 names', { what: '"escape" to leave 4 rows', intervalMs: 20 });
    const typed = Date.now() - t0;
    assert.deepEqual(await visible.locator('td:nth-child(2)').allTextContents(), [...MARKUP_NAMES].sort());
    await filter.fill('page=42');
    await eventually(async () => (await visible.count()) === expect('page=42').length, { what: 'filter to page=42' });
    assert.deepEqual(await visible.locator('td:nth-child(2)').allTextContents(), expect('page=42'));
    assert.equal(await info.textContent(), `${expect('page=42').length} of 500 names`);
    // /fast?page=99 is a real name (it is in the CSV) but not among the 500 rows the UI gets
    await filter.fill('page=99');
    await eventually(async () => (await info.textContent()) === '0 of 500 names', { what: 'page=99 to be beyond the cap' });
    assert.equal(await visible.count(), 0);
    await filter.fill('&AMP;');
    await eventually(async () => (await visible.count()) === 1, { what: 'the entity name, case-insensitively' });
    assert.equal(await visible.locator('td:nth-child(2)').textContent(), '/escape/&amp; &lt;b&gt;');
    await filter.fill('');
    await eventually(async () => (await info.textContent()) === '500 names', { what: 'the filter to clear' });
    // a round trip through another tab while the table keeps updating
    const t1 = Date.now();
    await page.getByTestId('tab-charts').click();
    await page.getByTestId('chart-rps').waitFor({ state: 'visible' });
    await page.getByTestId('tab-statistics').click();
    await page.getByTestId('stats-row').first().waitFor({ state: 'visible' });
    const tabs = Date.now() - t1;
    const longTasks = await page.evaluate(() => window.__longTasks);
    const longest = longTasks.length ? Math.max(...longTasks) : 0;
    t.diagnostic(`typing "escape": ${typed} ms; tab round trip: ${tabs} ms; ${longTasks.length} long tasks, longest ${longest.toFixed(0)} ms`);
    // sanity bounds only: the machines are shared
    assert.ok(typed < 5000, `typing 6 keys into the filter took ${typed} ms`);
    assert.ok(tabs < 5000, `switching tabs and back took ${tabs} ms`);
    assert.ok(longest < 5000, `the main thread was blocked for ${longest} ms`);
    await page.evaluate(() => document.querySelector('.table-wrap').scrollTo(0, 0));
    await screenshot(page, 'many-names');
    assert.equal(await headerState(page), 'Running');
  });

  test('no script errors on the page', () => {
    assert.deepEqual(errors, []);
  });
});

describe('--web-base-path /hopper (with --web-login)', { timeout: 120000 }, () => {
  let hopper, browser, page, errors;
  const seen = [];
  const basic = { authorization: 'Basic ' + Buffer.from('admin:secret').toString('base64') };

  before(async () => {
    hopper = await startHopper(['--web-base-path', '/hopper', '--web-login', '--web-auth', 'admin:secret']);
    browser = await launchBrowser();
    page = await browser.context.newPage();
    errors = watchErrors(page);
    page.on('request', (r) => seen.push(new URL(r.url()).pathname));
  });

  after(async () => {
    await browser?.close();
    await hopper?.stop(basic);
  });

  test('every request and link carries the base path', async () => {
    assert.match(hopper.url, /\/hopper$/, 'the logged URL includes the base path');
    await page.goto(hopper.url + '/');
    await page.getByTestId('login-form').waitFor();
    assert.equal(new URL(page.url()).pathname, '/hopper/login');
    await page.getByTestId('login-username').fill('admin');
    await page.getByTestId('login-password').fill('secret');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('start-form').waitFor();
    assert.equal(await page.getByTestId('logout-link').getAttribute('href'), '/hopper/logout');
    await page.getByTestId('start-user-count').fill('2');
    await page.getByTestId('start-spawn-rate').fill('2');
    await page.getByTestId('start-advanced').locator('summary').click();
    await page.getByTestId('start-run-time').fill('30s');
    await page.getByTestId('start-button').click();
    await eventually(async () => (await page.getByTestId('stats-row').count()) >= 1, { what: 'stats rows' });
    await eventually(() => seen.some((p) => p === '/hopper/tasks') && seen.some((p) => p === '/hopper/logs'), { what: 'aux polls' });
    assert.deepEqual(seen.filter((p) => !p.startsWith('/hopper/')), [], 'requests outside the base path');
    for (const id of ['download-requests-csv', 'download-failures-csv', 'download-exceptions-csv', 'download-report', 'download-report-file']) {
      assert.match(await page.getByTestId(id).getAttribute('href'), /^\/hopper\//, id);
    }
    await page.getByTestId('btn-stop').click();
    await eventually(async () => (await headerState(page)) === 'Stopped', { what: 'stopped' });
    assert.deepEqual(errors, []);
  });
});

describe('login with --web-login', { timeout: 120000 }, () => {
  let hopper, browser, page;

  before(async () => {
    hopper = await startHopper(['--web-login', '--web-auth', 'admin:secret']);
    browser = await launchBrowser();
    page = await browser.context.newPage();
  });

  after(async () => {
    await browser?.close();
    await hopper?.stop({ authorization: 'Basic ' + Buffer.from('admin:secret').toString('base64') });
  });

  test('the API refuses requests without a login', async () => {
    const r = await fetch(hopper.url + '/stats/requests', { redirect: 'manual' });
    assert.equal(r.status, 401);
  });

  test('the UI sends a browser to the login form; a wrong password is refused', async () => {
    await page.goto(hopper.url + '/');
    await page.getByTestId('login-form').waitFor();
    assert.equal(await page.getByTestId('login-error').isVisible(), false);
    await screenshot(page, 'login');
    await page.getByTestId('login-username').fill('admin');
    await page.getByTestId('login-password').fill('wrong');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('login-error').waitFor({ state: 'visible' });
    assert.match(await page.getByTestId('login-error').textContent(), /Invalid username or password/);
    await screenshot(page, 'login-error');
  });

  test('logging in shows the dashboard', async () => {
    await page.getByTestId('login-username').fill('admin');
    await page.getByTestId('login-password').fill('secret');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('topbar').waitFor();
    await page.getByTestId('start-form').waitFor();
    assert.equal(await page.evaluate(() => window.templateArgs.auth_enabled), true);
    await page.getByTestId('logout-link').waitFor();
    const r = await page.request.get(hopper.url + '/stats/requests');
    assert.equal(r.status(), 200);
    assert.equal((await r.json()).state, 'ready');
    await eventually(async () => (await page.getByTestId('header-state').textContent()).trim() === 'Ready', { what: 'polling works' });
  });

  test('logging out returns to the login form', async () => {
    await page.getByTestId('logout-link').click();
    await page.getByTestId('login-form').waitFor();
    const r = await page.request.get(hopper.url + '/stats/requests', { maxRedirects: 0 });
    assert.equal(r.status(), 401);
  });
});
