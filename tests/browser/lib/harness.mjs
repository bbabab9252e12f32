// Shared helpers for Hopper's browser tests: start the `hopper` binary, an example program and
// `hopper-demo-target`, launch Debian's chromium through playwright-core, assemble pages from
// the assets, save screenshots.
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
// Cargo puts the other binaries next to `hopper` and the examples in `examples/` below it.
export const DEMO_TARGET_BIN = join(dirname(HOPPER_BIN), 'hopper-demo-target');
export const EXAMPLES_DIR = process.env.HOPPER_EXAMPLES_DIR || join(dirname(HOPPER_BIN), 'examples');

// Locust 2.47's CSV headers (reference §4.10); the UI's download links must serve exactly these.
export const CSV_HEADERS = {
  requests: 'Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%',
  history: 'Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size',
  failures: 'Method,Name,Error,Occurrences,First Seen,Last Seen',
  exceptions: 'Count,Message,Traceback,Nodes',
};

/**
 * Spawns `bin args` (stdout and stderr collected together) and resolves once `pattern` matches
 * the output; its first group, without trailing slashes, is the URL returned. Returns
 * { url, pid, output(), exited(), kill() }; kill() sends SIGTERM to that PID, then SIGKILL after
 * 10 s, and resolves once it has exited. If it never reports, it is killed by its PID.
 */
export async function spawnUntil(bin, args, pattern, { timeoutMs = 30000, what = bin } = {}) {
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_BACKTRACE: '1' } });
  let output = '';
  let exited = null;
  const exitPromise = new Promise((resolve) => proc.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); }));
  const onData = (d) => { output += d.toString(); };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  let url;
  try {
    url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${what} did not report its URL within ${timeoutMs} ms:\n${output}`)), timeoutMs);
      const check = () => {
        const m = pattern.exec(output);
        if (m) { clearTimeout(timer); resolve(m[1].replace(/\/+$/, '')); }
      };
      proc.stdout.on('data', check);
      proc.stderr.on('data', check);
      proc.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot start ${bin}: ${e.message}`)); });
      exitPromise.then((e) => { clearTimeout(timer); reject(new Error(`${what} exited early (${JSON.stringify(e)}):\n${output}`)); });
    });
  } catch (e) {
    // it never came up: do not leave it running
    if (!exited) { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* already gone */ } }
    throw e;
  }
  return {
    url,
    pid: proc.pid,
    output: () => output,
    exited: () => exited,
    async kill() {
      if (exited) return exited;
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* already gone */ }
      const killer = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 10000);
      const e = await exitPromise;
      clearTimeout(killer);
      return e;
    },
  };
}

/**
 * Starts a Hopper program (`bin`, `hopper` unless given) with `--web-host 127.0.0.1 --web-port 0
 * ...args` and resolves once it logs "Starting web interface at URL".
 * Returns { url, pid, output(), stop() }.
 */
async function startWebUi(bin, args, { timeoutMs = 30000 } = {}) {
  const p = await spawnUntil(bin, ['--web-host', '127.0.0.1', '--web-port', '0', ...args],
    /Starting web interface at (https?:\/\/[^\s,]+)/, { timeoutMs, what: bin });
  return {
    url: p.url,
    pid: p.pid,
    output: p.output,
    /** Stops the run through the API (best effort), then SIGTERM by PID, then SIGKILL after 10 s. */
    async stop(headers = {}) {
      if (p.exited()) return p.exited();
      try { await fetch(p.url + '/stop', { method: 'POST', headers, signal: AbortSignal.timeout(3000) }); } catch { /* already gone */ }
      return p.kill();
    },
  };
}

/** Starts `hopper --demo --web-host 127.0.0.1 --web-port 0 ...extra`; see startWebUi. */
export async function startHopper(extra = [], opts = {}) {
  return startWebUi(HOPPER_BIN, ['--demo', ...extra], opts);
}

/**
 * Starts the example program `EXAMPLES_DIR/name` (built by `cargo build -p hopper --examples`)
 * with `--web-host 127.0.0.1 --web-port 0 ...args`; see startWebUi.
 */
export async function startExample(name, args = [], opts = {}) {
  return startWebUi(join(EXAMPLES_DIR, name), args, opts);
}

/**
 * Starts `hopper-demo-target --bind 127.0.0.1:0 ...extra` and resolves once it prints
 * `listening on http://ADDR`. Returns { url, pid, output(), stop() }; stop() is SIGTERM by PID.
 */
export async function startDemoTarget(extra = [], { timeoutMs = 30000 } = {}) {
  const p = await spawnUntil(DEMO_TARGET_BIN, ['--bind', '127.0.0.1:0', ...extra],
    /listening on (http:\/\/\S+)/, { timeoutMs, what: 'hopper-demo-target' });
  return { url: p.url, pid: p.pid, output: p.output, stop: () => p.kill() };
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
