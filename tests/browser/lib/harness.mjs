// Shared helpers for Hopper's browser tests: start the `hopper` binary, launch Debian's
// chromium through playwright-core, assemble pages from the assets, save screenshots.
//
// Every process a test starts is stopped by its PID in an `after` hook; nothing here ever
// kills by name. All traffic stays on 127.0.0.1.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, '..');
export const ASSETS = join(ROOT, '..', '..', 'crates', 'hopper-web', 'assets');
export const ARTIFACTS = join(ROOT, 'artifacts');
export const HOPPER_BIN = process.env.HOPPER_BIN || '/work/main/target/debug/hopper';
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Locust 2.47's CSV headers (reference §4.10); the UI's download links must serve exactly these.
export const CSV_HEADERS = {
  requests: 'Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%',
  history: 'Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size',
  failures: 'Method,Name,Error,Occurrences,First Seen,Last Seen',
  exceptions: 'Count,Message,Traceback,Nodes',
};

/**
 * Starts `hopper --demo --web-host 127.0.0.1 --web-port 0 ...extra` and resolves once it logs
 * "Starting web interface at URL". Returns { url, pid, output(), stop() }.
 */
export async function startHopper(extra = [], { timeoutMs = 30000 } = {}) {
  const args = ['--demo', '--web-host', '127.0.0.1', '--web-port', '0', ...extra];
  const proc = spawn(HOPPER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_BACKTRACE: '1' } });
  let output = '';
  let exited = null;
  const exitPromise = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  const onData = (d) => { output += d.toString(); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hopper did not report its web URL within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const check = () => {
      const m = /Starting web interface at (https?:\/\/[^\s,]+)/.exec(output);
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/+$/, '')); }
    };
    proc.stdout.on('data', check);
    proc.stderr.on('data', check);
    proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${HOPPER_BIN}: ${e.message}`)); });
    exitPromise.then((e) => { clearTimeout(timer); reject(new Error(`hopper exited early (${JSON.stringify(e)}):\n${output}`)); });
  });
  return {
    url,
    pid: proc.pid,
    output: () => output,
    /** Stops the run through the API (best effort), then SIGTERM by PID, then SIGKILL after 10 s. */
    async stop(headers = {}) {
      if (exited) return exited;
      try { await fetch(url + '/stop', { method: 'POST', headers, signal: AbortSignal.timeout(3000) }); } catch { /* already gone */ }
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      const killer = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 10000);
      const e = await exitPromise;
      clearTimeout(killer);
      return e;
    },
  };
}

/** Launches chromium (never downloads a browser: it must already be installed). */
export async function launchBrowser() {
  const userDataDir = await mkdtemp(join(tmpdir(), 'hopper-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1366, height: 768 },
    acceptDownloads: true,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(20000);
  return {
    context,
    async close() {
      try { await context.close(); } finally { await rm(userDataDir, { recursive: true, force: true }); }
    },
  };
}

/** Collects page errors and console errors so a test can assert there were none. */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}

export async function screenshot(page, name, opts = {}) {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), ...opts });
}

/** The same page assembly the Rust server does (pages.rs): data, styles and script inlined. */
export async function assemblePage(file, templateArgs) {
  const [html, css, js] = await Promise.all([
    readFile(join(ASSETS, file), 'utf8'),
    readFile(join(ASSETS, 'app.css'), 'utf8'),
    readFile(join(ASSETS, 'app.js'), 'utf8'),
  ]);
  const json = JSON.stringify(templateArgs).replace(/</g, '\\u003c');
  return html.split('/*TEMPLATE_ARGS*/null').join(json).split('/*APP_CSS*/').join(css).split('/*APP_JS*/').join(js);
}

export async function writeTemp(name, content) {
  const dir = await mkdtemp(join(tmpdir(), 'hopper-page-'));
  const path = join(dir, name);
  await writeFile(path, content);
  return { path, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Polls fn until it returns a truthy value (returned) or the time runs out. */
export async function eventually(fn, { timeoutMs = 20000, intervalMs = 250, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Text of an element as a number ("1,234" -> 1234). */
export async function numberOf(locator) {
  const t = (await locator.textContent()) || '';
  return Number(t.replace(/[,\s%]/g, ''));
}
