// The organization route: the management account and the organizational
// units to connect, then the stack to run in the management account, and
// the member accounts arriving live, with counts and, for every account
// that is not connected, the reason.

import { h, fill, uid, externalLink, CONSOLE_DOMAINS } from './dom.js';

/** How often to ask how the members are doing. */
const POLL_MS = 3000;
/** AWS account ids: exactly 12 digits (the server's rule). */
const AWS_ACCOUNT = /^[0-9]{12}$/;
/** Organizations' OU and root ids (the server's rule). */
const TARGET = /^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$/;

const STATE_WORDS = {
  connected: 'Connected',
  pending: 'Pending',
  missing: 'Missing',
  suspended: 'Suspended',
  moved: 'Moved out',
  left: 'Left the organization',
  disconnected: 'Disconnected',
};

export function orgLoginStep(w) {
  const domain = CONSOLE_DOMAINS[w.partition];
  const accountId = uid('mgmt-account');
  const accountHint = uid('hint');
  const accountError = uid('field-error');
  const account = h('input', {
    id: accountId, name: 'managementAccountId', type: 'text', inputmode: 'numeric', autocomplete: 'off',
    spellcheck: 'false', maxlength: '14', required: true, value: w.awsAccountId || '',
    disabled: Boolean(w.organization), 'aria-describedby': `${accountHint} ${accountError}`,
  });
  const accountFieldError = h('p', { class: 'field-error', id: accountError });
  const ousId = uid('ous');
  const ousHint = uid('hint');
  const ousError = uid('field-error');
  const ous = h('textarea', {
    id: ousId, name: 'organizationalUnitIds', rows: '2', spellcheck: 'false', autocomplete: 'off',
    disabled: Boolean(w.organization), 'aria-describedby': `${ousHint} ${ousError}`,
  });
  ous.value = (w.organizationalUnitIds || []).join(', ');
  const ousFieldError = h('p', { class: 'field-error', id: ousError });
  // A message about a value the customer is changing no longer applies.
  for (const [field, message] of [[account, accountFieldError], [ous, ousFieldError]]) {
    field.addEventListener('input', () => { message.textContent = ''; field.removeAttribute('aria-invalid'); });
  }
  return {
    title: 'Management account',
    body: [
      h('p', {}, 'Log in to your organization\'s ', h('strong', {}, 'management account'),
        ': the stack runs there, creates Spot\'s role in it, and deploys a role to every member account through a StackSet.'),
      h('p', {}, externalLink(`https://${domain}/organizations/v2/home/accounts`, `Open AWS Organizations (${domain})`)),
      h('div', { class: 'field' },
        h('label', { for: accountId }, 'Management account ID'),
        h('p', { class: 'hint', id: accountHint }, 'The 12-digit ID of the organization\'s management account.'),
        account, accountFieldError),
      h('div', { class: 'field' },
        h('label', { for: ousId }, 'Organizational units (optional)'),
        h('p', { class: 'hint', id: ousHint }, 'The IDs of the units whose accounts to connect (ou-…), separated by commas. '
          + 'Leave empty for the whole organization: the stack then asks for the root ID (r-…).'),
        ous, ousFieldError),
    ],
    next: {
      label: 'Next',
      run: () => {
        if (!w.organization) {
          const id = account.value.replace(/[\s-]/g, '');
          const ok = AWS_ACCOUNT.test(id);
          account.setAttribute('aria-invalid', String(!ok));
          accountFieldError.textContent = ok ? '' : 'Enter the management account ID: 12 digits, for example 123456789012.';
          if (!ok) { account.focus(); return; }
          const targets = ous.value.split(/[\s,]+/).filter(Boolean);
          const bad = targets.find((t) => !TARGET.test(t));
          ous.setAttribute('aria-invalid', String(Boolean(bad)));
          ousFieldError.textContent = bad ? `${bad} is not an organizational unit ID (ou-…) or a root ID (r-…).` : '';
          if (bad) { ous.focus(); return; }
          w.awsAccountId = id;
          w.organizationalUnitIds = targets;
        }
        w.show('permissions');
      },
    },
  };
}

