// The co-op console's further pages: the console session (a random id in
// the cookie, never the API key; logout ends it on the node), credential
// codes made and shown once, the till that checks a member's presentation
// and shows only what it disclosed (with the public challenge page the
// member reads), insights as SVG charts with error bars and the budget left,
// and erasure requests. Without JavaScript, by keyboard, at 200 % zoom.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, launch, newPage, check, heading } from './lib.js';

const PASS = 'correct horse battery staple';

async function consoleLogIn(page, base, key) {
  await page.goto(base + '/coop/login');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Open the console' }).click();
  await heading(page, 'Your console');
}

describe('the co-op console', () => {
  let node; let browser; let page; let key;
  before(async () => {
    node = await startNode();
    browser = await launch();
    page = await newPage(browser);
    key = node.org('Corner Co-op', 'consent,offers,credentials,insights');
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
  });

  it('keeps the API key on the node: the cookie is a session id that logout ends', async () => {
    await consoleLogIn(page, node.base, key);
    const cookies = await page.context().cookies();
    const c = cookies.find((x) => x.name === 'me2b_coop');
    assert.ok(c, 'a console cookie');
    assert.ok(!c.value.includes('me2b_k_') && !key.includes(c.value), 'the cookie is not the key');
    assert.equal(c.httpOnly, true);
    assert.equal(c.sameSite, 'Strict');
    await check(page, 'console-home');
    // The cookie does not work as an API key.
    assert.equal((await node.api('GET', '/v1/org', key)).status, 200);
    const r = await node.api('GET', '/v1/org', c.value);
    assert.ok([401, 403].includes(r.status), String(r.status));
    // After logout, the same cookie value no longer opens the console.
    await page.getByRole('button', { name: 'Leave the console' }).click();
    await heading(page, 'Co-op console');
    await page.context().addCookies([{ ...c }]);
    await page.goto(node.base + '/coop/credentials');
    await heading(page, 'Co-op console');
    assert.equal(new URL(page.url()).searchParams.get('next'), '/coop/credentials');
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Open the console' }).click();
    await heading(page, 'Membership credentials');
  });

  it('makes a credential code, shown once with its QR code; the till checks it and shows only what was disclosed', async () => {
    await page.goto(node.base + '/coop/credentials');
    await page.getByRole('button', { name: 'Make the code' }).click();
    await page.locator('#tier-error').waitFor();
    assert.equal(await page.getByLabel('Member since (year)').inputValue(), '');
    await check(page, 'credentials-errors');
    await page.getByLabel('Membership tier').selectOption({ index: 1 });
    await page.getByLabel('Region').selectOption({ index: 1 });
    await page.getByLabel('Member since (year)').fill('2020');
    await page.getByRole('button', { name: 'Make the code' }).click();
    await page.locator('#code').waitFor();
    const code = (await page.locator('#code').innerText()).trim();
    assert.match(code, /\S{8,}/);
    assert.equal(await page.locator('.qr svg').count(), 1);
    await check(page, 'credentials-code');

    // The member redeems it in their vault (the member's pages are elsewhere).
    const member = await node.signUp('ana@example.org', PASS);
    const held = await node.api('POST', '/v1/me/credentials', member, { code });
    assert.equal(held.status, 201, JSON.stringify(held.body));

    // The till asks for the tier only.
    await page.getByRole('link', { name: 'Till', exact: true }).click();
    await heading(page, 'Till: check a membership');
    await page.getByLabel('Membership tier').check();
    await page.getByRole('button', { name: 'Make a challenge' }).click();
    await page.locator('#challenge').waitFor();
    const challenge = await page.locator('#challenge').inputValue();
    assert.match(await page.locator('main').innerText(), /Membership tier/);
    await check(page, 'till-challenge');

    // The public challenge page the member opens: who asks what, no login.
    const visitor = await newPage(browser);
    await visitor.goto(node.base + await page.getByRole('link', { name: 'the challenge page' }).getAttribute('href'));
    await heading(visitor, "A verifier's challenge");
    const asks = await visitor.locator('#asks').innerText();
    assert.match(asks, /Membership tier/);
    assert.match(await visitor.locator('main').innerText(), /Corner Co-op asks you/);
    assert.equal(await visitor.locator('#challenge').inputValue(), challenge);
    await check(visitor, 'public-challenge');
    const bad = await visitor.goto(node.base + '/verify?c=bm90LWEtY2hhbGxlbmdl');
    assert.equal(bad.status(), 404);
    await visitor.context().close();

    // The member answers from their vault; the till checks the answer.
    const presented = await node.api('POST', `/v1/me/credentials/${held.body.id}/present`, member,
      { challenge: JSON.parse(challenge), accept_rare: true });
    assert.equal(presented.status, 200, JSON.stringify(presented.body));
    await page.getByLabel("The member's presentation").fill('{"not": "a presentation"}');
    await page.getByRole('button', { name: 'Check it' }).click();
    await page.locator('#presentation-error').waitFor();
    assert.equal(await page.getByLabel("The member's presentation").inputValue(), '{"not": "a presentation"}');
    await check(page, 'till-invalid');
    await page.getByLabel("The member's presentation").fill(JSON.stringify(presented.body.presentation));
    await page.getByRole('button', { name: 'Check it' }).click();
    await page.locator('#disclosed').waitFor();
    const shown = await page.locator('#disclosed').innerText();
    assert.match(shown, /Membership tier/);
    assert.doesNotMatch(shown, /ana@example\.org|Region|Member since|2020/);
    assert.match(await page.locator('#result-h').innerText(), /Valid membership/);
    await check(page, 'till-valid');
    // The same presentation again: the challenge is used up.
    await page.getByLabel("The member's presentation").fill(JSON.stringify(presented.body.presentation));
    await page.getByRole('button', { name: 'Check it' }).click();
    await page.locator('#presentation-error').waitFor();
    assert.match(await page.locator('#presentation-error').innerText(), /no open challenge/);
  });

  it('shows insights as SVG charts with error bars and the budget left', async () => {
    await page.getByRole('link', { name: 'Insights', exact: true }).click();
    await heading(page, 'Insights from the trust');
    const before = await page.locator('#pool-0').innerText();
    await check(page, 'insights');
    await page.getByLabel('Privacy cost ε').fill('lots');
    await page.getByRole('button', { name: 'Ask the trust' }).click();
    await page.locator('#epsilon-error').waitFor();
    assert.equal(await page.getByLabel('Privacy cost ε').inputValue(), 'lots');
    await page.getByLabel('Members per area').check();
    await page.getByLabel('Privacy cost ε').fill('0.5');
    await page.getByRole('button', { name: 'Ask the trust' }).click();
    await page.locator('#answer-table').waitFor();
    assert.ok(await page.locator('section.answer svg.chart').count() === 1);
    assert.match(await page.locator('section.answer').innerText(), /95 %/);
    const after = await page.locator('#pool-0').innerText();
    assert.notEqual(after, before, 'the budget left went down');
    await check(page, 'insights-answer');
  });

  it('lists erasure requests to confirm', async () => {
    await page.getByRole('link', { name: 'Erasure', exact: true }).click();
    await heading(page, 'Erasure requests');
    await page.locator('#none').waitFor();
    await check(page, 'erasure');
  });

  it('works without JavaScript, by keyboard, and at 200 % zoom', async () => {
    const plain = await newPage(browser, { javaScriptEnabled: false, viewport: { width: 640, height: 720 }, deviceScaleFactor: 2 });
    await consoleLogIn(plain, node.base, key);
    for (const path of ['/coop/credentials', '/coop/till', '/coop/insights', '/coop/erasure']) {
      await plain.goto(node.base + path);
      const [scroll, width] = await plain.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scroll <= width, `${path}: ${scroll} > ${width}`);
    }
    // A challenge made by keyboard alone, without JavaScript.
    await plain.goto(node.base + '/coop/till');
    await plain.locator('#status_check').focus();
    await plain.keyboard.press('Space');
    await plain.locator('form[action="/coop/till"] button').focus();
    await plain.keyboard.press('Enter');
    await plain.locator('#challenge').waitFor();
    assert.match(await plain.locator('main').innerText(), /status list entry/);
    // axe-core needs JavaScript: the same page at 200 % zoom with it.
    await plain.context().close();
    const zoomed = await newPage(browser, { viewport: { width: 640, height: 720 }, deviceScaleFactor: 2 });
    await consoleLogIn(zoomed, node.base, key);
    await zoomed.goto(node.base + '/coop/insights');
    await check(zoomed, 'insights-zoom-200');
    await zoomed.context().close();
  });
});
