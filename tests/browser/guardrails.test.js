// (7) An organization's guardrails before its members report: once the
// management stack reported its role, "Check guardrails" names every SCP
// and RCP that blocks Spot, with the root, OU or account it is attached
// to. moto holds the organization and its policies (org_stand_in.py
// guardrails); the test plays the management stack's custom resource.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { startServer, ROOT } from './lib/server.js';
import { launch, openPage, audit, assertNoConsoleErrors, waitForStep } from './lib/browser.js';
import { open, next, spotAccount } from './lib/wizard.js';

const BIN = process.env.ACCOUNT_CONNECT_BIN || path.join(ROOT, 'target/debug/account-connect');
const PYTHON = path.join(process.env.ACCOUNT_CONNECT_TEST_VENV || path.join(ROOT, '.venv'), 'bin/python');
const dir = mkdtempSync(path.join(tmpdir(), 'account-connect-org-'));
const env = {
  ...process.env,
  ACCOUNT_CONNECT_STORE: `sqlite://${path.join(dir, 'org.db')}`,
  ACCOUNT_CONNECT_TOPIC_AWS: 'arn:aws:sns:us-east-1:123456789012:spot-connect-callbacks',
  ACCOUNT_CONNECT_CALLBACK_KEY: 'browser-tests-callback-key-0123456789abcdef',
  ACCOUNT_CONNECT_CALLBACK_PROPAGATION_SECS: '5',
  RUST_LOG: 'warn',
  // boto3 reads AWS_DEFAULT_REGION, not AWS_REGION.
  AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION || process.env.AWS_REGION || 'us-east-1',
};

/** org_stand_in.py's JSON answer. */
function standIn(...args) {
  const out = execFileSync(PYTHON, [path.join(ROOT, 'tests/tools/org_stand_in.py'), ...args], { env }).toString();
  return JSON.parse(out.trim().split('\n').pop());
}

/** A callback command's answer to CloudFormation (its last line). */
function callback(...args) {
  const out = execFileSync(BIN, args, { env }).toString();
  return JSON.parse(out.trim().split('\n').pop());
}

let server;
let browser;
before(async () => {
  [server, browser] = await Promise.all([startServer(env), launch()]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('(7) an organization\'s guardrails: each SCP and RCP that blocks Spot, named with its level, before the members report', { timeout: 240_000 }, async () => {
  const mgmt = String(randomInt(100_000_000_000, 999_999_999_999));
  const org = standIn('org', mgmt);
  const account = spotAccount();
  const { context, page } = await openPage(browser);
  await open(page, server);
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

  const { body: list } = await server.api('GET', `/v1/connections?accountId=${account}`);
  const id = list.items[0].organizationId;
  const { body: o } = await server.api('GET', `/v1/organizations/${id}`);
  const { body: template } = await server.api('GET', `/v1/organizations/${id}/template`);
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
