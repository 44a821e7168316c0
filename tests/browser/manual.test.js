// Manual route end to end against the real server and moto: (1) a role
// made as the wizard says connects; (2) a role whose trust policy lacks the
// external ID condition is refused with the trust-policy check and its fix.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.js';
import { launch, openPage, audit, assertNoConsoleErrors, waitForStep } from './lib/browser.js';
import { open, toPermissions, next, viewJson, spotAccount, connectionOf } from './lib/wizard.js';
import { createRole, unique } from './lib/moto.js';

/** The server may wait up to ~25 s for IAM propagation; leave room. */
const VERIFY_TIMEOUT_MS = 45_000;

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

/** Actions of `productId` that no other ticked bundle grants, so unticking removes them. */
function ownActions(catalog, productId, ticked) {
  const others = new Set(catalog.core.actions);
  for (const p of catalog.products) {
    if (p.id !== productId && ticked.includes(p.id)) p.actions.forEach((a) => others.add(a));
    for (const i of p.integrations) if (ticked.includes(p.id) && p.id !== productId) i.actions.forEach((a) => others.add(a));
  }
  return catalog.products.find((p) => p.id === productId).actions.filter((a) => !others.has(a));
}

/** Walk to the role step with customized permissions; returns what the page showed. */
async function walkToRole(page, account, { shots = false } = {}) {
  const narrow = new Set(['manual-1-start', 'manual-2-customize', 'manual-4-role']);
  const shot = (name) => (shots ? audit(page, name, { narrowShot: narrow.has(name) }) : Promise.resolve());
  await open(page, server);
  await toPermissions(page, { account, onStep: (s) => shot(`manual-1-${s}`) });
  const catalog = (await server.api('GET', '/v1/catalog?partition=aws')).body;

  await page.getByRole('radio', { name: 'Customize permissions' }).check();
  // An integration needs its product: unticking Ocean unticks and disables EKS.
  const ocean = page.getByRole('checkbox', { name: 'Ocean', exact: true });
  const eks = page.getByRole('checkbox', { name: 'Amazon EKS' });
  assert.equal(await eks.isChecked(), true);
  await ocean.uncheck();
  assert.equal(await eks.isChecked(), false);
  assert.equal(await eks.isDisabled(), true);
  await ocean.check();
  assert.equal(await eks.isChecked(), true, 'ticking the product again restores its integrations');

  // Untick Spot Storage and watch its own actions leave the JSON.
  const defaults = catalog.products.filter((p) => p.default).map((p) => p.id);
  const gone = ownActions(catalog, 'spot-storage', defaults);
  assert.ok(gone.length > 0, 'Spot Storage has actions of its own');
  await page.getByRole('button', { name: /actions of Spot Storage/ }).click();
  assert.ok(await page.getByText(gone[0], { exact: true }).first().isVisible(), 'the disclosure shows the actions');
  let json = (await viewJson(page)).join('\n');
  assert.ok(json.includes(`"${gone[0]}"`), `${gone[0]} is in the JSON before`);
  await shot('manual-2-customize');
  await page.getByRole('checkbox', { name: 'Spot Storage' }).uncheck();
  await page.waitForFunction(
    (action) => !document.querySelector('account-connect-wizard').shadowRoot.querySelector('.json-panel').textContent.includes(`"${action}"`),
    gone[0],
  );
  json = (await viewJson(page)).join('\n');
  for (const a of gone) assert.ok(!json.includes(`"${a}"`), `${a} left the JSON`);
  assert.match(await page.locator('account-connect-wizard .size-summary').textContent(), /of|characters/);

  await next(page);
  await waitForStep(page, 'Create IAM policy');
  await shot('manual-3-policy');
  const documents = (await page.getByRole('region', { name: /JSON$/ }).allTextContents()).map((t) => JSON.parse(t));
  assert.ok(documents.length >= 1);
  assert.ok(!JSON.stringify(documents).includes(`"${gone[0]}"`), 'the connection was made with the customized selection');
  // Copy puts exactly the shown document on the clipboard.
  await page.getByRole('button', { name: /^Copy Spot-Policy/ }).first().click();
  await page.getByText('Copied').first().waitFor();
  assert.deepEqual(JSON.parse(await page.evaluate(() => navigator.clipboard.readText())), documents[0]);

  await next(page);
  await waitForStep(page, 'Create IAM role');
  const externalId = (await page.locator('account-connect-wizard .copyable').filter({ hasText: 'External ID' })
    .locator('code').textContent()).trim();
  const vendor = (await page.locator('account-connect-wizard .copyable').filter({ hasText: 'Account ID' })
    .locator('code').textContent()).trim();
  assert.equal(vendor, '922761411349', 'the vendor account comes from the connection principal');
  await page.getByRole('button', { name: 'Trust policy' }).click();
  const trust = JSON.parse(await page.getByRole('region', { name: 'Trust policy JSON' }).textContent());
  assert.equal(trust.Statement[0].Condition.StringEquals['sts:ExternalId'], externalId);
  await shot('manual-4-role');
  return { documents, externalId, trust };
}

