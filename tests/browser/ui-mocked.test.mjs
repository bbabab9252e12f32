// The live UI against a scripted API (Playwright request interception, nothing leaves the
// browser): cases the demo binary cannot easily produce — master/worker mode, worker logs,
// Hopper's precise percentiles, a long history, 401s and a lost connection.
// Needs no hopper binary.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assemblePage, eventually, launchBrowser, screenshot, watchErrors } from './lib/harness.mjs';

// Port 1 on 127.0.0.1: nothing listens there, and every request is answered by the routes below.
const ORIGIN = 'http://127.0.0.1:1';

function liveArgs(over = {}) {
  return {
    available_user_classes: ['Visitor'], available_user_tasks: { Visitor: ['home'] }, host: 'http://127.0.0.1:8080',
    is_distributed: false, is_report: false, locustfile: 'demo', num_users: 10, spawn_rate: 2, run_time: null,
    state: 'running', user_count: 10, version: '0.1.0', worker_count: 0, percentiles_to_chart: [0.5, 0.95],
    percentiles_to_statistics: [0.95, 0.99], history: [], stats_history_enabled: false, base_path: '', auth_enabled: false,
    ...over,
  };
}
function row(name, n) {
  return { method: 'GET', name, num_requests: n, num_failures: 0, median_response_time: 3, avg_response_time: 3.2, min_response_time: 1,
    max_response_time: 20, avg_content_length: 120, current_rps: 4.2, current_fail_per_sec: 0, 'response_time_percentile_0.95': 9,
    'response_time_percentile_0.99': 15, total_rps: 4, total_fail_per_sec: 0 };
}
function statsReply(over = {}) {
  return {
    stats: [row('/', 10), { ...row('Aggregated', 10), method: '' }], errors: [], current_rps: 4.2, current_fail_per_sec: 0,
    total_rps: 4, total_fail_per_sec: 0, fail_ratio: 0,
    current_response_time_percentiles: { 'response_time_percentile_0.5': 3, 'response_time_percentile_0.95': 9 },
    precise_current_response_time_percentiles: { 'response_time_percentile_0.5': 2.75, 'response_time_percentile_0.95': 8.5 },
    state: 'running', user_count: 10, ...over,
  };
}

/** Serves the assembled page at ORIGIN/ and answers the API from `api` (path -> reply object or function). */
async function mockedPage(browser, args, api) {
  const html = await assemblePage('index.html', args);
  const page = await browser.context.newPage();
  const errors = watchErrors(page);
  const calls = [];
  await page.route(ORIGIN + '/**', async (route) => {
    const url = new URL(route.request().url());
    calls.push(url.pathname);
    if (url.pathname === '/' ) return route.fulfill({ contentType: 'text/html', body: html });
    let reply = api[url.pathname];
    if (typeof reply === 'function') reply = reply(route.request());
    if (reply === undefined) return route.fulfill({ status: 404, body: 'not found' });
    if (reply === 'abort') return route.abort();
    if (reply && reply.status) return route.fulfill({ status: reply.status, body: reply.body || '' });
    return route.fulfill({ contentType: 'application/json', body: JSON.stringify(reply) });
  });
  await page.goto(ORIGIN + '/');
  return { page, errors, calls };
}

const quietApi = {
  '/tasks': { per_class: {}, total: {} },
  '/exceptions': { exceptions: [] },
  '/logs': { master: [], workers: {} },
};

