// What protects the pages, tried in the browser: a cross-site form post and a
// same-origin post without the CSRF token are refused; the essential paths
// work without JavaScript; the pages are usable by keyboard alone and at
// 200 % zoom.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startNode, launch, newPage, check, heading, logIn } from './lib.js';

const PASS = 'correct horse battery staple';

describe('the pages', () => {
  let node; let browser;
  before(async () => {
    node = await startNode();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('refuse a form posted from another site, and a post without the CSRF token', async () => {
    await node.signUp('bo@example.org', PASS);
    const page = await newPage(browser);
    await logIn(page, node.base, 'bo@example.org', PASS);

    // Another site's page that posts a note into the vault when opened.
    const evil = createServer((req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><html lang="en"><title>Win a prize</title><body>
        <form id="f" method="post" action="${node.base}/vault">
          <input name="kind" value="note"><input name="text" value="planted by another site">
          <input name="csrf" value="guessed"></form>
        <script>document.getElementById('f').submit()</script></body></html>`);
    });
    await new Promise((r) => evil.listen(0, '127.0.0.1', r));
    // Another origin: "localhost" is not "127.0.0.1".
    const evilUrl = `http://localhost:${evil.address().port}/`;
    const refused = page.waitForResponse((r) => r.url() === `${node.base}/vault` && r.request().method() === 'POST');
    await page.goto(evilUrl);
    assert.equal((await refused).status(), 403);
    await heading(page, 'Form refused');
    evil.close();

    // The same origin, with the session cookie but without the token.
    await page.goto(node.base + '/vault');
    const statuses = await page.evaluate(async () => {
      const post = (body) => fetch('/vault', { method: 'POST', body: new URLSearchParams(body), redirect: 'manual' });
      const csrf = document.querySelector('input[name=csrf]').value;
      const without = await post({ kind: 'note', text: 'no token' });
      const wrong = await post({ kind: 'note', text: 'wrong token', csrf: csrf.slice(1) + 'A' });
      const right = await post({ kind: 'note', text: 'with the token', csrf });
      return [without.status, wrong.status, right.type === 'opaqueredirect' ? 303 : right.status];
    });
    assert.deepEqual(statuses, [403, 403, 303]);
    await page.reload();
    const text = await page.locator('table.records').innerText();
    assert.match(text, /with the token/);
    assert.doesNotMatch(text, /planted|no token|wrong token/);
    await check(page, 'vault-after-csrf-attempts');
    await page.context().close();
  });

  it('work without JavaScript: log in, add a record, answer nothing wrong', async () => {
    await node.signUp('cy@example.org', PASS);
    const page = await newPage(browser, { javaScriptEnabled: false });
    await logIn(page, node.base, 'cy@example.org', PASS);
    await page.getByLabel('A note', { exact: true }).check();
    await page.getByLabel('Note: text').fill('Written without JavaScript.');
    await page.getByRole('button', { name: 'Add to my vault' }).click();
    await page.getByRole('status').filter({ hasText: 'was added' }).waitFor();
    assert.match(await page.locator('table.records').innerText(), /Written without JavaScript/);
    // An error shown by a full page load, the input kept.
    await page.getByLabel('A profile detail').check();
    await page.getByLabel('Profile detail: value').fill('kept');
    await page.getByRole('button', { name: 'Add to my vault' }).click();
    await page.locator('#name-error').waitFor();
    assert.equal(await page.getByLabel('Profile detail: value').inputValue(), 'kept');
    await page.getByRole('link', { name: 'Consents' }).click();
    await heading(page, 'Your consents');
    await page.context().close();
  });

  it('are usable by keyboard alone', async () => {
    await node.signUp('di@example.org', PASS);
    const page = await newPage(browser);
    await page.goto(node.base + '/login');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), 'Skip to the main content');
    const focusOn = async (selector) => {
      for (let i = 0; i < 20; i += 1) {
        if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
        await page.keyboard.press('Tab');
      }
      assert.fail(`Tab never reached ${selector}`);
    };
    await focusOn('#email');
    await page.keyboard.type('di@example.org');
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASS);
    await page.keyboard.press('Enter');
    await heading(page, 'Your vault');
    // Add a note by keyboard: the radio group, the fields, the button.
    await focusOn('input[name=kind]');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate(() => document.activeElement.value), 'note');
    await focusOn('#text');
    await page.keyboard.type('Typed by keyboard.');
    await focusOn('button[type=submit]:not(.secondary)');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'was added' }).waitFor();
    // The focused element is visibly outlined.
    await focusOn('a[href$="/delete"]');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.equal(outline, 'solid');
    await check(page, 'keyboard-focus');
    await page.context().close();
  });

  it('are readable at 200 % zoom, with no sideways scrolling', async () => {
    await node.signUp('ed@example.org', PASS);
    // A 1280 px wide window at 200 %: 640 CSS pixels.
    const page = await newPage(browser, { viewport: { width: 640, height: 720 }, deviceScaleFactor: 2 });
    for (const path of ['/', '/signup', '/login', '/privacy']) {
      await page.goto(node.base + path);
      const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= width, `${path}: ${scroll} > ${width}`);
    }
    await logIn(page, node.base, 'ed@example.org', PASS);
    await page.getByLabel('A profile detail').check();
    await page.getByLabel('Profile detail: what it is').fill('given_name');
    await page.getByLabel('Profile detail: value').fill('Ed');
    await page.getByRole('button', { name: 'Add to my vault' }).click();
    await page.getByRole('status').filter({ hasText: 'was added' }).waitFor();
    for (const path of ['/vault', '/consents']) {
      await page.goto(node.base + path);
      const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= width, `${path}: ${scroll} > ${width}`);
      await check(page, `zoom-200-${path.slice(1)}`);
    }
    await page.context().close();
  });
});