async function connect(page, roleArn) {
  await page.getByLabel('Role ARN').fill(roleArn);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
}

test('(1) manual: customize, create the role in moto, Connect, connected banner and checklist', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.addInitScript(() => {
    window.events = [];
    for (const type of ['connected', 'failed']) {
      document.addEventListener(type, (e) => window.events.push({ type, detail: e.detail }));
    }
  });
  const account = spotAccount();
  const { documents, trust } = await walkToRole(page, account, { shots: true });

  const roleArn = await createRole({ name: unique('Spot-Role'), trust, documents });
  await connect(page, roleArn);
  // While the server waits for IAM, the page says so and counts.
  const waiting = page.getByText(/Waiting for IAM propagation/);
  const banner = page.getByText('Account connected.');
  await Promise.race([waiting.waitFor({ timeout: 5000 }), banner.waitFor({ timeout: 5000 })]).catch(() => {});
  const report = page.locator('account-connect-wizard .report');
  await report.waitFor({ timeout: VERIFY_TIMEOUT_MS });
  assert.equal(await banner.count(), 1, `connected, but the page says: ${await report.textContent()}`);
  assert.match(await page.locator('account-connect-wizard .banner').textContent(), /123456789012 is now linked to Spot/);
  const checks = page.locator('account-connect-wizard .check');
  assert.ok((await checks.count()) >= 3, 'the checklist lists the checks');
  assert.equal(await page.locator('account-connect-wizard .check.status-failed').count(), 0);
  assert.match(await checks.first().textContent(), /Passed/);
  await audit(page, 'manual-5-connected', { show: page.locator('account-connect-wizard .report'), narrowShot: true });

  const events = await page.evaluate(() => window.events);
  assert.equal(events.at(-1).type, 'connected');
  assert.equal(events.at(-1).detail.status, 'connected');
  assert.equal((await connectionOf(server, account)).status, 'connected');
  // The list shows it, in words.
  await page.locator('account-connect-wizard .connection').filter({ hasText: account }).getByText('Connected').waitFor();
  // Connect another account: a fresh wizard run, focus on its first step.
  await page.getByRole('button', { name: 'Connect another account' }).click();
  await waitForStep(page, 'Choose how to connect');
  assert.equal(await page.getByText('Account connected.').count(), 0);
  assert.equal(await page.evaluate(() => {
    const root = document.querySelector('account-connect-wizard').shadowRoot;
    return root.activeElement && root.activeElement.textContent;
  }), 'Choose how to connect');
  assertNoConsoleErrors(page);
  await context.close();
});

test('(2) manual: a trust policy without the external ID condition is refused and stays pending', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  // The refusal is an HTTP 422, which Chromium logs as a failed resource.
  page.allow.push(/status of 422/);
  const account = spotAccount();
  const { documents, trust } = await walkToRole(page, account);
  const open = { ...trust, Statement: trust.Statement.map(({ Condition, ...s }) => s) };
  const roleArn = await createRole({ name: unique('Spot-Role-open'), trust: open, documents });
  await connect(page, roleArn);

  const failed = page.locator('account-connect-wizard .check.status-failed');
  await failed.first().waitFor({ timeout: VERIFY_TIMEOUT_MS });
  const trustCheck = failed.filter({ hasText: /trust policy/i });
  assert.equal(await trustCheck.count(), 1, 'the trust-policy check is the one that failed');
  assert.match(await trustCheck.textContent(), /Failed/);
  assert.match(await trustCheck.locator('.remediation').textContent(), /How to fix: .*sts:ExternalId/);
  assert.equal(await page.getByText('Account connected.').count(), 0);
  await page.getByText(/Not connected yet/).waitFor();
  await audit(page, 'manual-6-trust-policy-refused', { show: trustCheck });
  assert.equal((await connectionOf(server, account)).status, 'pending');
  assertNoConsoleErrors(page);
  await context.close();
});