export function organizationStep(w) {
  const o = w.organization;
  const mgmt = o.managementConnection;
  const cf = mgmt.cloudFormation || {};
  const url = cf.quickCreateUrl;
  const reasonId = uid('template-unavailable');
  const run = h('button', {
    type: 'button',
    class: 'primary',
    'aria-disabled': url ? null : 'true',
    'aria-describedby': url ? null : reasonId,
    onclick: () => { if (url) window.open(url, '_blank', 'noopener'); },
  }, 'Run management stack');
  const status = h('p', { class: 'poll-status', role: 'status' }, 'Waiting for the management stack to report back.');
  const summary = h('div', { class: 'org-summary' });
  const members = h('div', { class: 'org-members' });
  const sync = h('button', { type: 'button', onclick: () => refresh(true) }, 'Check the organization now');
  const guardrails = h('div', { class: 'org-guardrails', role: 'status' });
  const check = h('button', { type: 'button', onclick: () => preflight() }, 'Check guardrails');
  let timer;
  let stopped = false;

  function render(org) {
    w.organization = org;
    const m = org.managementConnection;
    // The preflight reads through the management role: it needs it connected.
    check.disabled = m.status !== 'connected';
    const counts = org.counts || {};
    const total = (org.members || []).length;
    fill(summary,
      h('p', {}, h('strong', {}, `Management account ${org.managementAccountId}: `),
        m.status === 'connected' ? 'connected.' : `${m.status}, waiting for its stack.`),
      h('ul', { class: 'org-counts', 'aria-label': 'Member accounts by state' },
        Object.keys(STATE_WORDS).filter((s) => counts[s]).map((s) => h('li', { class: `org-count state-${s}` },
          h('span', { class: 'badge' }, String(counts[s])), ` ${STATE_WORDS[s]}`))),
      org.stateReason ? h('p', { class: 'notice' }, org.stateReason) : null,
      org.lastReconciliation && org.lastReconciliation.error
        ? h('p', { class: 'notice' }, `The organization could not be read: ${org.lastReconciliation.error}`) : null);
    if (!total) {
      fill(members, h('p', { class: 'muted' }, 'No member account has reported yet.'));
      return;
    }
    fill(members, h('table', { class: 'org-table' },
      h('caption', {}, `Member accounts (${total})`),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'AWS account'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Reason'))),
      h('tbody', {}, org.members.map((r) => h('tr', { class: `member state-${r.state}` },
        h('td', {}, r.awsAccountId),
        h('td', {}, h('span', { class: 'badge' }, STATE_WORDS[r.state] || r.state)),
        h('td', {}, r.reason || (r.health === 'healthy' ? 'Healthy' : '')))))));
  }

  async function refresh(reconcile) {
    const runId = w.run;
    try {
      const org = reconcile ? await w.api.syncOrganization(o.id) : await w.api.organization(o.id);
      if (stopped || runId !== w.run) return;
      render(org);
      const c = org.counts || {};
      status.textContent = `${c.connected || 0} of ${(org.members || []).length} member accounts connected. `
        + `Last checked at ${new Date().toLocaleTimeString()}.`;
    } catch (e) {
      if (stopped || runId !== w.run) return;
      status.textContent = `Could not check the organization: ${e.message}`;
      if ([401, 403, 404].includes(e.status)) { stopped = true; return; }
    }
  }

  /** What the organization's SCPs and RCPs will block, per account the StackSet reaches. */
  async function preflight() {
    fill(guardrails, h('p', { class: 'muted' }, 'Reading the organization\'s policies…'));
    let p;
    try {
      p = await w.api.organizationPreflight(o.id);
    } catch (e) {
      fill(guardrails, h('p', { class: 'notice' }, `Could not check the guardrails: ${e.message}`));
      return;
    }
    const blocked = p.accounts.filter((a) => a.assumeRole !== 'allowed' || (a.denied || []).length || (a.conditional || []).length);
    if (!blocked.length) {
      fill(guardrails, h('p', {}, `Nothing in the organization's SCPs or RCPs blocks Spot in the ${p.accounts.length} accounts the StackSet reaches.`));
      return;
    }
    fill(guardrails, h('ul', { class: 'guardrail-list', 'aria-label': 'Guardrails that block Spot' },
      blocked.map((a) => h('li', {},
        h('strong', {}, `Account ${a.awsAccountId}: `),
        a.assumeRole === 'allowed' ? null
          : h('p', {}, `Spot ${a.assumeRole === 'denied' ? 'cannot' : 'may not be able to'} assume its role: `,
            (a.assumeRoleBlockedBy || []).map(describeBlock).join('; ')),
        (a.denied || []).map((b) => h('p', {}, describeBlock(b))),
        (a.conditional || []).map((b) => h('p', { class: 'muted' }, `Depending on a value Spot cannot know: ${describeBlock(b)}`))))));
  }

  async function poll() {
    await refresh(false);
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  render(o);
  return {
    title: 'Run the management stack',
    body: [
      h('p', {}, 'One CloudFormation stack in the management account connects the whole organization: '
        + 'Spot\'s role in the management account, and the StackSet ', h('code', {}, o.stackSetName),
        ' that gives every member account its own role and external ID, now and when accounts join later.'),
      h('div', { class: 'actions-row' }, run),
      url ? null : h('div', { class: 'notice', id: reasonId },
        h('p', {}, `Run management stack is not available: ${cf.unavailableReason || 'this server gave no link.'}`),
        h('p', {}, 'Download the template and create the stack with it in the CloudFormation console of the management account.'),
        h('div', { class: 'actions-row' },
          h('button', { type: 'button', onclick: () => download(w, o) }, 'Download template'))),
      h('ol', { class: 'instructions' },
        h('li', {}, 'In AWS Organizations, make sure trusted access for CloudFormation StackSets is enabled.'),
        h('li', {}, 'In the AWS console, mark ', h('q', {}, 'I acknowledge that AWS CloudFormation might create IAM resources with custom names'),
          ' and click ', h('strong', {}, 'Create stack'), '.'),
        h('li', {}, 'The member accounts appear below as their stack instances report back.')),
      h('section', { class: 'org-view', 'aria-labelledby': 'org-members-title' },
        h('div', { class: 'section-head' }, h('h4', { id: 'org-members-title' }, 'Your organization'), sync),
        summary, status, members),
      h('section', { class: 'org-preflight', 'aria-labelledby': 'org-guardrails-title' },
        h('div', { class: 'section-head' }, h('h4', { id: 'org-guardrails-title' }, 'Guardrails (SCPs and RCPs)'), check),
        h('p', { class: 'hint' }, 'Once the management account is connected, Spot reads the service and resource control policies '
          + 'of every account the StackSet reaches and names each one that blocks what Spot needs.'),
        guardrails),
    ],
    onEnter: () => { timer = setTimeout(poll, POLL_MS); },
    onLeave: () => { stopped = true; clearTimeout(timer); },
  };
}

const LEVEL_WORDS = { ROOT: 'the root', ORGANIZATIONAL_UNIT: 'the OU', ACCOUNT: 'the account' };

/** One policy at one level and what it blocks, in a sentence. */
function describeBlock(b) {
  const type = b.policyType === 'RESOURCE_CONTROL_POLICY' ? 'RCP' : 'SCP';
  const policy = b.policyId ? `${type} ${b.policyName} (${b.policyId})` : `No ${type}`;
  const verb = b.kind === 'deny' ? 'denies' : 'allows none of';
  const shown = b.actions.slice(0, 5).join(', ') + (b.actions.length > 5 ? ` and ${b.actions.length - 5} more` : '');
  const where = b.regions && b.regions.length ? ` in ${b.regions.length} regions` : '';
  const when = b.condition ? ` when ${b.condition}` : '';
  return `${policy} attached to ${LEVEL_WORDS[b.targetType] || b.targetType} ${b.targetId} ${verb} ${shown}${where}${when}`;
}

/** Save the management template as a file (the request needs the token). */
async function download(w, o) {
  w.clearError();
  let template;
  try {
    template = await w.api.organizationTemplate(o.id);
  } catch (e) {
    w.error(e);
    return;
  }
  const blob = new Blob([JSON.stringify(template, null, 2)], { type: 'application/json' });
  const href = URL.createObjectURL(blob);
  const a = h('a', { href, download: `${o.managementConnection.cloudFormation.stackName}.json`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
