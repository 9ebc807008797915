// A member's journeys, in order: sign up (with the code from the e-mail and
// the recovery code), the vault (add, correct, delete; errors next to the
// field, what was typed kept), consents (a request in plain language, a
// partial grant, the signed receipt, withdrawal), an expired session that
// returns to where it was, log out and in, the privacy notice.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, newPage, check, heading } from './lib.js';

const EMAIL = 'ana@example.org';
const PASS = 'correct horse battery staple';

describe('a member', () => {
  let node; let browser; let page;
  before(async () => {
    node = await startNode();
    browser = await launch();
    page = await newPage(browser);
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('signs up, confirms the address with the e-mailed code and sees the recovery code once', async () => {
    await page.goto(node.base + '/');
    await heading(page, 'Welcome');
    await check(page, 'home');
    await page.getByRole('link', { name: 'Create your vault' }).first().click();
    await heading(page, 'Create your vault');
    await check(page, 'signup');

    // Bad input: errors next to each field, the e-mail kept.
    await page.getByLabel('E-mail address').fill('ana at example');
    await page.getByLabel('Passphrase', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Create my vault' }).click();
    await page.locator('#email-error').waitFor();
    assert.match(await page.locator('#email-error').innerText(), /Error: Enter an e-mail address/);
    assert.match(await page.locator('#passphrase-error').innerText(), /10 to 1,024 characters/);
    assert.equal(await page.getByLabel('E-mail address').inputValue(), 'ana at example');
    assert.equal(await page.getByLabel('E-mail address').getAttribute('aria-invalid'), 'true');
    await check(page, 'signup-errors');

    // Two passphrases that differ.
    await page.getByLabel('E-mail address').fill(EMAIL);
    await page.getByLabel('Passphrase', { exact: true }).fill(PASS);
    await page.getByLabel('Passphrase, once more').fill(PASS + '!');
    await page.getByRole('button', { name: 'Create my vault' }).click();
    await page.locator('#passphrase2-error').waitFor();
    assert.equal(await page.getByLabel('E-mail address').inputValue(), EMAIL);

    await page.getByLabel('Passphrase', { exact: true }).fill(PASS);
    await page.getByLabel('Passphrase, once more').fill(PASS);
    await page.getByRole('button', { name: 'Create my vault' }).click();
    await heading(page, 'Check your e-mail');
    await check(page, 'check-your-email');

    // A wrong code is refused next to the field, and kept.
    await page.getByLabel('Code from the e-mail').fill('me2b_c_not-a-real-code');
    await page.getByRole('button', { name: 'Confirm and open my vault' }).click();
    await page.locator('#token-error').waitFor();
    assert.equal(await page.getByLabel('Code from the e-mail').inputValue(), 'me2b_c_not-a-real-code');

    const code = node.confirmationCode(EMAIL);
    assert.ok(code, 'a confirmation message in the outbox');
    await page.getByLabel('Code from the e-mail').fill(code);
    await page.getByRole('button', { name: 'Confirm and open my vault' }).click();
    await heading(page, 'Your recovery code');
    const shown = (await page.locator('#recovery-code').innerText()).trim();
    assert.match(shown, /^[0-9A-Za-z]{4}(-[0-9A-Za-z]{4}){6}$/, 'seven groups of four');
    await check(page, 'recovery-code');
    await page.getByRole('link', { name: /continue/ }).click();
    await heading(page, 'Your vault');
    await check(page, 'vault-empty');
  });

  it('adds, corrects and deletes vault records; errors appear next to the field and keep the input', async () => {
    await page.getByLabel('A profile detail').check();
    await page.getByLabel('Profile detail: what it is').fill('Home Town');
    await page.getByLabel('Profile detail: value').fill('Utrecht');
    await page.getByRole('button', { name: 'Add to my vault' }).click();
    await page.locator('#name-error').waitFor();
    assert.match(await page.locator('#name-error').innerText(), /lower-case letters/);
    assert.equal(await page.getByLabel('Profile detail: value').inputValue(), 'Utrecht');
    assert.equal(await page.getByLabel('Profile detail: what it is').inputValue(), 'Home Town');
    await check(page, 'vault-add-error');

    const rows = page.locator('table.records tbody tr');
    const rowCount = (n) => page.waitForFunction((k) => document.querySelectorAll('table.records tbody tr').length === k, n);
    await page.getByLabel('Profile detail: what it is').fill('region');
    await page.getByRole('button', { name: 'Add to my vault' }).click();
    await page.getByRole('status').filter({ hasText: 'was added' }).waitFor();
    await rowCount(1);

    await page.getByLabel('An interest').check();
    await page.getByLabel('Interest: topic').selectOption({ label: 'Sports › Cycling' });
    await page.getByRole('button', { name: 'Add to my vault' }).click();
    await rowCount(2);

    await page.getByLabel('A note', { exact: true }).check();
    await page.getByLabel('Note: title (optional)').fill('Bike');
    await page.getByLabel('Note: text').fill('Service the bike in spring.');
    await page.getByRole('button', { name: 'Add to my vault' }).click();
    await rowCount(3);
    await check(page, 'vault-three-records');

    // Correct the region.
    await page.getByRole('link', { name: 'Correct Profile detail region' }).click();
    await heading(page, 'Correct a record');
    await page.getByLabel('Value').fill('');
    await page.getByRole('button', { name: 'Save the correction' }).click();
    await page.locator('#value-error').waitFor();
    await check(page, 'record-correct-error');
    await page.getByLabel('Value').fill('Amersfoort');
    await page.getByRole('button', { name: 'Save the correction' }).click();
    await page.getByRole('status').filter({ hasText: 'correction was saved' }).waitFor();
    assert.ok(await page.locator('table.records').getByText('Amersfoort').isVisible());

    // Delete the note, after a confirmation page.
    await page.getByRole('link', { name: 'Delete Note Bike' }).click();
    await heading(page, 'Delete a record');
    await check(page, 'record-delete-confirm');
    await page.getByRole('button', { name: 'Delete it' }).click();
    await page.getByRole('status').filter({ hasText: 'was deleted' }).waitFor();
    await rowCount(2);
    assert.equal(await rows.count(), 2);
    await check(page, 'vault-after-delete');
  });

  it('reads a consent request in plain language, grants part of it, downloads the signed receipt and withdraws', async () => {
    const key = node.org('Corner Co-op', 'consent');
    const asked = await node.api('POST', '/v1/org/consent-requests', key, {
      purposes: ['service-personalisation', 'direct-marketing'],
      categories: ['region', 'interest'],
      processing: ['use'], legal_basis: 'consent', retention_days: 90, recipients: [],
      notice: 'We use what you share to send offers that fit you.', notice_version: '2026-11',
    });
    assert.equal(asked.status, 201, JSON.stringify(asked.body));

    await page.getByRole('link', { name: 'Consents' }).click();
    await heading(page, 'Your consents');
    assert.ok(await page.getByText('Corner Co-op asks to use your region, interest').isVisible());
    await check(page, 'consents-pending');
    await page.getByRole('link', { name: /Review and answer/ }).click();
    await heading(page, 'A consent request');
    await check(page, 'consent-request');

    // Nothing ticked: an error next to each group.
    await page.getByRole('button', { name: 'Allow what I ticked' }).click();
    await page.locator('#purpose-error').waitFor();
    assert.ok(await page.locator('#category-error').isVisible());
    await check(page, 'consent-request-errors');

    // Part of it: one purpose, one category.
    await page.getByRole('checkbox', { name: /personal/i }).first().check();
    await page.getByRole('checkbox', { name: /region/i }).check();
    await page.getByRole('button', { name: 'Allow what I ticked' }).click();
    await page.getByRole('status').filter({ hasText: 'consent was recorded' }).waitFor();
    const card = page.locator('section[aria-labelledby="mine-h"] .card', { hasText: 'Corner Co-op' });
    assert.match(await card.innerText(), /In force/);
    assert.doesNotMatch(await card.innerText(), /interest/i, 'only the ticked category');
    await check(page, 'consent-granted');

    // The organisation sees nothing yet: consent changes reach it in
    // batches (what it sees after the release: crates/server/tests/linking.rs).
    const reqs = await node.api('GET', `/v1/org/consent-requests/${asked.body.id}/consents`, key);
    assert.equal(reqs.status, 200);
    assert.deepEqual(reqs.body, []);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: /Download signed receipt 1/ }).click(),
    ]);
    const chunks = [];
    for await (const c of await download.createReadStream()) chunks.push(c);
    const jws = Buffer.concat(chunks).toString('utf8');
    assert.match(jws, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a compact JWS');
    const header = JSON.parse(Buffer.from(jws.split('.')[0], 'base64url').toString());
    assert.equal(header.typ, 'me2b-consent-receipt+jws');

    await page.getByRole('button', { name: /Withdraw my consent/ }).click();
    await page.getByRole('status').filter({ hasText: 'was withdrawn' }).waitFor();
    assert.match(await card.innerText(), /Withdrawn/);
    assert.equal(await page.getByRole('button', { name: /Withdraw my consent/ }).count(), 0);
    await check(page, 'consent-withdrawn');
  });

  it('sees offers matched in the vault with why, accepts one and dismisses another', async () => {
    const key = node.org('Bike Co-op', 'offers');
    const until = new Date(Date.now() + 30 * 86400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const published = await node.api('POST', '/v1/org/offers', key, {
      title: 'Spring bike service, 20% off', text: 'For members who ride.', topics: ['cycling'],
      rule: 'region == "Amersfoort"', valid_until: until,
    });
    assert.equal(published.status, 201, JSON.stringify(published.body));
    const other = await node.api('POST', '/v1/org/offers', key, {
      title: 'Cycling holiday', text: 'A week in the hills.', topics: ['cycling'], rule: null, valid_until: until,
    });
    assert.equal(other.status, 201, JSON.stringify(other.body));

    await page.getByRole('link', { name: 'Offers' }).click();
    await heading(page, 'Your offers');
    const card = page.locator('.card', { hasText: 'Spring bike service' });
    await card.getByText('Why this offer?').click();
    const why = await card.locator('details').innerText();
    assert.match(why, /Cycling/);
    assert.match(why, /region == "Amersfoort"/);
    assert.match(why, /Amersfoort/);
    await check(page, 'offers-why');

    await card.getByRole('button', { name: /^Accept/ }).click();
    await page.getByRole('status').filter({ hasText: 'You accepted the offer' }).waitFor();
    assert.match(await page.locator('.card', { hasText: 'Spring bike service' }).innerText(), /You accepted this offer/);
    await page.locator('.card', { hasText: 'Cycling holiday' }).getByRole('button', { name: /^Dismiss/ }).click();
    await page.getByRole('status').filter({ hasText: 'The offer is hidden' }).waitFor();
    assert.equal(await page.locator('.card', { hasText: 'Cycling holiday' }).count(), 0);
    await check(page, 'offers-answered');
  });

  it('sees loyalty points earned at one co-op and approves a redemption at another with a QR code', async () => {
    const grocer = node.org('Grocer Co-op', 'insights');
    const shop = node.org('Second-hand Co-op', 'insights');
    const shopId = (await node.api('GET', '/v1/org', shop)).body.org_id;
    const grocerId = (await node.api('GET', '/v1/org', grocer)).body.org_id;
    // The member shows their card at the grocer's till; the grocer adds points to it.
    const session = await node.api('POST', '/v1/sessions', '', { email: EMAIL, passphrase: PASS });
    assert.equal(session.status, 201);
    const card = await node.api('GET', `/v1/me/trust/cards/${grocerId}`, session.body.token);
    assert.equal(card.status, 200, JSON.stringify(card.body));
    const earned = await node.api('POST', '/v1/org/trust/loyalty/earn', grocer, { card: card.body.card, points: 150 });
    assert.equal(earned.status, 202, JSON.stringify(earned.body));

    await page.getByRole('link', { name: 'Loyalty' }).click();
    await heading(page, 'Your loyalty points');
    assert.equal((await page.locator('#balance').innerText()).trim(), '150');
    assert.match(await page.locator('table.records').innerText(), /Grocer Co-op\s+150\s+0/);
    await check(page, 'loyalty');

    // More than the balance: an error at the field, the input kept.
    await page.getByLabel('Co-op').selectOption({ label: 'Second-hand Co-op' });
    await page.getByLabel('Points', { exact: true }).fill('500');
    await page.getByRole('button', { name: 'Make a token' }).click();
    await page.locator('#points-error').waitFor();
    assert.equal(await page.getByLabel('Points', { exact: true }).inputValue(), '500');
    await check(page, 'loyalty-too-many');

    await page.getByLabel('Points', { exact: true }).fill('100');
    await page.getByRole('button', { name: 'Make a token' }).click();
    await heading(page, 'Redeem at the till');
    assert.equal(await page.locator('.qr svg path').count(), 1);
    const token = (await page.locator('#token').innerText()).trim();
    await check(page, 'loyalty-token-qr');
    // The till reads the token and redeems it: the co-op hears only the amount.
    const redeemed = await node.api('POST', '/v1/org/trust/loyalty/redeem', shop, { token, points: 100 });
    assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
    assert.ok(!JSON.stringify(redeemed.body).includes('150'), 'no balance told to the co-op');
    assert.ok(shopId);

    await page.getByRole('link', { name: 'Back to your points' }).click();
    await heading(page, 'Your loyalty points');
    assert.equal((await page.locator('#balance').innerText()).trim(), '50');
  });

  it('reads who used their data, in plain language', async () => {
    await page.getByRole('link', { name: 'Who used my data' }).click();
    await heading(page, 'Who used my data');
    const text = await page.locator('table.activity').innerText();
    assert.match(text, /You gave consent/);
    assert.match(text, /You withdrew a consent/);
    assert.match(text, /Loyalty points moved/);
    // The member's own actions are theirs ("You"), not another member's.
    assert.match(text, /\tYou\tYou logged in\t/);
    assert.doesNotMatch(text, /Another member/);
    await check(page, 'who-used-my-data');
  });

  it('after the session ends, returns to login and then back to the page it was on', async () => {
    const context = page.context();
    const url = new URL(node.base);
    // A session the node no longer knows (as after expiry or a log-out elsewhere).
    await context.addCookies([{ name: 'me2b_session', value: 'me2b_s_expired', domain: url.hostname, path: '/', httpOnly: true, sameSite: 'Strict' }]);
    await page.goto(node.base + '/consents');
    await heading(page, 'Log in');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/consents');
    assert.ok(await page.getByText('Your session ended').isVisible());
    await check(page, 'login-after-expiry');
    await page.getByLabel('E-mail address').fill(EMAIL);
    await page.getByLabel('Passphrase').fill('wrong passphrase!');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'is wrong' }).waitFor();
    assert.equal(await page.getByLabel('E-mail address').inputValue(), EMAIL);
    await check(page, 'login-wrong');
    await page.getByLabel('Passphrase').fill(PASS);
    await page.getByRole('button', { name: 'Log in' }).click();
    await heading(page, 'Your consents');
    assert.equal(new URL(page.url()).pathname, '/consents');
  });

  it('logs out, and the session cookie no longer opens the vault', async () => {
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'me2b_session');
    assert.ok(session?.httpOnly, 'HttpOnly');
    assert.equal(session.sameSite, 'Strict');
    await page.getByRole('button', { name: 'Log out' }).click();
    await heading(page, 'Log in');
    assert.ok(await page.getByText('You are logged out').isVisible());
    const r = await fetch(node.base + '/vault', { headers: { cookie: `me2b_session=${session.value}` }, redirect: 'manual' });
    assert.equal(r.status, 303);
    assert.match(r.headers.get('location'), /^\/login\?next=/);
  });

  it('reads the privacy notice', async () => {
    await page.getByRole('link', { name: 'Privacy notice' }).click();
    await heading(page, 'Privacy notice');
    await check(page, 'privacy');
  });
});
