// The HTML report renders from templateArgs alone, with no network, from the exact report
// arguments real Locust 2.47 produces (fixtures/locust-2.47-report-args.json, captured from
// `GET /stats/report`). Also checks the assets are self-contained (no external URLs).
// Needs no hopper binary.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ASSETS, ROOT, assemblePage, launchBrowser, screenshot, watchErrors, writeTemp } from './lib/harness.mjs';

const fixture = JSON.parse(await readFile(join(ROOT, 'fixtures', 'locust-2.47-report-args.json'), 'utf8'));

describe('assets', () => {
  test('reference no external resources (works offline, no CDN)', async () => {
    for (const f of ['index.html', 'login.html', 'app.css', 'app.js']) {
      const text = await readFile(join(ASSETS, f), 'utf8');
      const urls = (text.match(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'")]*/gi) || [])
        .filter((u) => !u.startsWith('http://www.w3.org/2000/svg') && !u.startsWith('//www.w3.org/2000/svg'));
      assert.deepEqual(urls, [], `${f} references external URLs`);
      assert.doesNotMatch(text, /<script[^>]+src=|<link[^>]+rel=["']?stylesheet/i, `${f} loads a file`);
    }
  });

  test('app.js and app.css can be inlined safely', async () => {
    const js = await readFile(join(ASSETS, 'app.js'), 'utf8');
    const css = await readFile(join(ASSETS, 'app.css'), 'utf8');
    assert.doesNotMatch(js, /<\/script/i);
    assert.doesNotMatch(css, /<\/style/i);
    for (const marker of ['/*TEMPLATE_ARGS*/', '/*APP_CSS*/', '/*APP_JS*/', '/*LOGIN_ERROR*/', '/*BASE_PATH*/']) {
      assert.ok(!js.includes(marker) && !css.includes(marker), `marker ${marker} inside app.js/app.css`);
    }
    const index = await readFile(join(ASSETS, 'index.html'), 'utf8');
    for (const marker of ['/*TEMPLATE_ARGS*/null', '/*APP_CSS*/', '/*APP_JS*/']) assert.ok(index.includes(marker), marker);
    const login = await readFile(join(ASSETS, 'login.html'), 'utf8');
    for (const marker of ['/*LOGIN_ERROR*/', '/*APP_CSS*/']) assert.ok(login.includes(marker), marker);
  });
});

describe('report from Locust 2.47 report args, offline', () => {
  let browser, page, file, errors;
  const external = [];

  before(async () => {
    browser = await launchBrowser();
    // Any request that is not the file itself counts as a network access.
    await browser.context.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith('file:') || u.startsWith('data:')) return route.continue();
      external.push(u);
      return route.abort();
    });
    file = await writeTemp('report.html', await assemblePage('index.html', fixture));
    page = await browser.context.newPage();
    errors = watchErrors(page);
    await page.goto(pathToFileURL(file.path).href);
  });
  after(async () => {
    await browser?.close();
    await file?.cleanup();
  });

  test('renders every section', async () => {
    await page.getByTestId('report').waitFor();
    assert.equal(await page.getByTestId('report-host').textContent(), 'http://127.0.0.1:8000');
    assert.equal(await page.getByTestId('report-locustfile').textContent(), 'locustfile.py');
    assert.match(await page.getByTestId('report-during').textContent(), /20 seconds/);
    for (const h of ['Request Statistics', 'Response Time Statistics', 'Failures Statistics', 'Exceptions Statistics', 'Charts', 'Final ratio']) {
      assert.equal(await page.locator('h2', { hasText: h }).count(), 1, h);
    }
    const rows = await page.getByTestId('report-requests-body').locator('tr').count();
    assert.equal(rows, fixture.requests_statistics.length - 1);
    assert.match(await page.getByTestId('report-requests-aggregated').textContent(), /Aggregated/);
    // percentile columns come from the keys of response_time_statistics
    const rtHead = await page.getByTestId('report-response-times-table').locator('th').allTextContents();
    assert.deepEqual(rtHead.slice(2), ['50%ile (ms)', '60%ile (ms)', '70%ile (ms)', '80%ile (ms)', '90%ile (ms)', '95%ile (ms)', '99%ile (ms)', '100%ile (ms)']);
    assert.equal(await page.getByTestId('report-failures-body').locator('tr').count(), fixture.failures_statistics.length);
    assert.equal(await page.getByTestId('report-exceptions-body').locator('tr').count(), fixture.exceptions_statistics.length);
    assert.match(await page.getByTestId('ratio-per-class').textContent(), /WebUser/);
    assert.match(await page.getByTestId('ratio-total').textContent(), /Other/);
    // the download link is shown because show_download_link is true
    assert.equal(await page.getByTestId('report-download').getAttribute('href'), '?download=1');
  });

  test('shows names and messages literally (escaping)', async () => {
    const ex = page.getByTestId('report-exceptions-body');
    assert.match(await ex.textContent(), /boom <b>/);
    assert.equal(await ex.locator('b').count(), 0, 'a <b> from the data became markup');
    assert.match(await page.getByTestId('report-requests-body').textContent(), /\/missing%3C&%3E/);
  });

  test('charts are drawn from history', async () => {
    for (const id of ['chart-rps', 'chart-response-times', 'chart-users']) {
      const points = Number(await page.getByTestId(id).getAttribute('data-points'));
      assert.equal(points, fixture.history.length, id);
      const inked = await page.getByTestId(id).evaluate((c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      });
      assert.ok(inked > 1000, `${id} looks blank (${inked} painted pixels)`);
    }
  });

  test('makes no network request and raises no error', async () => {
    await screenshot(page, 'report-offline-locust-args', { fullPage: true });
    assert.deepEqual(external, []);
    assert.deepEqual(errors, []);
  });

  test('hides the download link when show_download_link is false', async () => {
    const other = await writeTemp('report.html', await assemblePage('index.html', { ...fixture, show_download_link: false }));
    try {
      const p = await browser.context.newPage();
      await p.goto(pathToFileURL(other.path).href);
      await p.getByTestId('report').waitFor();
      assert.equal(await p.getByTestId('report-download').count(), 0);
      await p.close();
    } finally { await other.cleanup(); }
  });

  test('a report with no requests still renders', async () => {
    const empty = {
      is_report: true, locustfile: 'x', host: 'None', profile: null, start_time: '2026-01-01T00:00:00Z', end_time: '2026-01-01T00:00:05Z',
      duration: '5 seconds', requests_statistics: [], failures_statistics: [], exceptions_statistics: [], response_time_statistics: [],
      history: [], tasks: { per_class: {}, total: {} }, percentiles_to_chart: [0.5, 0.95], show_download_link: true,
    };
    const other = await writeTemp('report.html', await assemblePage('index.html', empty));
    try {
      const p = await browser.context.newPage();
      const errs = watchErrors(p);
      await p.goto(pathToFileURL(other.path).href);
      await p.getByTestId('report').waitFor();
      assert.equal(await p.getByTestId('chart-rps').getAttribute('data-points'), '0');
      assert.deepEqual(errs, []);
      await p.close();
    } finally { await other.cleanup(); }
  });
});
