// (4) Automatic route: Run IAM Template opens the quick-create link, or the
// page says why there is none; the page turns to connected by itself once
// the connection is connected. Until the stack can report back, the test
// connects it through POST /v1/connections/{id}/role, as the stack would.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startServer } from './lib/server.js';
import { launch, openPage, audit, assertNoConsoleErrors, waitForStep } from './lib/browser.js';
import { open, toPermissions, next, spotAccount, connectionOf } from './lib/wizard.js';
import { createRole, unique } from './lib/moto.js';

/** The page polls every 3 s; verification may wait ~25 s for IAM. */
const CONNECTED_TIMEOUT_MS = 60_000;

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

test('(4) automatic: template link or its absence explained, then connected by polling', { timeout: 120_000 }, async () => {
  const { context, page } = await openPage(browser);
  await page.addInitScript(() => {
    window.events = [];
    document.addEventListener('connected', (e) => window.events.push(e.detail));
  });
  const account = spotAccount();
  await open(page, server);
  await toPermissions(page, { account, method: 'Automatically' });
  await next(page);
  await waitForStep(page, 'Run IAM template');

  const c = await connectionOf(server, account);
  assert.equal(c.method, 'automatic');
  const run = page.getByRole('button', { name: 'Run IAM Template' });
  const url = c.cloudFormation && c.cloudFormation.quickCreateUrl;
  if (url) {
    assert.equal(await run.getAttribute('aria-disabled'), null);
    const [tab] = await Promise.all([context.waitForEvent('page'), run.click()]);
    assert.equal(tab.url(), url);
    assert.match(url, /^https:\/\/[a-z0-9-]+\.console\.aws\.amazon\.com\/cloudformation\/home\?region=[a-z0-9-]+#\/stacks\/quickcreate\?/);
    await tab.close();
  } else {
    // No link (no template bucket, or a server before the automatic issue): say why.
    assert.equal(await run.getAttribute('aria-disabled'), 'true');
    const reason = (c.cloudFormation && c.cloudFormation.unavailableReason) || 'did not provide a CloudFormation link';
    await page.getByText(`Run IAM Template is not available: ${reason}`, { exact: false }).waitFor();
    assert.match(await run.evaluate((b) => b.getAttribute('aria-describedby')), /template-unavailable/);
    // The template can still be downloaded, for the CloudFormation console.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download template' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^spotinst-iam-stack.*\.json$/);
    const template = JSON.parse(await readFile(await download.path(), 'utf8'));
    assert.ok(template.Resources, 'a CloudFormation template');
  }
  await page.getByText('spotinst-iam-stack', { exact: true }).waitFor();
  await page.getByRole('heading', { name: 'Edit policy option' }).waitFor();
  await audit(page, 'automatic-1-template', { show: run });

  // The stack reporting back, simulated through the manual route.
  const roleArn = await createRole({
    name: unique('spotinst-iam-stack-Role'),
    trust: c.trustPolicy,
    documents: c.policies.map((p) => p.document),
  });
  const answer = await server.api('POST', `/v1/connections/${c.id}/role`, { roleArn });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));

  await page.getByText('Account connected.').waitFor({ timeout: CONNECTED_TIMEOUT_MS });
  const events = await page.evaluate(() => window.events);
  assert.equal(events.length, 1);
  assert.equal(events[0].id, c.id);
  await audit(page, 'automatic-2-connected', { show: page.locator('account-connect-wizard .banner') });
  assertNoConsoleErrors(page);
  await context.close();
});
