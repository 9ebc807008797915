// The till journey of issue 16, in the browser on both sides: the co-op's
// till makes a challenge, the member answers it from their vault's
// credentials page, and the till checks the answer and shows only what it
// disclosed. Nothing goes through the API except making the code (the
// co-op's credential page has its own test) and the member's sign-up.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, newPage, check, heading, logIn } from './lib.js';

const PASS = 'correct horse battery staple';

describe('a credential presented at the till', () => {
  let node; let browser;
  before(async () => {
    node = await startNode();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('goes from the till to the member and back, disclosing only the tier', async () => {
    const key = node.org('Corner Co-op', 'credentials');
    const issued = await node.api('POST', '/v1/org/credentials/codes', key,
      { federation: 'Fair Economy Federation', tier: 'founding', region: 'NL-NH', member_since: 2020 });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    await node.signUp('bo@example.org', PASS);

    // The member adds the credential in their vault.
    const member = await newPage(browser);
    await logIn(member, node.base, 'bo@example.org', PASS);
    await member.getByRole('link', { name: 'Credentials' }).click();
    await heading(member, 'Your credentials');
    await member.getByLabel('Code from the co-op').fill(issued.body.code);
    await member.getByRole('button', { name: 'Add it to my vault' }).click();
    await member.getByRole('status').filter({ hasText: 'The credential is in your vault' }).waitFor();

    // The till asks for the tier only.
    const till = await newPage(browser);
    await till.goto(node.base + '/coop/login');
    await till.getByLabel('API key').fill(key);
    await till.getByRole('button', { name: 'Open the console' }).click();
    await heading(till, 'Your console');
    await till.getByRole('link', { name: 'Till', exact: true }).click();
    await heading(till, 'Till: check a membership');
    await till.getByLabel('Membership tier').check();
    await till.getByRole('button', { name: 'Make a challenge' }).click();
    await till.locator('#challenge').waitFor();
    const challenge = await till.locator('#challenge').inputValue();
    await check(till, 'till-challenge');

    // The member types (pastes) the challenge and gets the answer to show.
    await member.getByLabel('Challenge from the verifier').fill(challenge);
    await member.getByRole('button', { name: /^Show it/ }).click();
    // The only credential of its co-op: the member is warned and confirms.
    await heading(member, 'Few share what you would show');
    await member.getByLabel(/I understand that Corner Co-op/).check();
    await member.getByRole('button', { name: 'Show it anyway' }).click();
    await heading(member, 'Show this to the verifier');
    assert.match(await member.locator('main').innerText(), /Corner Co-op/);
    await check(member, 'member-answer');
    const answer = await member.getByLabel(/Your answer/).inputValue();

    // The till checks it: valid, and only the tier is shown.
    await till.getByLabel("The member's presentation").fill(answer);
    await till.getByRole('button', { name: 'Check it' }).click();
    await till.locator('#disclosed').waitFor();
    assert.match(await till.locator('#result-h').innerText(), /Valid membership/);
    const shown = await till.locator('#disclosed').innerText();
    assert.match(shown, /Membership tier/);
    assert.doesNotMatch(shown, /bo@example\.org|Region|NL-NH|Member since|2020/);
    await check(till, 'till-valid');
  });
});
