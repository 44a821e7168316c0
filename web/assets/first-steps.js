// The wizard's first three steps, worded after Spot's "Connect AWS
// Account": which Spot account and Manually or Automatically; GovCloud or
// China account?; AWS login.

import { h, uid, externalLink, CONSOLE_DOMAINS } from './dom.js';

/** Spot account ids: "act-" then letters and digits (the server's rule). */
const SPOT_ACCOUNT = /^act-[A-Za-z0-9]{1,60}$/;

/** The seeds' note, shown wherever customizing is refused. */
export const NO_CUSTOMIZE_NOTE = 'If you are connected to an AWS GovCloud or China account, '
  + 'you will not be able to customize your policy.';

export function startStep(w) {
  const inputId = uid('spot-account');
  const hintId = uid('hint');
  const errorId = uid('field-error');
  const input = h('input', {
    id: inputId, name: 'accountId', type: 'text', autocomplete: 'off', spellcheck: 'false',
    autocapitalize: 'off', required: true, value: w.accountId, 'aria-describedby': `${hintId} ${errorId}`,
  });
  const fieldError = h('p', { class: 'field-error', id: errorId });

  const choose = (method) => {
    const id = input.value.trim();
    const ok = SPOT_ACCOUNT.test(id);
    input.setAttribute('aria-invalid', String(!ok));
    fieldError.textContent = ok ? ''
      : 'Enter your Spot account ID: "act-" followed by letters and digits, for example act-12345678.';
    if (!ok) { input.focus(); return; }
    w.accountId = id;
    w.method = method;
    w.show('partition');
  };

  const option = (method, label, description) => {
    const descId = uid('desc');
    return h('div', { class: 'choice' },
      h('button', { type: 'button', class: 'choice-button', 'aria-describedby': descId, onclick: () => choose(method) },
        label),
      h('p', { class: 'desc', id: descId }, description));
  };

  return {
    title: 'Choose how to connect',
    body: [
      h('div', { class: 'field' },
        h('label', { for: inputId }, 'Spot account ID'),
        h('p', { class: 'hint', id: hintId }, 'The Spot account to connect, for example act-12345678.'),
        input, fieldError),
      h('p', {}, 'How do you want to connect your AWS account?'),
      h('div', { class: 'choices' },
        option('manual', 'Manually', 'Create the IAM policy and role yourself in the AWS console, then paste the role\'s ARN here.'),
        option('automatic', 'Automatically', 'Run a CloudFormation template that creates the IAM policy and role for you.'),
        option('organization', 'All accounts of an AWS Organization',
          'Run one stack in the management account; a StackSet connects every member account, and new ones as they join.')),
    ],
  };
}

const PARTITIONS = [
  ['aws', 'No, a commercial AWS account'],
  ['aws-us-gov', 'Yes, an AWS GovCloud (US) account'],
  ['aws-cn', 'Yes, an AWS China account'],
];

/** What this service says of a partition (GET /v1/partitions), for the step. */
function partitionNotice(info, method) {
  if (!info) return '';
  if (!info.available) return info.unavailableReason || '';
  if (method === 'automatic' && !info.automatic) return info.automaticNote || '';
  return '';
}

export function partitionStep(w) {
  const name = uid('partition');
  const notice = h('p', { class: 'note', role: 'status', hidden: true });
  let infos = null;
  const info = () => infos && infos.find((i) => i.partition === w.partition);
  const showNotice = () => {
    const text = partitionNotice(info(), w.method);
    notice.textContent = text;
    notice.hidden = !text;
  };
  // Said before the customer starts: a partition the service cannot connect,
  // or whose stacks cannot report back here.
  if (w.api.partitions) {
    w.api.partitions().then((list) => { infos = list.items; showNotice(); }, () => {});
  }
  const radios = PARTITIONS.map(([value, label]) => {
    const id = uid('radio');
    return h('div', { class: 'radio' },
      h('input', {
        type: 'radio', id, name, value, checked: w.partition === value,
        // The connection, once made, is for one partition.
        disabled: Boolean(w.connection),
        onchange: () => { w.partition = value; showNotice(); },
      }),
      h('label', { for: id }, label));
  });
  return {
    title: 'GovCloud or China account?',
    body: [
      h('fieldset', {},
        h('legend', {}, 'Is the AWS account you are connecting a GovCloud or China account?'),
        radios),
      notice,
      h('p', { class: 'note' }, h('strong', {}, 'Note: '), NO_CUSTOMIZE_NOTE),
    ],
    next: {
      label: 'Next',
      run: () => {
        const chosen = info();
        if (chosen && !chosen.available) {
          showNotice();
          return;
        }
        if (w.partition !== 'aws') w.permissions = { mode: 'default' };
        w.catalog(w.partition); // fetch now, so the permissions step opens at once
        w.show(w.method === 'organization' ? 'orgLogin' : 'login');
      },
    },
  };
}

/** AWS account ids: exactly 12 digits (the server's rule). */
const AWS_ACCOUNT = /^[0-9]{12}$/;

export function loginStep(w) {
  const domain = CONSOLE_DOMAINS[w.partition];
  // An automatic connection's template only works in the account it was
  // made for, so that route needs the account; the manual one uses it to
  // check the role.
  const required = w.method === 'automatic';
  const inputId = uid('aws-account');
  const hintId = uid('hint');
  const errorId = uid('field-error');
  const input = h('input', {
    id: inputId, name: 'awsAccountId', type: 'text', inputmode: 'numeric', autocomplete: 'off',
    spellcheck: 'false', maxlength: '14', required, value: w.awsAccountId || '',
    // The connection, once made, is for one account.
    disabled: Boolean(w.connection), 'aria-describedby': `${hintId} ${errorId}`,
  });
  const fieldError = h('p', { class: 'field-error', id: errorId });
  return {
    title: 'AWS login',
    body: [
      h('p', {}, 'Log in to the AWS account that you want to connect to your Spot account, then click ',
        h('strong', {}, 'Next'), '.'),
      h('p', {}, externalLink(`https://${domain}/`, `Log in to the AWS console (${domain})`)),
      h('div', { class: 'field' },
        h('label', { for: inputId }, required ? 'AWS account ID' : 'AWS account ID (optional)'),
        h('p', { class: 'hint', id: hintId }, 'The 12-digit ID of the account you are logged in to: '
          + 'in the AWS console, open the account menu at the top right. '
          + (required ? 'The template works only in this account.' : 'Spot then checks that the role is in this account.')),
        input, fieldError),
    ],
    next: {
      label: 'Next',
      run: () => {
        if (!w.connection) {
          const id = input.value.replace(/[\s-]/g, '');
          const ok = AWS_ACCOUNT.test(id) || (!required && id === '');
          input.setAttribute('aria-invalid', String(!ok));
          fieldError.textContent = ok ? ''
            : 'Enter the AWS account ID: 12 digits, for example 123456789012.';
          if (!ok) { input.focus(); return; }
          w.awsAccountId = id;
        }
        w.show('permissions');
      },
    },
  };
}
