// The co-op's console: log in with an API key (back to where it was going),
// consent requests with their uptake, and writing an offer whose rule error
// is shown at its line and column, then fixed and published. A key without
// a role sees that view refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, newPage, check, heading } from './lib.js';

describe('a co-op', () => {
  let node; let browser; let page; let key;
  before(async () => {
    node = await startNode();
    browser = await launch();
    page = await newPage(browser);
    key = node.org('Corner Co-op', 'consent,offers');
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('logs in with its API key and sees the uptake of its consent requests', async () => {
    const asked = await node.api('POST', '/v1/org/consent-requests', key, {
      purposes: ['service-personalisation'], categories: ['region'], processing: ['use'],
      legal_basis: 'consent', retention_days: 30, recipients: [],
      notice: 'We tailor the shop to your region.', notice_version: '1',
    });
    assert.equal(asked.status, 201);
    for (const email of ['ana@example.org', 'bo@example.org']) {
      const member = await node.signUp(email, 'correct horse battery staple');
      const answer = email.startsWith('ana') ? 'grant' : 'refuse';
      const r = await node.api('POST', `/v1/me/consent-requests/${asked.body.id}/${answer}`, member, answer === 'grant' ? {} : undefined);
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }

    await page.goto(node.base + '/coop/consents');
    await heading(page, 'Co-op console');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/coop/consents');
    await page.getByLabel('API key').fill('me2b_k_not-a-key');
    await page.getByRole('button', { name: 'Open the console' }).click();
    await page.locator('#api_key-error').waitFor();
    await check(page, 'coop-login-error');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Open the console' }).click();
    await heading(page, 'Consent requests');
    const row = await page.locator('table.records tbody tr').first().innerText();
    assert.match(row, /region for service personalisation, for 30 days/);
    // Answers reach the co-op in batches (a daily release of at least five
    // members), so the one yes is not shown yet; the refusal never is.
    assert.match(row, /\t0\t0$/);
    assert.match(await page.locator('#release').innerText(), /in batches, never one by one[\s\S]*next release is at/);
    await check(page, 'coop-consents');
    await page.getByRole('link', { name: 'Corner Co-op' }).click();
    await heading(page, 'Your console');
    await check(page, 'coop-home');
  });

  it('writes an offer rule with an error, sees it at its line and column, fixes it and publishes', async () => {
    await page.getByRole('link', { name: 'Offers', exact: true }).click();
    await heading(page, 'Offers');
    await page.getByLabel('Title').fill('Repair café: free coffee');
    await page.getByLabel('What members read').fill('Bring a broken thing, leave with it fixed.');
    await page.getByLabel('Topics').fill('cycling');
    await page.getByLabel('Targeting rule (optional)').fill('region == "Amersfoort" &&\n  shoe_size > 42');
    const until = new Date(Date.now() + 60 * 86400_000).toISOString().slice(0, 10);
    await page.getByLabel('Valid until (last day)').fill(until);
    await page.getByRole('button', { name: 'Publish the offer' }).click();
    await page.locator('#rule-where').waitFor();
    const where = await page.locator('#rule-where').innerText();
    assert.match(where, /Line 2, column 3/);
    assert.match(where, /shoe_size/);
    // Everything typed is still there.
    assert.equal(await page.getByLabel('Title').inputValue(), 'Repair café: free coffee');
    assert.equal(await page.getByLabel('Targeting rule (optional)').inputValue(), 'region == "Amersfoort" &&\n  shoe_size > 42');
    await check(page, 'coop-rule-error');

    await page.getByLabel('Targeting rule (optional)').fill('region == "Amersfoort"');
    await page.getByRole('button', { name: 'Publish the offer' }).click();
    await page.getByRole('status').filter({ hasText: 'The offer is published' }).waitFor();
    assert.match(await page.locator('table.records').innerText(), /Repair café: free coffee\tactive/);
    await check(page, 'coop-offer-published');
  });

  it('refuses a view whose role the key lacks', async () => {
    const consentOnly = node.org('Bakery Co-op', 'consent');
    const other = await newPage(browser);
    await other.goto(node.base + '/coop/login');
    await other.getByLabel('API key').fill(consentOnly);
    await other.getByRole('button', { name: 'Open the console' }).click();
    await heading(other, 'Your console');
    assert.match(await other.locator('main').innerText(), /Needs the offers role/);
    const r = await other.goto(node.base + '/coop/offers');
    assert.equal(r.status(), 403);
    await heading(other, 'Role needed');
    await other.context().close();
  });
});
