// The page around the wizard and the paths between steps: the token from
// the fragment or the form, keyboard use and visible focus, an account that
// already has a connection (409 → Continue), discarding a pending one, and
// the page's weight and time to interactive. Every state is audited.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.js';
import { launch, openPage, audit, assertNoConsoleErrors, waitForStep } from './lib/browser.js';
import { open, toPermissions, next, spotAccount, connectionOf } from './lib/wizard.js';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

// First, while the tenant has no connections: the list adds nothing to the weight.
test('weight and time to interactive of the page', async (t) => {
  // Each load in a new context (empty cache); the first also pays for the
  // browser's own start-up, so the figures of both are printed.
  for (const run of ['first load', 'second load']) {
    const { context, page } = await openPage(browser);
    const sizes = [];
    page.on('requestfinished', async (req) => {
      const s = await req.sizes();
      sizes.push({ url: req.url(), bytes: s.responseBodySize + s.responseHeadersSize });
    });
    await page.goto(`${server.origin}/#token=${server.token}`);
    // Interactive: the first step's buttons are on screen and enabled.
    const ready = await page.waitForFunction(() => {
      const b = document.querySelector('account-connect-wizard')?.shadowRoot?.querySelector('.choice-button');
      return b && !b.disabled && b.offsetParent !== null && performance.now();
    }, null, { polling: 'raf' });
    const readyMs = await ready.jsonValue();
    await page.waitForLoadState('networkidle');
    const nav = await page.evaluate(() => performance.getEntriesByType('navigation')[0].toJSON());
    const total = sizes.reduce((n, s) => n + s.bytes, 0);
    const api = sizes.filter((s) => new URL(s.url).pathname.startsWith('/v1/')).reduce((n, s) => n + s.bytes, 0);
    t.diagnostic(`${run}: ${total} bytes transferred (uncompressed, headers included) in ${sizes.length} responses, `
      + `${api} of them API answers; domInteractive ${Math.round(nav.domInteractive)} ms; `
      + `first step's buttons enabled ${Math.round(readyMs)} ms after navigation start`);
    if (run === 'second load') for (const s of sizes) t.diagnostic(`  ${s.bytes}\t${new URL(s.url).pathname}`);
    assert.ok(readyMs < 5000, 'interactive within 5 s on loopback');
    assertNoConsoleErrors(page);
    await context.close();
  }
});

test('token: asked for when absent, refused in words, taken from the fragment and removed from the URL', async () => {
  const { context, page } = await openPage(browser);
  // The refused token is an HTTP 401, which Chromium logs as a failed resource.
  page.allow.push(/status of 401/);
  await page.goto(`${server.origin}/`);
  const field = page.getByLabel('Access token');
  await field.waitFor();
  await audit(page, 'page-1-token', { narrowShot: true });
  await field.fill('not-a-token');
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.getByText('This access token was not accepted').waitFor();
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  await audit(page, 'page-2-token-refused', { show: field });

  await field.fill(server.token);
  await page.getByRole('button', { name: 'Use this token' }).click();
  await waitForStep(page, 'Choose how to connect');
  await context.close();

  const second = await openPage(browser);
  await second.page.goto(`${server.origin}/?x=1#token=${server.token}&accountId=act-1a2b3c4d`);
  await waitForStep(second.page, 'Choose how to connect');
  assert.equal(new URL(second.page.url()).hash, '#accountId=act-1a2b3c4d', 'the token leaves the address bar');
  assert.ok(!second.page.url().includes(server.token));
  // accountId becomes the element's account-id attribute: the field's default.
  assert.equal(await second.page.getByLabel('Spot account ID').inputValue(), 'act-1a2b3c4d');
  assertNoConsoleErrors(second.page);
  assertNoConsoleErrors(page);
  await second.context.close();
});

test('keyboard: the first steps work from the keyboard, with a visible focus ring', async () => {
  const { context, page } = await openPage(browser);
  await open(page, server);
  await page.getByLabel('Spot account ID').focus();
  await page.keyboard.type(spotAccount());
  await page.keyboard.press('Tab');
  const focused = () => page.evaluate(() => {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    const style = getComputedStyle(el);
    return { text: el.textContent.trim(), outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
  });
  const f = await focused();
  assert.equal(f.text, 'Manually');
  assert.ok(f.outline !== 'none' && f.width >= 2, `focus is visible (outline ${f.outline} ${f.width}px)`);
  await page.keyboard.press('Enter');
  await waitForStep(page, 'GovCloud or China account?');
  // Tab into the radio group, arrow to GovCloud, Tab on to Next.
  await page.keyboard.press('Tab');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.getByRole('radio', { name: /GovCloud/ }).isChecked(), true);
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal((await focused()).text, 'Next');
  await page.keyboard.press('Enter');
  await waitForStep(page, 'AWS login');
  assertNoConsoleErrors(page);
  await context.close();
});

