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
  const statics = sizes.filter((s) => !new URL(s.url).pathname.startsWith('/v1/')).reduce((n, s) => n + s.bytes, 0);
  t.diagnostic(`page weight: ${total} bytes transferred in ${sizes.length} responses `
    + `(${statics} bytes of HTML, CSS and JS; the rest API answers); uncompressed`);
  t.diagnostic(`timing: domInteractive ${Math.round(nav.domInteractive)} ms, `
    + `first step's buttons enabled at ${Math.round(readyMs)} ms after navigation start`);
  for (const s of sizes) t.diagnostic(`  ${s.bytes}\t${new URL(s.url).pathname}`);
  assert.ok(readyMs < 5000, 'interactive within 5 s on loopback');
  assertNoConsoleErrors(page);
  await context.close();
});

test('token: asked for when absent, refused in words, taken from the fragment and removed from the URL', async () => {
  const { context, page } = await openPage(browser);
  // The refused token is an HTTP 401, which Chromium logs as a failed resource.
  page.allow.push(/status of 401/);
  await page.goto(`${server.origin}/`);
  const field = page.getByLabel('Access token');
  await field.waitFor();
  await audit(page, 'page-1-token');
  await field.fill('not-a-token');
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.getByText('This access token was not accepted').waitFor();
  assert.equal(await field.getAttribute('aria-invalid'), 'true');
  await audit(page, 'page-2-token-refused', { show: field });

  await field.fill(server.token);
  await page.getByRole('button', { name: 'Use this token' }).click();
  await waitForStep(page, 'Connect your AWS account');
  await context.close();

  const second = await openPage(browser);
  await second.page.goto(`${server.origin}/?x=1#token=${server.token}`);
  await waitForStep(second.page, 'Connect your AWS account');
  assert.equal(new URL(second.page.url()).hash, '', 'the token leaves the address bar');
  assert.ok(!second.page.url().includes(server.token));
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
  await waitForStep(page, 'Connect your AWS account');
  assert.equal(await page.getByLabel('Spot account ID').inputValue(), account);
  assert.equal((await connectionOf(server, account)).status, 'disconnected');
  assertNoConsoleErrors(page);
  await context.close();
});
