// (4) Automatic route: Run IAM Template opens the quick-create link, or the
// page says why there is none (and offers the template as a download); the
// page turns to connected by itself once the connection is connected. The
// test connects it through POST /v1/connections/{id}/role, standing in for
// the stack reporting back.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startServer } from './lib/server.js';
import { launch, openPage, audit, assertNoConsoleErrors, waitForStep } from './lib/browser.js';
import { open, toPermissions, next, spotAccount, connectionOf, PARTITION_LABELS, AWS_ACCOUNT } from './lib/wizard.js';
import { createBucket, createRole, unique } from './lib/moto.js';

/** The page polls every 3 s; verification may wait ~25 s for IAM. */
const CONNECTED_TIMEOUT_MS = 60_000;

let plain; // no template bucket: no link
let linked; // bucket, topic and callback key: a quick-create link
let browser;
before(async () => {
  const bucket = unique('spot-templates');
  await createBucket(bucket);
  [plain, linked, browser] = await Promise.all([
    startServer(),
    startServer({
      ACCOUNT_CONNECT_TEMPLATE_BUCKET: bucket,
      ACCOUNT_CONNECT_TOPIC_AWS: 'arn:aws:sns:us-east-1:123456789012:spot-connect-callbacks',
      ACCOUNT_CONNECT_CALLBACK_KEY: 'browser-tests-callback-key-0123456789abcdef',
    }),
    launch(),
  ]);
});
after(async () => {
  await browser?.close();
  await plain?.stop();
  await linked?.stop();
});

/** Walk to "Run IAM template"; returns the connection the page made. */
async function toTemplate(page, server) {
  const account = spotAccount();
  await open(page, server);
  await toPermissions(page, { account, method: 'Automatically' });
  await next(page);
  await waitForStep(page, 'Run IAM template');
  await page.getByText('spotinst-iam-stack', { exact: true }).waitFor();
  await page.getByRole('heading', { name: 'Edit policy option' }).waitFor();
  const c = await connectionOf(server, account);
  assert.equal(c.method, 'automatic');
  assert.equal(c.awsAccountId, AWS_ACCOUNT, 'the account entered at AWS login');
  return c;
}

/** Connect it as the stack would, and see the page turn to connected by itself. */
async function reportBack(page, server, c, label) {
  const roleArn = await createRole({
    name: unique('spotinst-iam-stack-Role'),
    trust: c.trustPolicy,
    documents: c.policies.map((p) => p.document),
  });
  const answer = await server.api('POST', `/v1/connections/${c.id}/role`, { roleArn });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  await page.getByText('Account connected.').waitFor({ timeout: CONNECTED_TIMEOUT_MS });
  const events = await page.evaluate(() => window.events);
  assert.deepEqual(events.map((e) => e.id), [c.id], 'one connected event, for this connection');
  await audit(page, label, { show: page.locator('account-connect-wizard .banner') });
}

async function openWithEvents() {
  const { context, page } = await openPage(browser);
  await page.addInitScript(() => {
    window.events = [];
    document.addEventListener('connected', (e) => window.events.push(e.detail));
  });
  return { context, page };
}

test('(4a) automatic without a template bucket: says why there is no link, offers the template, connects', { timeout: 120_000 }, async () => {
  const { context, page } = await openWithEvents();
  const c = await toTemplate(page, plain);
  assert.ok(c.cloudFormation && c.cloudFormation.unavailableReason, 'the server says why there is no link');
  const run = page.getByRole('button', { name: 'Run IAM Template' });
  assert.equal(await run.getAttribute('aria-disabled'), 'true');
  await page.getByText(`Run IAM Template is not available: ${c.cloudFormation.unavailableReason}`).waitFor();
  assert.match(await run.getAttribute('aria-describedby'), /template-unavailable/);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download template' }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `${c.cloudFormation.stackName}.json`);
  const template = JSON.parse(await readFile(await download.path(), 'utf8'));
  assert.ok(template.Resources, 'a CloudFormation template');
  await audit(page, 'automatic-1-no-template-link', { show: run, narrowShot: true });
  await reportBack(page, plain, c, 'automatic-2-connected');
  assertNoConsoleErrors(page);
  await context.close();
});

test('(4b) automatic with a template bucket: Run IAM Template opens the quick-create link, then connects', { timeout: 120_000 }, async () => {
  const { context, page } = await openWithEvents();
  // The console is out of reach here: answer for it, so the new tab loads.
  await context.route('https://*.console.aws.amazon.com/**', (route) => route.fulfill({
    contentType: 'text/html', body: '<!doctype html><title>CloudFormation</title>',
  }));
  const c = await toTemplate(page, linked);
  const url = c.cloudFormation && c.cloudFormation.quickCreateUrl;
  assert.ok(url, `a quick-create link (${JSON.stringify(c.cloudFormation)})`);
  assert.match(url, /^https:\/\/[a-z0-9-]+\.console\.aws\.amazon\.com\/cloudformation\/home\?region=[a-z0-9-]+#\/stacks\/quickcreate\?templateURL=/);
  const run = page.getByRole('button', { name: 'Run IAM Template' });
  assert.equal(await run.getAttribute('aria-disabled'), null);
  assert.equal(await page.getByRole('button', { name: 'Download template' }).count(), 0);
  await audit(page, 'automatic-3-template-link', { show: run });
  const [tab] = await Promise.all([context.waitForEvent('page'), run.click()]);
  await tab.waitForLoadState();
  assert.equal(tab.url(), url);
  await tab.close();
  await reportBack(page, linked, c, 'automatic-4-connected');
  assertNoConsoleErrors(page);
  await context.close();
});

test('(4c) automatic: the AWS login step asks for the account the stack will run in', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser);
  await open(page, plain);
  await page.getByLabel('Spot account ID').fill(spotAccount());
  await page.getByRole('button', { name: 'Automatically', exact: true }).click();
  await waitForStep(page, 'GovCloud or China account?');
  await page.getByRole('radio', { name: PARTITION_LABELS.aws }).check();
  await next(page);
  await waitForStep(page, 'AWS login');
  const field = page.getByLabel('AWS account ID', { exact: true });
  assert.equal(await field.getAttribute('required'), '');
  for (const bad of ['', '12345', '12345678901a']) {
    await field.fill(bad);
    await next(page);
    await page.getByText('Enter the AWS account ID: 12 digits').waitFor();
    assert.equal(await field.getAttribute('aria-invalid'), 'true');
    await waitForStep(page, 'AWS login');
  }
  await audit(page, 'automatic-0-aws-account-required', { show: field });
  await field.fill('1234-5678-9012');
  await next(page);
  await waitForStep(page, 'Customize or default permissions');
  assertNoConsoleErrors(page);
  await context.close();
});
