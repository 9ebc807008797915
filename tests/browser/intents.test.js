// Intents in the browser (issue 17): a member asks for offers after the
// plain-words warning about free text; an organisation follows the topic,
// sees the open intent without any member identifier and with times to the
// hour, and answers once; the member compares two answers and accepts one,
// sharing only what they chose.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, newPage, check, heading, logIn } from './lib.js';

const PASS = 'correct horse battery staple';
const EMAIL = 'fay@example.org';

describe('intents', () => {
  let node; let browser; let member; let coop; let key;
  before(async () => {
    node = await startNode();
    browser = await launch();
    member = await newPage(browser);
    coop = await newPage(browser);
    key = node.org('Corner Co-op', 'offers');
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('a member publishes an intent only after reading the free-text warning', async () => {
    await node.signUp(EMAIL, PASS);
    await logIn(member, node.base, EMAIL, PASS);
    await member.getByRole('link', { name: 'Intents', exact: true }).click();
    await heading(member, 'Your intents');
    await check(member, 'intents-empty');
    await member.locator('main').getByRole('link', { name: 'Ask for offers' }).click();
    await heading(member, 'Ask for offers');
    assert.match(await member.locator('#warning-text').innerText(), /can tell them who you are/);
    await member.getByLabel('Topic').fill('cycling');
    await member.getByLabel('What you are looking for').fill('A cargo bike for two children');
    await member.getByLabel('At least').fill('800');
    await member.getByLabel('At most').fill('1500');
    await member.getByLabel('Your region').selectOption({ index: 1 });
    await member.getByRole('button', { name: 'Publish my intent' }).click();
    await member.locator('#acknowledge-error').waitFor();
    // What was typed is kept.
    assert.equal(await member.getByLabel('What you are looking for').inputValue(), 'A cargo bike for two children');
    await check(member, 'intent-warning-error');
    await member.getByLabel('I read the warning').check();
    await member.getByRole('button', { name: 'Publish my intent' }).click();
    await member.getByRole('status').filter({ hasText: 'Your intent is published' }).waitFor();
    await check(member, 'intent-published');
  });

  it('an organisation sees it without the member, to the hour, and answers once', async () => {
    await coop.goto(node.base + '/coop/login');
    await coop.getByLabel('API key').fill(key);
    await coop.getByRole('button', { name: 'Open the console' }).click();
    await heading(coop, 'Your console');
    await coop.getByRole('link', { name: 'Intents', exact: true }).click();
    await heading(coop, 'Intents');
    await coop.getByLabel('Topics').fill('cycling');
    await coop.getByRole('button', { name: 'Follow these' }).click();
    await coop.getByRole('status').filter({ hasText: 'You follow these' }).waitFor();
    const feed = await coop.locator('#feed').innerText();
    assert.match(feed, /A cargo bike for two children/);
    assert.doesNotMatch(feed, /fay|example\.org/);
    // Times to the hour only.
    const times = feed.match(/\d{2}:\d{2} UTC/g);
    assert.ok(times && times.length >= 2);
    for (const t of times) assert.match(t, /:00 UTC/);
    await check(coop, 'coop-intents-feed');

    await coop.locator('#feed').getByRole('link', { name: /Answer/ }).click();
    await heading(coop, 'Answer an intent');
    await coop.getByRole('button', { name: 'Send the answer' }).click();
    await coop.locator('#price-error').waitFor();
    await check(coop, 'coop-answer-errors');
    await coop.getByLabel('Price', { exact: true }).fill('1199.95');
    await coop.getByLabel('What the price includes, your terms').fill('Delivered and assembled; two years of free repairs.');
    const until = new Date(Date.now() + 30 * 86400_000).toISOString().slice(0, 10);
    await coop.getByLabel('Valid until (last day)').fill(until);
    await coop.getByLabel('their email address').check();
    await coop.getByRole('button', { name: 'Send the answer' }).click();
    await coop.getByRole('status').filter({ hasText: 'Your answer is sent' }).waitFor();
    assert.match(await coop.locator('#feed').innerText(), /answered/);
    await check(coop, 'coop-answered');
  });

  it('the member compares the answers and accepts one, sharing only what they chose', async () => {
    // A second organisation answers through the API.
    const other = node.org('Bike Brand', 'offers');
    assert.equal((await node.api('PUT', '/v1/org/intents/subscription', other, { topics: ['cycling'] })).status, 200);
    const open = await node.api('GET', '/v1/org/intents', other);
    assert.equal(open.body.length, 1);
    const r = await node.api('POST', `/v1/org/intents/${open.body[0].id}/answers`, other, {
      price: { amount_cents: 99900, currency: 'EUR' }, terms: 'Pick up in store.',
      valid_until: Date.now() + 20 * 86400_000, asks: [],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));

    await member.goto(node.base + '/intents');
    await heading(member, 'Your intents');
    const rows = await member.locator('table.records tbody tr').allInnerTexts();
    assert.equal(rows.length, 2);
    assert.match(rows[0], /Bike Brand/, 'lowest price first');
    assert.match(rows[1], /Corner Co-op/);
    await check(member, 'intent-answers');
    await member.getByRole('button', { name: "Accept Corner Co-op's answer" }).click();
    await member.getByRole('status').filter({ hasText: 'You accepted the answer' }).waitFor();
    assert.match(await member.locator('main').innerText(), /You shared: nothing/);
    await check(member, 'intent-accepted');

    // The chosen organisation's answer is accepted; the other learns nothing
    // now (that the intent closed shows from the next hour, so the time does
    // not link), and neither gets anything the member did not choose.
    const won = await node.api('GET', '/v1/org/intent-answers', key);
    assert.equal(won.body[0].status, 'accepted');
    assert.ok(!JSON.stringify(won.body).includes('fay@example.org'));
    const lost = await node.api('GET', '/v1/org/intent-answers', other);
    assert.notEqual(lost.body[0].status, 'accepted');
    assert.equal(lost.body[0].contact, undefined);
  });
});
