// The manual route's two steps, worded after Spot's "Connect AWS Manually"
// page: create the IAM policy, then the role, then paste its ARN and Connect.
// `w` is the wizard element (connection, api, and the hooks it offers).

import { h, fill, uid, copyButton, externalLink, pretty, CONSOLE_DOMAINS, PARTITION_NAMES } from './dom.js';
import { renderPolicies, policyName } from './permissions.js';
import { renderReport } from './report.js';

/** IAM role ARN (partition, 12-digit account, role path and name). */
const ROLE_ARN = /^arn:(aws|aws-us-gov|aws-cn):iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;

/** The request can take this long while the server waits for IAM to propagate. */
const EXPECTED_WAIT_S = 30;

function iamLink(partition, page, text) {
  return externalLink(`https://${CONSOLE_DOMAINS[partition]}/iam/home#/${page}`, text);
}

function names(c) {
  return c.policies.map((p, i) => policyName(p, i, c.policies.length));
}

/** "Spot-Policy" or "Spot-Policy-1 to Spot-Policy-3". */
function nameRange(list) {
  return list.length > 1 ? `${list[0]} to ${list[list.length - 1]}` : list[0] || 'Spot-Policy';
}

export function policyStep(w) {
  const c = w.connection;
  const list = names(c);
  const several = list.length > 1;
  return {
    title: 'Create IAM policy',
    body: [
      h('p', {}, 'In this step you create the policy that the Spot role will use to manage resources in your AWS account. '
        + 'Complete the steps in this order.'),
      h('ol', { class: 'instructions' },
        h('li', {}, 'In AWS, go to the IAM dashboard. In the sidebar on the left, click ', h('strong', {}, 'Policies'), '. ',
          iamLink(c.partition, 'policies', 'Open IAM policies')),
        h('li', {}, 'In the Policies page that opens, click ', h('strong', {}, 'Create policy'), '.'),
        h('li', {}, 'In the policy editor, click the ', h('strong', {}, 'JSON'), ' tab.'),
        h('li', {}, 'Here, click ', h('strong', {}, 'Copy'), several ? ' on the first policy below.' : ' on the policy below.'),
        h('li', {}, 'Switch back to the JSON tab in AWS, paste the policy over any text that was there, and click ',
          h('strong', {}, 'Next'), '.'),
        h('li', {}, 'In the Review page, enter the name ', h('strong', {}, list[0]), ' for the policy and click ',
          h('strong', {}, 'Create policy'), '.'),
        several
          ? h('li', {}, `Repeat steps 2 to 6 for each of the ${list.length} policies below, naming them `,
            h('strong', {}, nameRange(list)), '.')
          : null,
        h('li', {}, 'Back here, click ', h('strong', {}, 'Next'), '.')),
      renderPolicies(h('div', { class: 'policies' }), { policies: c.policies, sizeLimit: w.sizeLimit }),
    ],
    next: { label: 'Next', run: () => w.show('role') },
  };
}

/** The vendor's account id is the fifth field of its principal ARN. */
function vendorAccount(principal) {
  return (principal || '').split(':')[4] || '';
}

function copyable(label, value) {
  return h('div', { class: 'copyable' },
    h('span', { class: 'copy-label' }, label),
    h('code', { class: 'copy-value' }, value),
    copyButton(label, () => value));
}

