// (7) An organization's guardrails before its members report: once the
// management stack reported its role, "Check guardrails" names every SCP
// and RCP that blocks Spot, with the root, OU or account it is attached
// to. moto holds the organization and its policies (org_stand_in.py
// guardrails); the test plays the management stack's custom resource.

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

test('(7) an organization\'s guardrails: each SCP and RCP that blocks Spot, named with its level, before the members report', { timeout: 240_000 }, async () => {
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
  await page.getByLabel('Management account ID').fill(mgmt);
  await page.getByLabel('Organizational units (optional)').fill(org.ous.join(', '));
  await next(page);
  await waitForStep(page, 'Customize or default permissions');
  await page.getByRole('radio', { name: 'Default permissions' }).waitFor();
  await next(page);
  await waitForStep(page, 'Run the management stack');

  // Before the management role reports, there is nothing to read through.
  const check = page.getByRole('button', { name: 'Check guardrails' });
  assert.equal(await check.isDisabled(), true);

  const { body: list } = await h.server.api('GET', `/v1/connections?accountId=${account}`);
  const id = list.items[0].organizationId;
  const { body: o } = await h.server.api('GET', `/v1/organizations/${id}`);
  const { body: template } = await h.server.api('GET', `/v1/organizations/${id}/template`);
  const file = path.join(dir, `${id}.json`);
  writeFileSync(file, JSON.stringify(template));
  const deployed = standIn('deploy', mgmt, file, o.managementConnection.cloudFormation.stackName, org.ous.join(','));
  const mgmtAnswer = callback('stack-callback', '--connection', o.managementConnection.id,
    '--role-arn', deployed.roleArn, '--stack-id', deployed.stackId);
  assert.equal(mgmtAnswer.Status, 'SUCCESS', JSON.stringify(mgmtAnswer));
  await page.getByText(`Management account ${mgmt}: connected.`).waitFor({ timeout: 30_000 });

  const [eng, fin] = org.ous;
  const narrowed = org.accounts[eng][1];
  const g = standIn('guardrails', mgmt, eng, fin, narrowed);
  assert.equal(await check.isDisabled(), false);
  await check.click();
  const found = page.getByRole('list', { name: 'Guardrails that block Spot' });
  await found.waitFor({ timeout: 30_000 });
  const items = await found.getByRole('listitem').allTextContents();
  assert.equal(items.length, 4, items.join('\n'));
  const itemOf = (a) => items.find((i) => i.includes(`Account ${a}`)) || '';
  for (const ou of [eng, fin]) {
    for (const a of org.accounts[ou]) {
      const text = itemOf(a);
      assert.match(text, new RegExp(`cannot assume its role: RCP OrgOnlyAssumeRole \\(${g.policies.OrgOnlyAssumeRole}\\) attached to the root ${org.root} denies sts:AssumeRole`), text);
      if (ou === eng) {
        assert.match(text, new RegExp(`SCP DenyEC2 \\(${g.policies.DenyEC2}\\) attached to the OU ${eng} denies ec2:`), text);
        assert.doesNotMatch(text, /RegionLock/);
      } else {
        assert.match(text, new RegExp(`SCP RegionLock \\(${g.policies.RegionLock}\\) attached to the OU ${fin} denies .* in 35 regions`), text);
        assert.doesNotMatch(text, /DenyEC2/);
      }
      assert.equal(text.includes('SpotAllowList'), a === narrowed, text);
    }
  }
  assert.match(itemOf(narrowed), new RegExp(`SCP SpotAllowList \\(${g.policies.SpotAllowList}\\) attached to the account ${narrowed} allows none of`));
  await audit(page, 'organization-3-guardrails', { show: page.locator('account-connect-wizard .org-guardrails') });
  assertNoConsoleErrors(page);
  await context.close();
});
