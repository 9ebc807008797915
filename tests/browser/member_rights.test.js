// A member's rights and tools (issue 16): the data and account page (the
// signed export as JSON and JSON-LD, the one-click opt-out, the printable
// opt-out card), the public paper opt-out page, the passphrase changed and
// recovered with the recovery code, interests suggested from receipts,
// insights drawn as SVG, a credential presented to a typed challenge, the
// HTML "not found" page, and erasure with each recipient's status. Each
// page is checked with axe-core; the pages work by keyboard, at 200 % zoom
// and without JavaScript.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, newPage, check, heading, logIn, SHOTS } from './lib.js';

const EMAIL = 'fay@example.org';
const PASS = 'correct horse battery staple';
const NEW_PASS = 'a brand new passphrase';
const THIRD_PASS = 'the third passphrase here';

const receipt = (month, items) => ({
  kind: 'receipt', merchant: 'Corner Co-op',
  items: items.map(([category, quantity, minor]) => ({ name: 'Item', category, quantity, unit_price: { minor, currency: 'EUR' } })),
  total: { minor: 1, currency: 'EUR' }, purchased_at: `2026-${month}-05T10:00:00Z`,
});

async function downloaded(page, click) {
  const [download] = await Promise.all([page.waitForEvent('download'), click()]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  return { name: download.suggestedFilename(), body: Buffer.concat(chunks) };
}

describe('a member\'s rights and tools', () => {
  let node; let browser; let page; let recoveryCode; let token; let optoutCode;
  before(async () => {
    node = await startNode();
    browser = await launch();
    page = await newPage(browser);
    const asked = await node.api('POST', '/v1/members', '', { email: EMAIL, passphrase: PASS });
    assert.equal(asked.status, 202);
    const done = await node.api('POST', '/v1/members/confirm', '', { token: node.confirmationCode(EMAIL) });
    assert.equal(done.status, 201);
    recoveryCode = done.body.recovery_code;
    token = done.body.token;
    for (const r of [
      receipt('10', [['food.organic', 2, 250], ['cycling', 1, 1000]]),
      receipt('11', [['food.bakery', 3, 100], ['cycling', 1, 500]]),
    ]) {
      const made = await node.api('POST', '/v1/vault/records', token, r);
      assert.equal(made.status, 201, JSON.stringify(made.body));
    }
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('downloads the signed export as JSON and JSON-LD', async () => {
    await logIn(page, node.base, EMAIL, PASS);
    await page.getByRole('link', { name: 'My data and account' }).click();
    await heading(page, 'Your data and account');
    await check(page, 'account');
    const json = await downloaded(page, () => page.getByRole('link', { name: 'Download my data (signed JSON)' }).click());
    assert.equal(json.name, 'me2b-export.json');
    const doc = JSON.parse(json.body.toString('utf8'));
    assert.match(JSON.stringify(doc), /signature/);
    assert.match(JSON.stringify(doc), /Corner Co-op/);
    const ld = await downloaded(page, () => page.getByRole('link', { name: /JSON-LD/ }).click());
    assert.equal(ld.name, 'me2b-export.jsonld');
    assert.ok(JSON.parse(ld.body.toString('utf8'))['@context'], 'JSON-LD has a context');
  });

  it('opts out of all direct marketing in one click, and back in', async () => {
    await page.getByRole('button', { name: 'Stop all direct marketing' }).click();
    await page.getByRole('status').filter({ hasText: 'You are opted out of all direct marketing' }).waitFor();
    assert.match(await page.locator('#marketing-state').innerText(), /You are opted out/);
    const status = await node.api('GET', '/v1/me/marketing-opt-out', token);
    assert.ok(status.body.opted_out_since, 'the API sees the same opt-out');
    await check(page, 'account-opted-out');
    await page.getByRole('button', { name: 'Show me offers again' }).click();
    await page.getByRole('status').filter({ hasText: 'Offers are matched for you again' }).waitFor();
  });

  it('makes a printable opt-out card (PDF and SVG) with a code shown once', async () => {
    await page.getByRole('button', { name: 'Make my card' }).click();
    await heading(page, 'Your paper opt-out card');
    optoutCode = (await page.locator('#optout-code').innerText()).trim();
    assert.match(optoutCode, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
    assert.ok(await page.getByRole('img', { name: /Your opt-out card/ }).isVisible());
    await check(page, 'optout-card');
    const pdf = await downloaded(page, () => page.getByRole('link', { name: 'Download the card (PDF)' }).click());
    assert.equal(pdf.name, 'me2b-optout-card.pdf');
    assert.equal(pdf.body.subarray(0, 5).toString(), '%PDF-');
    const svg = await downloaded(page, () => page.getByRole('link', { name: 'Download the card (SVG)' }).click());
    assert.match(svg.body.toString('utf8'), new RegExp(optoutCode));
  });

  it('the paper code stops marketing at the public page, without a login, by keyboard alone', async () => {
    const visitor = await newPage(browser);
    await visitor.goto(node.base + '/optout');
    await heading(visitor, 'Stop marketing with your paper code');
    await check(visitor, 'public-optout');
    // A mistyped code: an error next to the field, the input kept.
    await visitor.getByLabel('Opt-out code').fill('ABCD-1234');
    await visitor.getByRole('button', { name: 'Stop all marketing' }).click();
    await visitor.locator('#code-error').waitFor();
    assert.equal(await visitor.getByLabel('Opt-out code').inputValue(), 'ABCD-1234');
    await check(visitor, 'public-optout-error');
    // By keyboard: focus the field, type the code as anyone would, Enter.
    await visitor.getByLabel('Opt-out code').focus();
    await visitor.keyboard.press('Control+A');
    await visitor.keyboard.type(optoutCode.toLowerCase().replaceAll('-', ' '));
    await visitor.keyboard.press('Enter');
    await visitor.locator('#optout-done').waitFor();
    assert.doesNotMatch(await visitor.locator('main').innerText(), /fay/);
    await check(visitor, 'public-optout-done');
    await visitor.context().close();
    const status = await node.api('GET', '/v1/me/marketing-opt-out', token);
    assert.ok(status.body.opted_out_since, 'opted out by the paper code');
    await node.api('DELETE', '/v1/me/marketing-opt-out', token);
  });

  it('changes the passphrase, with errors next to the fields', async () => {
    await page.goto(node.base + '/account');
    await page.getByRole('link', { name: 'Change your passphrase' }).click();
    await heading(page, 'Change your passphrase');
    await check(page, 'passphrase');
    await page.getByLabel('Current passphrase').fill('not my passphrase');
    await page.getByLabel('New passphrase', { exact: true }).fill(NEW_PASS);
    await page.getByLabel('New passphrase, once more').fill(NEW_PASS);
    await page.getByRole('button', { name: 'Change my passphrase' }).click();
    await page.locator('#current-error').waitFor();
    await check(page, 'passphrase-error');
    await page.getByLabel('Current passphrase').fill(PASS);
    await page.getByLabel('New passphrase', { exact: true }).fill(NEW_PASS);
    await page.getByLabel('New passphrase, once more').fill(NEW_PASS);
    await page.getByRole('button', { name: 'Change my passphrase' }).click();
    await page.getByRole('status').filter({ hasText: 'Your passphrase was changed' }).waitFor();
    const old = await node.api('POST', '/v1/sessions', '', { email: EMAIL, passphrase: PASS });
    assert.equal(old.status, 401);
  });

  it('accepts and rejects interests suggested from the receipts', async () => {
    await page.getByRole('link', { name: 'Interests' }).click();
    await heading(page, 'Your interests');
    await check(page, 'interests');
    const cards = page.locator('.card.suggestion');
    const before = await cards.count();
    assert.ok(before >= 2, `suggestions from the receipts (${before})`);
    const first = (await cards.first().locator('h3').innerText()).trim();
    await cards.first().getByRole('button', { name: /^Accept/ }).click();
    await page.getByRole('status').filter({ hasText: 'The interest was added' }).waitFor();
    assert.match(await page.locator('table.records').innerText(), new RegExp(first.replace(/[›]/g, '.')));
    await page.locator('.card.suggestion').first().getByRole('button', { name: /^Reject/ }).click();
    await page.getByRole('status').filter({ hasText: 'will not be suggested again' }).waitFor();
    assert.equal(await page.locator('.card.suggestion').count(), before - 2);
    await check(page, 'interests-answered');
  });

  it('reads insights: spending by category and month as SVG charts with tables', async () => {
    await page.getByRole('link', { name: 'Insights' }).click();
    await heading(page, 'My insights');
    const charts = page.getByRole('img', { name: /Spending by (category|month), in EUR/ });
    assert.equal(await charts.count(), 2);
    const table = await page.locator('table.chart-table').first().innerText();
    assert.match(table, /Cycling\s+15\.00 EUR/);
    assert.match(table, /Food\s+8\.00 EUR/);
    assert.match(await page.locator('table.chart-table').nth(1).innerText(), /2026-10\s+15\.00 EUR/);
    await check(page, 'insights');
  });

  it('adds a credential with a code and presents it to a challenge typed from the verifier', async () => {
    const coop = node.org('Corner Co-op', 'credentials');
    const shop = node.org('Fair Market', 'credentials');
    const issued = await node.api('POST', '/v1/org/credentials/codes', coop,
      { federation: 'Fair Economy Federation', tier: 'founding', region: 'NL-NH', member_since: 2020 });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    await page.getByRole('link', { name: 'Credentials' }).click();
    await heading(page, 'Your credentials');
    await page.getByLabel('Code from the co-op').fill(issued.body.code);
    await page.getByRole('button', { name: 'Add it to my vault' }).click();
    await page.getByRole('status').filter({ hasText: 'The credential is in your vault' }).waitFor();
    assert.match(await page.locator('.card.credential').innerText(), /From Corner Co-op[\s\S]*Valid/);
    await check(page, 'credentials');

    // A garbled challenge: an error next to the field, the text kept.
    const area = page.getByLabel('Challenge from the verifier');
    await area.fill('{"nonce": "garbled"}');
    await page.getByRole('button', { name: /^Show it/ }).click();
    await page.locator('#challenge-error').waitFor();
    assert.equal(await page.getByLabel('Challenge from the verifier').inputValue(), '{"nonce": "garbled"}');
    await check(page, 'credentials-challenge-error');

    const ch = await node.api('POST', '/v1/org/credentials/challenges', shop, { federation: 'Fair Economy Federation' });
    assert.equal(ch.status, 201);
    await page.getByLabel('Challenge from the verifier').fill(JSON.stringify(ch.body));
    await page.getByRole('button', { name: /^Show it/ }).click();
    // Issue 12: the only credential of its co-op, so what it shows is
    // rare. A clear warning first, a way back, and a confirm step.
    await heading(page, 'Few share what you would show');
    assert.match(await page.locator('#rare-count').innerText(), /No other credential of Corner Co-op/);
    assert.ok(await page.getByRole('link', { name: /Don't show it/ }).isVisible());
    await check(page, 'credential-rare-warning');
    // Not ticked: the browser keeps the form (the box is required).
    await page.getByRole('button', { name: 'Show it anyway' }).click();
    await heading(page, 'Few share what you would show');
    await page.getByLabel(/I understand that Corner Co-op and Fair Market could recognise me/).check();
    await page.getByRole('button', { name: 'Show it anyway' }).click();
    await heading(page, 'Show this to the verifier');
    assert.match(await page.locator('#shared-by').innerText(), /1 credential of the co-op/);
    assert.match(await page.locator('main').innerText(), /Give this answer to Fair Market/);
    await check(page, 'credential-presented');
    const answer = await page.getByLabel(/Your answer/).inputValue();
    const r = await fetch(node.base + '/v1/org/credentials/verify', {
      method: 'POST', headers: { authorization: `Bearer ${shop}`, 'content-type': 'application/json' }, body: answer,
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).valid, true);
  });

  it('answers an unknown page with an HTML page, and an unknown API path with JSON', async () => {
    const resp = await page.goto(node.base + '/no-such-page');
    assert.equal(resp.status(), 404);
    await heading(page, 'Not found');
    await check(page, 'not-found');
    const api = await fetch(node.base + '/v1/no-such-route');
    assert.equal(api.status, 404);
    assert.equal((await api.json()).error.code, 'not_found');
  });

  it('is readable at 200 % zoom, without sideways scrolling', async () => {
    const zoomed = await newPage(browser, { viewport: { width: 640, height: 720 }, deviceScaleFactor: 2 });
    await logIn(zoomed, node.base, EMAIL, NEW_PASS);
    for (const path of ['/account', '/interests', '/insights', '/credentials', '/account/passphrase', '/optout']) {
      await zoomed.goto(node.base + path);
      const [scroll, width] = await zoomed.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= width, `${path}: ${scroll} > ${width}`);
    }
    await check(zoomed, 'zoom-200-insights');
    await zoomed.context().close();
  });

  it('recovers the vault with the recovery code, without JavaScript, and gets a new code', async () => {
    // axe-core needs script: it runs on the page opened with JavaScript.
    const js = await newPage(browser);
    await js.goto(node.base + '/recover');
    await check(js, 'recover');
    await js.context().close();
    const nojs = await newPage(browser, { javaScriptEnabled: false });
    await nojs.goto(node.base + '/login');
    await nojs.getByRole('link', { name: 'Use your recovery code' }).click();
    await heading(nojs, 'Recover your vault');
    await nojs.getByLabel('E-mail address').fill(EMAIL);
    await nojs.getByLabel('Recovery code').fill('AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA');
    await nojs.getByLabel('New passphrase', { exact: true }).fill(THIRD_PASS);
    await nojs.getByLabel('New passphrase, once more').fill(THIRD_PASS);
    await nojs.getByRole('button', { name: 'Recover my vault' }).click();
    await nojs.getByRole('alert').waitFor();
    assert.equal(await nojs.getByLabel('E-mail address').inputValue(), EMAIL);
    await nojs.getByLabel('Recovery code').fill(recoveryCode.toLowerCase());
    await nojs.getByLabel('New passphrase', { exact: true }).fill(THIRD_PASS);
    await nojs.getByLabel('New passphrase, once more').fill(THIRD_PASS);
    await nojs.getByRole('button', { name: 'Recover my vault' }).click();
    await heading(nojs, 'Your new recovery code');
    const shown = (await nojs.locator('#recovery-code').innerText()).trim();
    assert.notEqual(shown.toUpperCase(), recoveryCode.toUpperCase());
    recoveryCode = shown;
    await nojs.screenshot({ path: `${SHOTS}/recovered-new-code.png`, fullPage: true });
    await nojs.getByRole('link', { name: /continue/ }).click();
    await heading(nojs, 'Your vault');
    await nojs.context().close();
  });

  it('erases the account and follows each recipient\'s erasure with the receipt', async () => {
    // A co-op that received data through consent: it must confirm the erasure.
    const key = node.org('Data Co-op', 'consent');
    const asked = await node.api('POST', '/v1/org/consent-requests', key, {
      purposes: ['service-personalisation'], categories: ['interest'], processing: ['use'],
      legal_basis: 'consent', retention_days: 90, recipients: [],
      notice: 'We use your interests to tailor our service.', notice_version: '2026-11',
    });
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    await logIn(page, node.base, EMAIL, THIRD_PASS);
    await page.getByRole('link', { name: 'Consents' }).click();
    await page.getByRole('link', { name: /Review and answer/ }).click();
    await page.getByRole('checkbox', { name: /personal/i }).first().check();
    await page.getByRole('checkbox', { name: /interest/i }).check();
    await page.getByRole('button', { name: 'Allow what I ticked' }).click();
    await page.getByRole('status').filter({ hasText: 'consent was recorded' }).waitFor();
    await page.getByRole('link', { name: 'My data and account' }).click();
    await page.getByRole('link', { name: /Erase my account/ }).click();
    await heading(page, 'Erase your account');
    await check(page, 'erase-confirm');
    await page.getByLabel('Your passphrase').fill(THIRD_PASS);
    await page.getByRole('button', { name: 'Erase my account' }).click();
    await page.locator('#confirm-error').waitFor();
    await check(page, 'erase-errors');
    await page.getByLabel('I understand: erase everything, for good').check();
    await page.getByLabel('Your passphrase').fill(THIRD_PASS);
    await page.getByRole('button', { name: 'Erase my account' }).click();
    await heading(page, 'Your account is erased');
    const receipt = (await page.locator('#erasure-receipt').innerText()).trim();
    assert.match(receipt, /^me2b_e_/);
    const row = page.locator('table.erasure tbody tr', { hasText: 'Data Co-op' });
    assert.match(await row.innerText(), /Waiting|Pending/);
    await check(page, 'erased-receipt');
    // The session is gone; later, the receipt alone shows where things stand.
    const r = await fetch(node.base + '/v1/me', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 401);
    const later = await newPage(browser);
    await later.goto(node.base + '/erasure');
    await heading(later, 'Where your erasure stands');
    await later.getByLabel('Erasure receipt').fill(receipt);
    await later.getByRole('button', { name: 'Show where it stands' }).click();
    await later.locator('table.erasure').waitFor();
    assert.match(await later.locator('table.erasure').innerText(), /Data Co-op\s+\S*\s*(Waiting|Pending)/);
    await check(later, 'erasure-status');
    await later.context().close();
  });
});
