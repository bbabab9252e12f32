// The web UI of a real master with real workers: examples/distributed.rs as master (web UI on)
// and two workers, against hopper-demo-target. Checks the header's worker count, the Workers
// tab (one row per worker, running, users adding up) and the workers' log lines in the Logs
// tab. Every process is stopped by its PID in `after`; everything stays on 127.0.0.1.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  EXAMPLES_DIR, startExample, startDemoTarget, spawnUntil, launchBrowser, watchErrors, screenshot, eventually,
} from './lib/harness.mjs';

describe('master with real workers', { timeout: 120000 }, () => {
  let target, master, workers = [], browser, page, errors;

  before(async () => {
    target = await startDemoTarget(['--threads', '1']);
    master = await startExample('distributed', [
      '--master', '--master-bind-host', '127.0.0.1', '--master-bind-port', '0', '-H', target.url, '-t', '90s',
    ]);
    const port = await eventually(() => {
      const m = /Master listening for workers on port (\d+)/.exec(master.output());
      return m && m[1];
    }, { what: 'the master port in the log' });
    for (const id of ['hostA_0', 'hostB_0']) {
      workers.push(await spawnUntil(join(EXAMPLES_DIR, 'distributed'),
        ['--worker', '--master-host', '127.0.0.1', '--master-port', port, '--worker-id', id],
        /(Connected to master)/, { what: `worker ${id}` }));
    }
    browser = await launchBrowser();
    page = await browser.context.newPage();
    errors = watchErrors(page);
    await page.goto(master.url + '/');
  });

  after(async () => {
    await browser?.close();
    await master?.stop();
    for (const w of workers) await w.kill();
    await target?.stop();
  });

  test('the header counts the workers and a test starts from the form', async () => {
    await eventually(async () => (await page.getByTestId('header-workers').textContent()).trim() === '2',
      { what: 'header shows 2 workers' });
    await page.getByTestId('start-user-count').fill('6');
    await page.getByTestId('start-spawn-rate').fill('6');
    await page.getByTestId('start-button').click();
    await eventually(async () => (await page.getByTestId('header-users').textContent()).trim() === '6',
      { what: 'header shows 6 users', timeoutMs: 20000 });
  });

  test('the Workers tab lists both workers running, their users adding up', async () => {
    await page.getByTestId('tab-workers').click();
    const rows = await eventually(async () => {
      const texts = await page.getByTestId('workers-body').locator('tr').allTextContents();
      const running = texts.filter((t) => /running/.test(t));
      return running.length === 2 && texts;
    }, { what: 'two running workers', timeoutMs: 20000 });
    assert.ok(rows.some((t) => t.includes('hostA_0')) && rows.some((t) => t.includes('hostB_0')), rows.join('\n'));
    const users = await page.getByTestId('workers-body').locator('tr').evaluateAll((trs) =>
      trs.map((tr) => Number(tr.querySelectorAll('td')[2].textContent.trim())));
    assert.equal(users.reduce((a, b) => a + b, 0), 6, `per-worker users ${users}`);
    await screenshot(page, 'cluster-workers');
  });

  test('worker log lines reach the Logs tab', async () => {
    await page.getByTestId('tab-logs').click();
    // Workers ship their log lines every 10 s.
    await eventually(async () => (await page.getByTestId('logs-worker').count()) === 2,
      { what: 'log groups of both workers', timeoutMs: 30000 });
    const text = await page.getByTestId('logs-workers').textContent();
    assert.match(text, /Connected to master/);
    await screenshot(page, 'cluster-logs');
    assert.deepEqual(errors, []);
  });
});
