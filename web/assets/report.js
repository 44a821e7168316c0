// The verification report as a checklist: each check's outcome in words
// (and a symbol, never colour alone), its message and how to fix it.

import { h } from './dom.js';

const STATUS_WORDS = {
  passed: ['✓', 'Passed'],
  failed: ['✗', 'Failed'],
  warning: ['!', 'Warning'],
  skipped: ['–', 'Skipped'],
};

const OUTCOME_WORDS = {
  passed: 'Verification passed',
  degraded: 'Verification passed with warnings',
  failed: 'Verification failed',
};

function seconds(ms) {
  return `${Math.round(ms / 100) / 10} s`;
}

/** `bundleName(id)` turns a catalog id into its display name. */
export function renderReport(report, bundleName = (id) => id) {
  const checks = Array.isArray(report.checks) ? report.checks : [];
  return h('section', { class: `report outcome-${report.outcome}`, 'aria-label': 'Verification checks' },
    h('h4', { class: 'report-title', tabindex: '-1' }, OUTCOME_WORDS[report.outcome] || 'Verification result'),
    report.roleArn
      ? h('p', { class: 'meta' }, 'Checked ', h('code', {}, report.roleArn),
        typeof report.durationMs === 'number' ? ` in ${seconds(report.durationMs)}.` : '.')
      : null,
    h('ol', { class: 'checklist' }, checks.map(checkItem(bundleName))));
}

const checkItem = (bundleName) => (check) => {
  const [symbol, word] = STATUS_WORDS[check.status] || ['?', check.status];
  const missing = bundleActions(check.missing, bundleName);
  const conditional = bundleActions(check.conditional, bundleName);
  return h('li', { class: `check status-${check.status}` },
    h('div', { class: 'check-head' },
      h('span', { class: 'badge' }, h('span', { 'aria-hidden': 'true' }, `${symbol} `), word),
      h('strong', { class: 'check-title' }, check.title || check.id)),
    check.message ? h('p', {}, check.message) : null,
    check.remediation ? h('p', { class: 'remediation' }, h('strong', {}, 'How to fix: '), check.remediation) : null,
    check.waitedMs
      ? h('p', { class: 'meta' },
        `Waited ${seconds(check.waitedMs)} for IAM propagation`,
        check.attempts ? ` over ${check.attempts} ${check.attempts === 1 ? 'attempt' : 'attempts'}.` : '.')
      : null,
    missing ? h('div', { class: 'missing' }, h('p', {}, 'Missing actions:'), missing) : null,
    conditional
      ? h('div', { class: 'missing' }, h('p', {}, 'Granted only under conditions, so Spot may not be able to use:'), conditional)
      : null);
};

/** {bundleId: [actions]} as a list per bundle, or null when there are none. */
function bundleActions(map, bundleName) {
  const entries = Object.entries(map || {}).filter(([, actions]) => actions && actions.length);
  if (!entries.length) return null;
  return h('ul', {}, entries.map(([bundle, actions]) => h('li', {},
    `${bundleName(bundle)}: `,
    actions.map((a, i) => [i ? ', ' : '', h('code', {}, a)]))));
}
