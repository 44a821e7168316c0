// (3) GovCloud: the console link is GovCloud's, customizing is refused with
// the seeds' note, and the policy names only arn:aws-us-gov: resources.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.js';
import { launch, openPage, audit, assertNoConsoleErrors, waitForStep } from './lib/browser.js';
import { open, toPermissions, next, viewJson, spotAccount } from './lib/wizard.js';

const GOV_PRINCIPAL = 'arn:aws-us-gov:iam::123456789012:root';
const NOTE = 'If you are connected to an AWS GovCloud or China account, you will not be able to customize your policy.';

let server;
let browser;
before(async () => {
  server = await startServer({
    ACCOUNT_CONNECT_PRINCIPAL_AWS_US_GOV: GOV_PRINCIPAL,
    // A GovCloud connection needs a vendor identity there (scripts/test's profile).
    ACCOUNT_CONNECT_PROFILE_AWS_US_GOV: process.env.ACCOUNT_CONNECT_TEST_PROFILE_AWS_US_GOV || 'govcloud',
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('(3) GovCloud: default policy only, with the note, and GovCloud ARNs', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser);
  await open(page, server);
  await toPermissions(page, {
    account: spotAccount(),
    partition: 'aws-us-gov',
    onStep: async (step) => {
      if (step === 'login') {
        const link = page.getByRole('link', { name: /Log in to the AWS console/ });
        assert.equal(await link.getAttribute('href'), 'https://console.amazonaws-us-gov.com/');
        assert.equal(await link.getAttribute('target'), '_blank');
      }
    },
  });

  const customize = page.getByRole('radio', { name: 'Customize permissions' });
  assert.equal(await customize.isDisabled(), true);
  assert.equal(await page.getByRole('radio', { name: 'Default permissions' }).isChecked(), true);
  await page.getByText(NOTE).first().waitFor();
  // The note is the disabled option's description, so screen readers hear why.
  assert.match(await customize.evaluate((el) => {
    const root = el.getRootNode();
    return el.getAttribute('aria-describedby').split(' ').map((id) => root.getElementById(id).textContent).join(' ');
  }), /GovCloud or China/);

  const json = (await viewJson(page)).join('\n');
  assert.match(json, /"arn:aws-us-gov:/);
  assert.doesNotMatch(json, /"arn:aws:/);
  await audit(page, 'govcloud-1-permissions', { show: page.getByRole('radio', { name: 'Default permissions' }), narrowShot: true });

  await next(page);
  await waitForStep(page, 'Create IAM policy');
  const iamLink = page.getByRole('link', { name: /Open IAM policies/ });
  assert.match(await iamLink.getAttribute('href'), /^https:\/\/console\.amazonaws-us-gov\.com\/iam\//);
  await next(page);
  await waitForStep(page, 'Create IAM role');
  const vendor = page.locator('account-connect-wizard .copyable').filter({ hasText: 'Account ID' }).locator('code');
  assert.equal((await vendor.textContent()).trim(), '123456789012');
  await page.getByLabel('Role ARN').fill('arn:aws:iam::123456789012:role/Spot-Role');
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  // A commercial ARN for a GovCloud connection is caught before any request.
  await page.getByText(/This role is in AWS \(commercial\), but this connection is for AWS GovCloud \(US\)/).waitFor();
  await audit(page, 'govcloud-2-role-wrong-partition', { show: page.getByLabel('Role ARN') });
  assertNoConsoleErrors(page);
  await context.close();
});

test('(3b) A partition this service cannot connect is said before the customer starts', { timeout: 60_000 }, async () => {
  const { context, page } = await openPage(browser);
  await open(page, server);
  await page.getByLabel('Spot account ID').fill(spotAccount());
  await page.getByRole('button', { name: 'Manually', exact: true }).click();
  await waitForStep(page, 'GovCloud or China account?');
  // China has no vendor principal here (GET /v1/partitions says so).
  await page.getByRole('radio', { name: 'Yes, an AWS China account' }).check();
  const notice = page.getByRole('status').filter({ hasText: /AWS China accounts cannot be connected here yet/ });
  await notice.waitFor();
  await next(page);
  // Next stays on the step: no connection is started for it.
  await waitForStep(page, 'GovCloud or China account?');
  assert.equal(await page.getByRole('heading', { level: 3, name: 'AWS login' }).count(), 0);
  await page.getByRole('radio', { name: 'Yes, an AWS GovCloud (US) account' }).check();
  await notice.waitFor({ state: 'hidden' });
  await next(page);
  await waitForStep(page, 'AWS login');
  assertNoConsoleErrors(page);
  await context.close();
});
