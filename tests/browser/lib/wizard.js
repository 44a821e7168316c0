// Walking the wizard the way a customer does: by role and accessible name.

import { randomBytes } from 'node:crypto';
import { waitForStep } from './browser.js';

export const PARTITION_LABELS = {
  aws: 'No, a commercial AWS account',
  'aws-us-gov': 'Yes, an AWS GovCloud (US) account',
  'aws-cn': 'Yes, an AWS China account',
};

/** A Spot account id no other test uses (one live connection per account). */
export function spotAccount() {
  return `act-${randomBytes(4).toString('hex')}`;
}

export async function open(page, server) {
  await page.goto(`${server.origin}/#token=${server.token}`);
  await waitForStep(page, 'Choose how to connect');
}

/** moto's account: roles the tests create live there. */
export const AWS_ACCOUNT = '123456789012';

/**
 * Start → partition → login → permissions, stopping on the permissions step.
 * The automatic route needs the AWS account; the manual one takes it when given.
 */
export async function toPermissions(page, {
  account, method = 'Manually', partition = 'aws', awsAccount = method === 'Automatically' ? AWS_ACCOUNT : '',
  onStep = async () => {},
}) {
  await page.getByLabel('Spot account ID').fill(account);
  await onStep('start');
  await page.getByRole('button', { name: method, exact: true }).click();
  await waitForStep(page, 'GovCloud or China account?');
  await page.getByRole('radio', { name: PARTITION_LABELS[partition] }).check();
  await onStep('partition');
  await next(page);
  await waitForStep(page, 'AWS login');
  if (awsAccount) await page.getByLabel(/^AWS account ID/).fill(awsAccount);
  await onStep('login');
  await next(page);
  await waitForStep(page, 'Customize or default permissions');
  // The radios appear once the catalog has loaded.
  await page.getByRole('radio', { name: 'Default permissions' }).waitFor();
}

export function next(page) {
  return page.getByRole('button', { name: 'Next', exact: true }).click();
}

/** Open View JSON and return the JSON text of every document shown. */
export async function viewJson(page) {
  const button = page.getByRole('button', { name: 'View JSON' });
  if ((await button.getAttribute('aria-expanded')) !== 'true') await button.click();
  await page.getByRole('region', { name: /JSON$/ }).first().waitFor();
  return page.getByRole('region', { name: /JSON$/ }).allTextContents();
}

/** The connection the wizard made for `account`, read through the API. */
export async function connectionOf(server, account) {
  const { body } = await server.api('GET', `/v1/connections?accountId=${account}`);
  return body.items[0];
}
