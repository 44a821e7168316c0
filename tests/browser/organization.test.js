// (6) All accounts of an AWS Organization: the management account and its
// OUs, the stack to run, then the members arriving live with counts and the
// reason for every one not connected. moto holds the organization and the
// StackSet's roles; the test plays CloudFormation's custom resources through
// the binary's stack-callback and org-callback commands, on the server's store.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { organizationHarness } from './lib/organization.js';
import { openPage, audit, assertNoConsoleErrors, waitForStep } from './lib/browser.js';
import { open, next, spotAccount } from './lib/wizard.js';

const h = organizationHarness();
const { dir, standIn, callback } = h;

test('(6) an organization: the management stack, then every member with its state and reason', { timeout: 240_000 }, async () => {
  const mgmt = String(randomInt(100_000_000_000, 999_999_999_999));
  const org = standIn('org', mgmt);
  const account = spotAccount();
  const { context, page } = await openPage(h.browser);
  await open(page, h.server);
  await page.getByLabel('Spot account ID').fill(account);
  await page.getByRole('button', { name: 'All accounts of an AWS Organization' }).click();
  await waitForStep(page, 'GovCloud or China account?');
  await next(page);
  await waitForStep(page, 'Management account');
  await next(page);
  assert.match(await page.getByText(/Enter the management account ID/).textContent(), /12 digits/);
  await page.getByLabel('Management account ID').fill(mgmt);
  await page.getByLabel('Organizational units (optional)').fill('not-an-ou');
  await next(page);
  await page.getByText('not-an-ou is not an organizational unit ID').waitFor();
  await page.getByLabel('Organizational units (optional)').fill(org.ous.join(', '));
  await audit(page, 'organization-1-management-account');
  await next(page);
  await waitForStep(page, 'Customize or default permissions');
  await page.getByRole('radio', { name: 'Default permissions' }).waitFor();
  await next(page);
  await waitForStep(page, 'Run the management stack');
  await page.getByText('No member account has reported yet.').waitFor();

  // The organization the page made, and its stack, in moto.
  const { body: list } = await h.server.api('GET', `/v1/connections?accountId=${account}`);
  const id = list.items[0].organizationId;
  assert.ok(id, JSON.stringify(list));
  const { body: o } = await h.server.api('GET', `/v1/organizations/${id}`);
  assert.equal(o.managementAccountId, mgmt);
  assert.deepEqual(o.organizationalUnitIds, [...org.ous].sort());
  const { body: template } = await h.server.api('GET', `/v1/organizations/${id}/template`);
  const file = path.join(dir, `${id}.json`);
  writeFileSync(file, JSON.stringify(template));
  const stackName = o.managementConnection.cloudFormation.stackName;
  const deployed = standIn('deploy', mgmt, file, stackName, org.ous.join(','));
  const mgmtAnswer = callback('stack-callback', '--connection', o.managementConnection.id,
    '--role-arn', deployed.roleArn, '--stack-id', deployed.stackId);
  assert.equal(mgmtAnswer.Status, 'SUCCESS', JSON.stringify(mgmtAnswer));
  await page.getByText(`Management account ${mgmt}: connected.`).waitFor({ timeout: 30_000 });

  // Three members connect; one instance enrolls but its role never reports.
  const [first, second, third, fourth] = deployed.instances;
  for (const member of [first, second, third, fourth]) {
    // The StackId the StackSet reports for the account: Spot takes a
    // member's requests only from its own stack instance.
    const stack = standIn('instance', mgmt, deployed.stackSetName, member, 'us-east-1').stackId;
    const enrolled = callback('org-callback', '--organization', id, '--resource', 'enroll', '--stack-id', stack);
    assert.equal(enrolled.Status, 'SUCCESS', JSON.stringify(enrolled));
    if (member === fourth) continue;
    standIn('trust', member, deployed.memberRoleName, o.managementConnection.principal, enrolled.Data.ExternalId);
    const linked = callback('org-callback', '--organization', id, '--resource', 'link', '--stack-id', stack,
      '--role-arn', `arn:aws:iam::${member}:role/${deployed.memberRoleName}`);
    assert.equal(linked.Status, 'SUCCESS', JSON.stringify(linked));
  }
  // An account joins an OU and no instance reports: reconciliation finds it.
  const late = standIn('add-account', mgmt, org.ous[0], 'late').account;
  await page.getByRole('table', { name: /Member accounts \(4\)/ }).waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Check the organization now' }).click();
  const table = page.getByRole('table', { name: /Member accounts \(5\)/ });
  await table.waitFor({ timeout: 30_000 });
  const rows = await table.getByRole('row').allTextContents();
  const rowOf = (a) => rows.find((r) => r.includes(a)) || '';
  for (const a of [first, second, third]) assert.match(rowOf(a), /Connected/);
  assert.match(rowOf(fourth), /Pending.*waiting for the instance to report its role/);
  assert.match(rowOf(late), /Missing.*No stack instance has connected this account/);
  const counts = await page.getByRole('list', { name: 'Member accounts by state' }).textContent();
  assert.match(counts, /3 Connected/);
  assert.match(counts, /1 Pending/);
  assert.match(counts, /1 Missing/);
  await audit(page, 'organization-2-members', { show: page.locator('account-connect-wizard .org-view') });
  assertNoConsoleErrors(page);
  await context.close();
});