describe('live UI with a scripted API', () => {
  let browser;
  before(async () => { browser = await launchBrowser(); });
  after(async () => { await browser?.close(); });

  test('master/worker mode: workers in the header, the Workers tab and worker logs', async () => {
    const workers = [
      { id: 'vm_3f2a<b>', state: 'running', user_count: 6, cpu_usage: 12.5, memory_usage: 52428800 },
      { id: 'vm_9c1e', state: 'missing', user_count: 4, cpu_usage: 95, memory_usage: 1610612736 },
    ];
    const { page, errors } = await mockedPage(browser, liveArgs({ is_distributed: true, worker_count: 2 }), {
      ...quietApi,
      '/stats/requests': statsReply({ workers, worker_count: 2 }),
      '/logs': { master: ['[2026-11-21 08:00:00,000] vm/INFO/hopper.main: master line'], workers: { 'vm_3f2a<b>': ['w1 line a', 'w1 line b'], vm_9c1e: ['w2 line'] } },
    });
    await eventually(async () => (await page.getByTestId('header-workers').textContent()) === '2', { what: 'header workers' });
    assert.ok(await page.getByTestId('header-workers').isVisible());
    await page.getByTestId('tab-workers').click();
    await eventually(async () => (await page.getByTestId('worker-row').count()) === 2, { what: 'two worker rows' });
    const cells = await page.getByTestId('workers-body').locator('tr').first().locator('td').allTextContents();
    assert.deepEqual(cells, ['vm_3f2a<b>', 'running', '6', '12.5%', '50 MB']);
    const second = await page.getByTestId('workers-body').locator('tr').nth(1).locator('td').allTextContents();
    assert.deepEqual(second, ['vm_9c1e', 'missing', '4', '95%', '1.5 GB']);
    await screenshot(page, 'workers');
    await page.getByTestId('tab-logs').click();
    await eventually(async () => (await page.getByTestId('logs-worker').count()) === 2, { what: 'worker log groups' });
    assert.match(await page.getByTestId('logs-master').textContent(), /master line/);
    assert.match(await page.getByTestId('logs-worker').first().locator('summary').textContent(), /vm_3f2a<b> \(2 lines\)/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('charts prefer Hopper\'s precise percentiles, live and from history', async () => {
    const history = [0, 5, 10].map((s) => {
      const ts = new Date(Date.now() - 30000 + s * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
      return { time: ts, current_rps: [ts, 10], current_fail_per_sec: [ts, 1], 'response_time_percentile_0.5': [ts, 3],
        'response_time_percentile_0.95': [ts, 9], 'precise_percentile_0.5': [ts, 2.5], 'precise_percentile_0.95': [ts, 8.25],
        total_avg_response_time: [ts, 3.3], user_count: [ts, 10] };
    });
    const { page, errors } = await mockedPage(browser, liveArgs({ history }), { ...quietApi, '/stats/requests': statsReply() });
    await eventually(() => page.evaluate(() => window.hopperUI.charts.rt.length() >= 4), { what: 'a live point after the history' });
    const rt = await page.evaluate(() => window.hopperUI.charts.rt.ys);
    assert.deepEqual([rt[0][0], rt[1][0]], [2.5, 8.25], 'history points use precise_percentile_*');
    assert.deepEqual([rt[0][3], rt[1][3]], [2.75, 8.5], 'live points use precise_current_response_time_percentiles');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('falls back to Locust\'s percentiles when precise ones are absent', async () => {
    const reply = statsReply();
    delete reply.precise_current_response_time_percentiles;
    const { page } = await mockedPage(browser, liveArgs(), { ...quietApi, '/stats/requests': reply });
    await eventually(() => page.evaluate(() => window.hopperUI.charts.rt.length() >= 1), { what: 'a chart point' });
    const rt = await page.evaluate(() => window.hopperUI.charts.rt.ys.map((s) => s[0]));
    assert.deepEqual(rt, [3, 9]);
    await page.close();
  });

  test('a long history (20,000 points) is drawn decimated, with a tooltip', async (t) => {
    const start = Date.now() - 20000 * 2000;
    const history = [];
    for (let i = 0; i < 20000; i++) {
      const ts = new Date(start + i * 2000).toISOString().replace(/\.\d+Z$/, 'Z');
      const wave = Math.sin(i / 300);
      history.push({ time: ts, current_rps: [ts, 500 + 200 * wave + (i % 17)], current_fail_per_sec: [ts, 5 + 3 * wave],
        'response_time_percentile_0.5': [ts, 20 + 5 * wave], 'response_time_percentile_0.95': [ts, 80 + 30 * wave + (i % 29)],
        user_count: [ts, Math.min(1000, i)] });
    }
    const { page, errors } = await mockedPage(browser, liveArgs({ history }), { ...quietApi, '/stats/requests': statsReply({ state: 'stopped' }) });
    await page.getByTestId('tab-charts').click();
    await eventually(async () => Number(await page.getByTestId('chart-rps').getAttribute('data-points')) === 20000, { what: '20000 points' });
    const ms = await page.evaluate(() => {
      const c = window.hopperUI.charts.rps;
      const t0 = performance.now();
      for (let i = 0; i < 10; i++) c.draw();
      return (performance.now() - t0) / 10;
    });
    t.diagnostic(`one draw of 20,000 points x 2 series took ${ms.toFixed(1)} ms`);
    const box = await page.getByTestId('chart-response-times').boundingBox();
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
    await page.getByTestId('chart-response-times-card').locator('.chart-tip').waitFor({ state: 'visible' });
    await screenshot(page, 'charts-20000-points');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a 401 sends the browser to the login page', async () => {
    const { page } = await mockedPage(browser, liveArgs({ auth_enabled: true }), {
      ...quietApi,
      '/stats/requests': { status: 401, body: 'Unauthorized' },
      '/login': () => ({ status: 200, body: 'login page' }),
    });
    await page.waitForURL(ORIGIN + '/login');
    await page.close();
  });

  test('a lost connection shows a banner until the server answers again', async () => {
    let down = true;
    const { page } = await mockedPage(browser, liveArgs(), { ...quietApi, '/stats/requests': () => (down ? 'abort' : statsReply()) });
    await page.getByTestId('connection-banner').waitFor({ state: 'visible' });
    await screenshot(page, 'connection-lost');
    down = false;
    await page.getByTestId('connection-banner').waitFor({ state: 'hidden', timeout: 10000 });
    await page.close();
  });

  test('failures and exceptions show their text literally', async () => {
    const { page, errors } = await mockedPage(browser, liveArgs(), {
      ...quietApi,
      '/stats/requests': statsReply({ errors: [{ method: 'GET', name: '/x?<i>a</i>', error: "HTTPError('500 <b>bold</b> & co')", occurrences: 3, first_seen: 1795248350.9, last_seen: 1795248369.4 }] }),
      '/exceptions': { exceptions: [{ count: 2, msg: '<img src=x onerror="window.__xss=1">', traceback: '  File "t.rs", line 1, in <module>\n    boom()\n', nodes: 'local' }] },
    });
    await page.getByTestId('tab-failures').click();
    await eventually(async () => (await page.getByTestId('failure-row').count()) === 1, { what: 'a failure' });
    const cells = await page.getByTestId('failure-row').locator('td').allTextContents();
    assert.deepEqual(cells.slice(0, 4), ['3', 'GET', '/x?<i>a</i>', "HTTPError('500 <b>bold</b> & co')"]);
    await page.getByTestId('tab-exceptions').click();
    await eventually(async () => (await page.getByTestId('exception-row').count()) === 1, { what: 'an exception' });
    assert.equal(await page.getByTestId('exception-row').locator('pre').textContent(), '  File "t.rs", line 1, in <module>\n    boom()');
    assert.equal(await page.locator('main img, main b, main i').count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.getByTestId('tab-exceptions').locator('.tab-count').textContent(), '1');
    await screenshot(page, 'exceptions');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
