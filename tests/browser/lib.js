// Helpers of the browser tests: a real `me2b serve` on port 0 with a fresh
// data directory, Debian's Chromium driven by playwright-core (nothing
// downloads a browser), a screenshot per step, and axe-core in every page.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
export const ROOT = join(here, '..', '..');
export const BIN = process.env.ME2B_BIN || join(ROOT, 'target', 'debug', 'me2b');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// One directory per test file (node --test runs each file in its own process).
export const SHOTS = join(process.env.ME2B_SCREENSHOTS || join(here, 'screenshots'),
  basename(process.argv[1] || 'run', '.test.js'));
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Starts a node on 127.0.0.1:0 with a fresh data directory. */
export async function startNode() {
  const work = mkdtempSync(join(tmpdir(), 'me2b-browser-'));
  const data = join(work, 'data');
  // Wide login and sign-up limits: the tests log in and sign up many times
  // from one address.
  writeFileSync(join(work, 'me2b.toml'),
    'login_account_burst = 1000\nlogin_ip_burst = 1000\nsignup_burst = 1000\n');
  const child = spawn(BIN, ['--config', join(work, 'me2b.toml'), '--data-dir', data, '--log', 'warn',
    'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the node did not start:\n${err}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the node exited (${code}):\n${err}`)); });
  });
  return {
    base,
    data,
    /** An organisation made with the CLI on the node's database: its API key. */
    org(name, roles) {
      const text = execFileSync(BIN, ['--data-dir', data, 'org', 'create', '--name', name,
        '--kind', 'coop', '--roles', roles], { encoding: 'utf8' });
      const m = text.match(/api key\s+(me2b_k_\S+)/);
      assert.ok(m, `no API key in: ${text}`);
      return m[1];
    },
    /** A JSON call to the node's API. */
    async api(method, path, key, body) {
      const r = await fetch(base + path, {
        method,
        headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    },
    /** The confirmation code of the latest message in the outbox to `email`. */
    confirmationCode(email) {
      const dir = join(data, 'outbox');
      const files = readdirSync(dir).filter((f) => f.endsWith('.eml')).sort().reverse();
      for (const f of files) {
        const text = readFileSync(join(dir, f), 'utf8');
        if (!text.split(/\r?\n/).some((l) => l.trim() === `To: ${email}`)) continue;
        const m = text.match(/me2b_c_[A-Za-z0-9_-]+/);
        if (m) return m[0];
      }
      return null;
    },
    /** A member signed up through the API, as the e-mail confirmation does. */
    async signUp(email, passphrase) {
      const asked = await this.api('POST', '/v1/members', '', { email, passphrase });
      assert.equal(asked.status, 202);
      const token = this.confirmationCode(email);
      const done = await this.api('POST', '/v1/members/confirm', '', { token });
      assert.equal(done.status, 201);
      return done.body.token;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/**
 * Debian's Chromium, headless, with a fresh profile and no background traffic.
 * Chromium sometimes crashes while starting, before it opens any page (CI saw
 * a SIGSEGV at launch once in about 20 runs, with nothing of me2b involved):
 * such a launch is retried twice, and said so on stderr. A crash after the
 * launch still fails the test.
 */
export async function launch() {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
          '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
    } catch (e) {
      if (attempt >= 3) throw e;
      process.stderr.write(`chromium did not start (attempt ${attempt} of 3), retrying: ${String(e.message).split('\n')[0]}\n`);
    }
  }
}

/**
 * A page that records Content-Security-Policy violations and page errors:
 * `problems` must stay empty (checked by `check`).
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) page.problems.push(m.text().slice(0, 60) + ' @ ' + JSON.stringify(m.location()));
  });
  page.on('pageerror', (e) => page.problems.push(String(e)));
  return page;
}

let shotNo = 0;
mkdirSync(SHOTS, { recursive: true });

/**
 * One step: waits for the page to settle, saves a screenshot, runs axe-core
 * (no serious or critical violation), and checks no CSP violation or script
 * error happened.
 */
export async function check(page, name) {
  await page.waitForLoadState('load');
  shotNo += 1;
  const file = join(SHOTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`), [],
    `axe-core on ${name} (${page.url()})`);
  assert.deepEqual(page.problems, [], `CSP violations or script errors on ${name}`);
  return file;
}

/** Logs in through the login page. */
export async function logIn(page, base, email, passphrase) {
  await page.goto(base + '/login');
  await page.getByLabel('E-mail address').fill(email);
  await page.getByLabel('Passphrase').fill(passphrase);
  await page.getByRole('button', { name: 'Log in' }).click();
  await heading(page, 'Your vault');
}

/** Waits for the page whose main heading is `title` (after a click that navigates, with or without htmx). */
export async function heading(page, title) {
  await page.locator('main h1', { hasText: title }).waitFor({ timeout: 15_000 });
}
