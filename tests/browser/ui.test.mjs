// Browser tests of Hopper's live web UI: `hopper --demo` (its own demo target on 127.0.0.1)
// driven through Debian's chromium. Runs are bounded: the form sets a run time, and every
// hopper started here is stopped through the API and then by its PID in an `after` hook.
//
//   cd tests/browser && HOPPER_BIN=/work/main/target/debug/hopper npm test

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ASSETS, CSV_HEADERS, HOPPER_BIN, eventually, launchBrowser, numberOf, screenshot, startHopper, watchErrors } from './lib/harness.mjs';

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

  test('500 distinct names: rows are reused, escaped, filterable', async (t) => {
    const p = await browser.context.newPage();
    const errs = watchErrors(p);
    let poll = 0;
    const nasty = ['<img src=x onerror="window.__xss=1">', '"double" & \'single\' </td>', '<script>window.__xss=2</script>'];
    await p.route(hopper.url + '/stats/requests', (route) => {
      poll++;
      const rows = [];
      for (let i = 0; i < 500; i++) {
        const name = i < nasty.length ? nasty[i] : `/item/${String(i).padStart(3, '0')}`;
        rows.push({ method: 'GET', name, num_requests: 1000 + i + poll, num_failures: i % 7 === 0 ? 1 : 0, median_response_time: 2, avg_response_time: 2.5,
          min_response_time: 1, max_response_time: 9, avg_content_length: 100, current_rps: 1.5, current_fail_per_sec: 0,
          'response_time_percentile_0.95': 5, 'response_time_percentile_0.99': 8, total_rps: 1, total_fail_per_sec: 0 });
      }
      rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      rows.push({ method: '', name: 'Aggregated', num_requests: 999999, num_failures: 72, median_response_time: 2, avg_response_time: 2.5, min_response_time: 1,
        max_response_time: 9, avg_content_length: 100, current_rps: 750, current_fail_per_sec: 0, 'response_time_percentile_0.95': 5,
        'response_time_percentile_0.99': 8, total_rps: 700, total_fail_per_sec: 0 });
      route.fulfill({ contentType: 'application/json', body: JSON.stringify({
        stats: rows, errors: [], current_rps: 750, current_fail_per_sec: 0, total_rps: 700, total_fail_per_sec: 0, fail_ratio: 0.0001,
        current_response_time_percentiles: { 'response_time_percentile_0.5': 2, 'response_time_percentile_0.95': 5 },
        state: 'running', user_count: 500,
      }) });
    });
    await p.goto(hopper.url + '/');
    await eventually(async () => (await p.getByTestId('stats-row').count()) === 500, { what: '500 rows' });
    // tag every row element, wait for the next poll, then check the same elements were updated in place
    const firstPoll = await p.evaluate(() => {
      document.querySelectorAll('[data-testid="stats-row"]').forEach((tr, i) => { tr.__tag = i + 1; });
      return document.querySelector('[data-testid="stats-row"] td:nth-child(3)').textContent;
    });
    await eventually(async () => (await p.locator('[data-testid="stats-row"] td:nth-child(3)').first().textContent()) !== firstPoll, { what: 'a later poll' });
    const reused = await p.evaluate(() => [...document.querySelectorAll('[data-testid="stats-row"]')].every((tr) => tr.__tag > 0));
    assert.ok(reused, 'rows were re-created instead of updated in place');
    const timing = await p.evaluate(() => {
      const t = window.hopperUI.statsTable;
      const rows = t.inputOrder.map((r) => ({ ...r.row, num_requests: r.row.num_requests + 1 }));
      const t0 = performance.now();
      t.setRows(rows, t.agg.row);
      return performance.now() - t0;
    });
    t.diagnostic(`updating 500 rows in place took ${timing.toFixed(1)} ms`);
    // escaping: names are shown literally and never become markup
    const body = p.getByTestId('stats-body');
    assert.equal(await body.locator('img').count(), 0);
    assert.equal(await body.locator('script').count(), 0);
    assert.equal(await p.evaluate(() => window.__xss), undefined);
    const names = await body.locator('tr td:nth-child(2)').allTextContents();
    for (const n of nasty) assert.ok(names.includes(n), `name shown literally: ${n}`);
    // filter
    await p.getByTestId('stats-filter').fill('/item/04');
    await eventually(async () => (await p.locator('[data-testid="stats-row"]:visible').count()) === 10, { what: 'filter to 10 rows' });
    assert.match(await p.getByTestId('stats-filter-info').textContent(), /10 of 500/);
    assert.equal(await p.getByTestId('header-users').textContent(), '500');
    await screenshot(p, 'many-names');
    assert.deepEqual(errs, []);
    await p.close();
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