test('an account with a live connection: the page offers to continue with it', async () => {
  const { context, page } = await openPage(browser);
  page.allow.push(/status of 409/);
  const account = spotAccount();
  const made = await server.api('POST', '/v1/connections', {
    accountId: account, partition: 'aws', permissions: { mode: 'default' }, method: 'manual',
  });
  assert.equal(made.status, 201);
  await open(page, server);
  await toPermissions(page, { account });
  await next(page);
  await page.getByText(/already has a live connection/).waitFor();
  const cont = page.getByRole('button', { name: 'Continue with this connection' });
  await audit(page, 'page-3-account-has-connection', { show: cont });
  await cont.click();
  await waitForStep(page, 'Create IAM policy');
  await next(page);
  await waitForStep(page, 'Create IAM role');
  const shown = await page.locator('account-connect-wizard .copyable').filter({ hasText: 'External ID' }).locator('code').textContent();
  assert.equal(shown.trim(), made.body.externalId, 'the existing connection, not a new one');
  assertNoConsoleErrors(page);
  await context.close();
});

test('after the connection is made its permissions are fixed; a pending one can be discarded', async () => {
  const { context, page } = await openPage(browser);
  const account = spotAccount();
  await open(page, server);
  await toPermissions(page, { account });
  await next(page);
  await waitForStep(page, 'Create IAM policy');
  await page.getByRole('button', { name: 'Back' }).click();
  await waitForStep(page, 'Customize or default permissions');
  const discard = page.getByRole('button', { name: 'Discard this connection and start again' });
  await discard.waitFor();
  assert.equal(await page.getByRole('radio', { name: 'Customize permissions' }).isDisabled(), true);
  await audit(page, 'page-4-permissions-locked', { show: discard });
  await discard.click();
  await waitForStep(page, 'Choose how to connect');
  assert.equal(await page.getByLabel('Spot account ID').inputValue(), account);
  assert.equal((await connectionOf(server, account)).status, 'disconnected');
  assertNoConsoleErrors(page);
  await context.close();
});

test('a lost answer to the create request: Next again gets the same connection, never a second', async () => {
  const { context, page } = await openPage(browser);
  // The dropped answer is a failed fetch in the console.
  page.allow.push(/net::ERR_/);
  const keys = [];
  let drop = true;
  await page.route('**/v1/connections', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    keys.push(route.request().headers()['idempotency-key']);
    if (!drop) return route.continue();
    drop = false;
    await route.fetch(); // the server makes the connection…
    return route.abort('connectionreset'); // …and its answer is lost on the way
  });
  const account = spotAccount();
  await open(page, server);
  await toPermissions(page, { account });
  await next(page);
  await page.getByText('The service could not be reached').waitFor();
  await audit(page, 'page-5-network-error', { show: page.getByText('The service could not be reached') });
  await next(page);
  await waitForStep(page, 'Create IAM policy');
  assert.equal(keys.length, 2);
  assert.ok(keys[0] && keys[0] === keys[1], 'the retry carries the same Idempotency-Key');
  const { body } = await server.api('GET', `/v1/connections?accountId=${account}`);
  assert.equal(body.items.length, 1, 'one connection, not two');
  assertNoConsoleErrors(page);
  await context.close();
});

test('several policies: each with its name, Copy button and size bar, and the split explained', async () => {
  const { context, page } = await openPage(browser);
  // The catalog fits in one policy today; answer with two to see the split.
  const doc = (n) => ({ Version: '2012-10-17', Statement: [{ Sid: `Part${n}`, Effect: 'Allow', Action: [`ec2:Describe${n}*`], Resource: ['*'] }] });
  await page.route('**/v1/policies', (route) => route.fulfill({
    contentType: 'application/json',
    body: JSON.stringify({
      partition: 'aws', permissions: { mode: 'default' }, bundles: ['core'], sizeLimit: 6144, totalSize: 10000,
      policies: [{ name: 'Spot-Policy-1', document: doc(1), size: 6000 }, { name: 'Spot-Policy-2', document: doc(2), size: 4000 }],
    }),
  }));
  await open(page, server);
  await toPermissions(page, { account: spotAccount() });
  await page.getByRole('button', { name: 'View JSON' }).click();
  await page.getByText(/split into 2 policies/).waitFor();
  for (const [name, size] of [['Spot-Policy-1', '6,000'], ['Spot-Policy-2', '4,000']]) {
    const block = page.getByRole('region', { name: `${name} policy` });
    await block.getByRole('heading', { name }).waitFor();
    await block.getByRole('button', { name: `Copy ${name} JSON` }).waitFor();
    assert.match(await block.textContent(), new RegExp(`Size: ${size} of 6,144 characters`));
  }
  assert.match(await page.locator('account-connect-wizard .size-summary').textContent(), /10,000 characters in 2 policies/);
  await audit(page, 'page-6-split-policies', { show: page.getByText(/split into 2 policies/) });
  assertNoConsoleErrors(page);
  await context.close();
});

