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

  // New intents reach organisations in batches (a whole hour at which at
  // least ten wait, or after a day), so a real-time browser test sees the
  // batch held. What an organisation sees and answers after the release is
  // tested with the node's clock moved: crates/server/tests/web_coop.rs and
  // intents.rs.
  it('an organisation follows the topic and sees the intent held until its batch goes', async () => {
    await coop.goto(node.base + '/coop/login');
    await coop.getByLabel('API key').fill(key);
    await coop.getByRole('button', { name: 'Open the console' }).click();
    await heading(coop, 'Your console');
    await coop.getByRole('link', { name: 'Intents', exact: true }).click();
    await heading(coop, 'Intents');
    assert.match(await coop.locator('main').innerText(), /in batches/);
    await coop.getByLabel('Topics').fill('cycling');
    await coop.getByRole('button', { name: 'Follow these' }).click();
    await coop.getByRole('status').filter({ hasText: 'You follow these' }).waitFor();
    assert.match(await coop.locator('main').innerText(), /No open intent matches/);
    assert.equal(await coop.locator('#feed').count(), 0);
    const api = await node.api('GET', '/v1/org/intents', key);
    assert.equal(api.status, 200);
    assert.equal(api.body.length, 0, 'held until the batch goes');
    await check(coop, 'coop-intents-held');
  });

  it('the member sees their intent, with no answers yet', async () => {
    await member.goto(node.base + '/intents');
    await heading(member, 'Your intents');
    const text = await member.locator('main').innerText();
    assert.match(text, /A cargo bike for two children/);
    assert.match(text, /No answers yet/);
    await check(member, 'intent-waiting');
  });
});