export function roleStep(w) {
  const c = w.connection;
  const list = names(c);
  const vendor = vendorAccount(c.principal);
  const inputId = uid('role-arn');
  const hintId = uid('hint');
  const errorId = uid('field-error');
  const input = h('input', {
    id: inputId, name: 'roleArn', type: 'text', autocomplete: 'off', spellcheck: 'false',
    autocapitalize: 'off', inputmode: 'url', required: true,
    placeholder: `arn:${c.partition}:iam::123456789012:role/Spot-Role`,
    'aria-describedby': `${hintId} ${errorId}`,
    value: c.roleArn || '',
  });
  const fieldError = h('p', { class: 'field-error', id: errorId });
  const connect = h('button', { type: 'submit', class: 'primary' }, 'Connect');
  const progress = h('div', { class: 'progress' });
  const result = h('div', { class: 'result' });
  const trust = h('pre', { class: 'json', tabindex: '0', role: 'region', 'aria-label': 'Trust policy JSON' },
    pretty(c.trustPolicy || {}));
  const trustToggle = h('button', {
    type: 'button', class: 'disclosure', 'aria-expanded': 'false', 'aria-controls': uid('trust'),
    onclick: () => {
      const open = trustToggle.getAttribute('aria-expanded') !== 'true';
      trustToggle.setAttribute('aria-expanded', String(open));
      trustBlock.hidden = !open;
    },
  }, 'Trust policy');
  const trustBlock = h('div', { id: trustToggle.getAttribute('aria-controls'), class: 'trust', hidden: true },
    h('p', {}, 'If you create the role from a trust policy instead, use this one.'),
    copyButton('trust policy JSON', () => pretty(c.trustPolicy || {})), trust);

  const form = h('form', {
    class: 'role-form', novalidate: true,
    onsubmit: (e) => { e.preventDefault(); verify(); },
  },
  h('label', { for: inputId }, 'Role ARN'),
  h('p', { class: 'hint', id: hintId }, `For example arn:${c.partition}:iam::123456789012:role/Spot-Role`),
  input, fieldError, connect);

  let done = false;
  // A lost answer may hide a success: look before reporting the error.
  async function connectedAfterAll(wiz, conn, showReport) {
    try {
      const fresh = await wiz.api.connection(conn.id);
      if (fresh.status !== 'connected') return false;
      showReport(fresh.report);
      done = true;
      input.readOnly = true;
      wiz.connected(fresh);
      return true;
    } catch {
      return false;
    }
  }

  async function verify() {
    const arn = input.value.trim();
    const problem = arnProblem(arn, c.partition);
    fieldError.textContent = problem || '';
    input.setAttribute('aria-invalid', String(Boolean(problem)));
    if (problem) { input.focus(); return; }
    w.clearError();
    fill(result);
    connect.disabled = true;
    form.setAttribute('aria-busy', 'true');
    w.setBusy(true); // no Back while the answer is on its way
    const stop = waiting(progress);
    const run = w.run;
    try {
      const conn = await w.api.verifyRole(c.id, arn);
      if (run !== w.run) return;
      show(conn.report);
      if (conn.status === 'connected') {
        done = true;
        input.readOnly = true;
        w.connected(conn);
      } else {
        w.failed(conn);
      }
    } catch (e) {
      if (run !== w.run) return;
      const report = e.details && e.details.report;
      if (e.code === 'verification_failed' && report) {
        show(report, 'Not connected yet: fix what the checklist marks as failed, then click Connect again.');
        w.failed(e.details.connection || c);
      } else if (!(await connectedAfterAll(w, c, show))) {
        w.error(e);
      }
    } finally {
      stop();
      w.setBusy(false);
      connect.disabled = done;
      form.removeAttribute('aria-busy');
    }
  }

  function show(report, note) {
    if (!report) return;
    const rendered = renderReport(report, (id) => w.bundleName(id));
    fill(result, note ? h('p', { class: 'notice' }, note) : null, rendered);
    rendered.querySelector('.report-title').focus();
  }

  return {
    title: 'Create IAM role',
    body: [
      h('p', {}, 'In this step you create an IAM role for Spot and attach the policy you just created. '
        + 'Complete the steps in this order.'),
      h('ol', { class: 'instructions' },
        h('li', {}, 'In the left sidebar of the AWS console, click ', h('strong', {}, 'Roles'), ', then click ',
          h('strong', {}, 'Create role'), '. ', iamLink(c.partition, 'roles', 'Open IAM roles')),
        h('li', {}, 'In the Select trusted entity page, click ', h('strong', {}, 'AWS account'), ', then ',
          h('strong', {}, 'Another AWS account'), '.'),
        h('li', {}, 'Copy the account ID and paste it in the ', h('strong', {}, 'Account ID'), ' field.',
          copyable('Account ID', vendor)),
        h('li', {}, 'Under Options, mark ', h('strong', {}, 'Require External ID'), '.'),
        h('li', {}, 'Copy the external ID and paste it in the ', h('strong', {}, 'External ID'), ' field. Click ',
          h('strong', {}, 'Next'), '.',
          copyable('External ID', c.externalId),
          c.expiresAt && c.status === 'pending'
            ? h('p', { class: 'hint' }, `This external ID is valid until ${new Date(c.expiresAt).toLocaleString()}.`)
            : null),
        h('li', {}, 'In the Add permissions page, mark ', h('strong', {}, nameRange(list)),
          ' (the policy you created in the previous step). Click ', h('strong', {}, 'Next'), '.'),
        h('li', {}, 'In the Name, review, and create page, enter ', h('strong', {}, 'Spot-Role'),
          ' in the Role name field. Click ', h('strong', {}, 'Create role'), '.'),
        h('li', {}, 'On the role\'s Summary page, copy the ARN, paste it below and click ', h('strong', {}, 'Connect'), '.')),
      h('div', { class: 'trust-wrap' }, trustToggle, trustBlock),
      form, progress, result,
    ],
  };
}

/** A sentence saying what is wrong with a pasted ARN, or '' when it looks right. */
export function arnProblem(arn, partition) {
  if (!arn) return 'Paste the ARN of the role you created, from its Summary page in the AWS console.';
  const m = ROLE_ARN.exec(arn);
  if (!m) {
    return `This is not an IAM role ARN. It looks like arn:${partition}:iam::123456789012:role/Spot-Role; `
      + 'copy it from the role\'s Summary page.';
  }
  if (m[1] !== partition) {
    return `This role is in ${PARTITION_NAMES[m[1]]}, but this connection is for ${PARTITION_NAMES[partition]}. `
      + `Use the role you created in your ${PARTITION_NAMES[partition]} account.`;
  }
  return '';
}

/** Live "waiting for IAM propagation" note with an elapsed-seconds counter; returns stop(). */
function waiting(container) {
  const started = performance.now();
  const counter = h('span', { class: 'elapsed' }, '0 s');
  fill(container,
    h('p', { role: 'status', class: 'waiting' },
      h('span', { class: 'spinner', 'aria-hidden': 'true' }),
      `Checking the role. Waiting for IAM propagation: AWS can take up to ${EXPECTED_WAIT_S} seconds `
      + 'to make a new role usable, so this may take a while.'),
    // Outside the status region: a counter that speaks every second would drown the page.
    h('p', { class: 'meta' }, 'Elapsed: ', counter));
  const timer = setInterval(() => {
    counter.textContent = `${Math.round((performance.now() - started) / 1000)} s`;
  }, 1000);
  return () => { clearInterval(timer); fill(container); };
}
