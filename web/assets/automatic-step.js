// The automatic route's last step, worded after Spot's "Connect
// Automatically": Run IAM Template opens CloudFormation's quick-create page,
// and the page polls the connection until the stack has reported back.

import { h, fill } from './dom.js';

/** How often to ask whether the stack has reported back. */
const POLL_MS = 3000;

export function templateStep(w) {
  const c = w.connection;
  const cf = c.cloudFormation || {};
  const url = cf.quickCreateUrl;
  const reasonId = 'template-unavailable';
  const reason = cf.unavailableReason
    || 'this server did not provide a CloudFormation link for this connection.';
  const run = h('button', {
    type: 'button',
    class: 'primary',
    // aria-disabled rather than disabled: the button stays focusable, so
    // keyboard and screen-reader users reach it and hear why it does nothing.
    'aria-disabled': url ? null : 'true',
    'aria-describedby': url ? null : reasonId,
    onclick: () => { if (url) window.open(url, '_blank', 'noopener'); },
  }, 'Run IAM Template');
  const status = h('p', { class: 'poll-status', role: 'status' }, 'Waiting for the stack to report back.');
  let timer;
  let stopped = false;

  async function poll() {
    const runId = w.run;
    try {
      const conn = await w.api.connection(c.id);
      if (stopped || runId !== w.run) return;
      w.connection = conn;
      if (conn.status === 'connected') {
        stopped = true;
        fill(status);
        w.connected(conn);
        return;
      }
      if (conn.status === 'expired' || conn.status === 'disconnected') {
        stopped = true;
        status.textContent = `This connection is ${conn.status}. Click Connect another account to start again.`;
        w.failed(conn);
        return;
      }
      status.textContent = `Waiting for the stack to report back. Last checked at ${new Date().toLocaleTimeString()}.`;
    } catch (e) {
      if (stopped || runId !== w.run) return;
      status.textContent = `Could not check the connection: ${e.message}`;
      // A refused token or a vanished connection will not heal by asking again.
      if ([401, 403, 404].includes(e.status)) { stopped = true; return; }
    }
    timer = setTimeout(poll, POLL_MS);
  }

  return {
    title: 'Run IAM template',
    body: [
      h('p', {}, 'The IAM policy and role are created in your AWS account by a CloudFormation stack. Click ',
        h('strong', {}, 'Run IAM Template'), ' to open it in the AWS console.'),
      h('div', { class: 'actions-row' }, run),
      url ? null : h('div', { class: 'notice', id: reasonId },
        h('p', {}, `Run IAM Template is not available: ${reason}`),
        h('p', {}, 'You can download the template and create the stack with it in the CloudFormation console, '
          + 'or connect this account by creating the policy and role yourself.'),
        h('div', { class: 'actions-row' },
          h('button', { type: 'button', onclick: () => download(w, c) }, 'Download template'),
          h('button', { type: 'button', onclick: () => w.goManual() }, 'Set up the role manually instead'))),
      h('p', {}, 'Then complete the following steps:'),
      h('ol', { class: 'instructions' },
        h('li', {}, 'In the AWS console, under ', h('strong', {}, 'Capabilities'), ', mark ',
          h('q', {}, 'I acknowledge that AWS CloudFormation might create IAM resources'), '.'),
        h('li', {}, 'Click ', h('strong', {}, 'Create stack'), ' and return here.'),
        h('li', {}, 'This step can take a few minutes. When the stack is created, a message appears here.')),
      status,
      h('section', { class: 'help', 'aria-labelledby': 'edit-policy-option' },
        h('h4', { id: 'edit-policy-option' }, 'Edit policy option'),
        h('p', {}, 'In order to edit the policy after the account has been created, you need to update the policy '
          + 'directly in AWS. You can edit the policy after it has been created in the AWS console.'),
        h('ol', {},
          h('li', {}, 'In AWS, go to the IAM dashboard. In the sidebar on the left, click ', h('strong', {}, 'Policies'), '.'),
          h('li', {}, 'Enter the policy you want to edit. You can search for a policy in the search bar. Enter the ',
            h('code', {}, 'spotinst-iam-stack'), ' prefix in the search bar to find your policy.'),
          h('li', {}, 'Select the policy and click ', h('strong', {}, 'Edit'),
            '. You can edit directly in the JSON policy editor.'),
          h('li', {}, 'Click ', h('strong', {}, 'Next'), '. Review the permissions and, if you approve the changes, click ',
            h('strong', {}, 'Save changes'), '.'))),
    ],
    onEnter: () => { timer = setTimeout(poll, POLL_MS); },
    onLeave: () => { stopped = true; clearTimeout(timer); },
  };
}

/** Save the connection's template as a file (the request needs the token, so no plain link). */
async function download(w, c) {
  w.clearError();
  let template;
  try {
    template = await w.api.template(c.id);
  } catch (e) {
    w.error(e);
    return;
  }
  const blob = new Blob([JSON.stringify(template, null, 2)], { type: 'application/json' });
  const href = URL.createObjectURL(blob);
  const name = `${(c.cloudFormation && c.cloudFormation.stackName) || 'spotinst-iam-stack'}.json`;
  const a = h('a', { href, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
