// The tenant's connections with their status and health in words, a
// Continue button on pending ones, and "Connect another account".

import { h, fill, PARTITION_NAMES } from './dom.js';

const STATUS_WORDS = {
  pending: 'Pending: waiting for the role',
  connected: 'Connected',
  disconnected: 'Disconnected',
  expired: 'Expired: the external ID was not used in time',
};

const HEALTH_WORDS = {
  healthy: 'Healthy',
  degraded: 'Degraded: some permissions are missing',
  broken: 'Broken: Spot cannot use the role',
};

/** The account id is the fifth field of a role ARN. */
function awsAccount(c) {
  return c.awsAccountId || (c.roleArn ? c.roleArn.split(':')[4] : '');
}

export class ConnectionsList {
  /** onResume(connection) continues a pending one; onRestart() starts the wizard over. */
  constructor({ onResume, onRestart }) {
    this.onResume = onResume;
    this.list = h('ul', { class: 'connections-list' });
    this.status = h('p', { class: 'list-status', role: 'status' });
    this.element = h('section', { class: 'connections', 'aria-labelledby': 'connections-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'connections-title' }, 'Your connections'),
        h('button', { type: 'button', onclick: onRestart }, 'Connect another account')),
      this.status,
      this.list);
  }

  async refresh(api) {
    try {
      const page = await api.connections();
      const items = (page && page.items) || [];
      this.status.textContent = items.length ? '' : 'No AWS accounts are connected yet.';
      fill(this.list, items.map((c) => this.item(c)));
    } catch (e) {
      this.status.textContent = `Your connections could not be listed: ${e.message}`;
    }
  }

  item(c) {
    const account = awsAccount(c);
    const role = c.roleArn ? c.roleArn.split('/').pop() : '';
    return h('li', { class: `connection status-${c.status}` },
      h('div', { class: 'connection-head' },
        h('strong', {}, account ? `AWS account ${account}` : 'AWS account not linked yet'),
        h('span', { class: 'muted' }, ` for Spot account ${c.accountId}`)),
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', {}, 'Status'), h('dd', {}, h('span', { class: 'badge' }, STATUS_WORDS[c.status] || c.status))),
        h('div', {}, h('dt', {}, 'Health'), h('dd', {}, c.health ? HEALTH_WORDS[c.health] || c.health : 'Not checked yet')),
        h('div', {}, h('dt', {}, 'Partition'), h('dd', {}, PARTITION_NAMES[c.partition] || c.partition)),
        role ? h('div', {}, h('dt', {}, 'Role'), h('dd', {}, role)) : null,
        h('div', {}, h('dt', {}, 'Method'), h('dd', {}, c.method === 'automatic' ? 'Automatically' : 'Manually')),
        h('div', {}, h('dt', {}, 'Connection'), h('dd', {}, h('code', {}, c.id)))),
      c.status === 'pending'
        ? h('button', {
          type: 'button',
          'aria-label': `Continue connecting for Spot account ${c.accountId}`,
          onclick: () => this.onResume(c),
        }, 'Continue')
        : null);
  }
}
