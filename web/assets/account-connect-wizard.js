// <account-connect-wizard base-url token account-id>: connects an AWS account
// to Spot through a cross-account IAM role, step by step as Spot's "Connect
// AWS Account" wizard does. Fires `connected` and `failed` (bubbling,
// composed) with the connection as `detail`.

import { Api, newIdempotencyKey } from './api.js';
import { h, fill } from './dom.js';
import { ConnectionsList } from './connections-list.js';
import { startStep, partitionStep, loginStep } from './first-steps.js';
import { permissionsStep } from './permissions-step.js';
import { policyStep, roleStep } from './manual-steps.js';
import { templateStep } from './automatic-step.js';
import { orgLoginStep, organizationStep } from './organization-steps.js';

const ROUTES = {
  manual: ['start', 'partition', 'login', 'permissions', 'policy', 'role'],
  automatic: ['start', 'partition', 'login', 'permissions', 'template'],
  organization: ['start', 'partition', 'orgLogin', 'permissions', 'organization'],
};

const STEPS = {
  start: startStep,
  partition: partitionStep,
  login: loginStep,
  permissions: permissionsStep,
  policy: policyStep,
  role: roleStep,
  template: templateStep,
  orgLogin: orgLoginStep,
  organization: organizationStep,
};

/** IAM's customer managed policy limit, until an answer from the server says otherwise. */
const DEFAULT_SIZE_LIMIT = 6144;

class AccountConnectWizard extends HTMLElement {
  static observedAttributes = ['base-url', 'token'];

  constructor() {
    super();
    this.attachShadow({ mode: 'open' });
    this.run = 0;
    this.catalogs = new Map(); // partition → Promise<catalog>
    this.sizeLimit = DEFAULT_SIZE_LIMIT;
    this.stepEl = h('div', { class: 'step' });
    this.list = new ConnectionsList({
      onResume: (c) => this.resume(c.id, { method: c.method }),
      onRestart: () => this.restart({ focus: true }),
    });
    // Hidden until wizard.css applies: no flash of unstyled steps.
    const body = h('div', { hidden: true },
      h('section', { class: 'wizard', 'aria-labelledby': 'wizard-title' },
        h('h2', { id: 'wizard-title' }, 'Connect an AWS account'),
        this.stepEl),
      this.list.element);
    this.shadowRoot.append(body);
    adoptStyles(this.shadowRoot, new URL('./wizard.css', import.meta.url).href, () => { body.hidden = false; });
  }

  get api() {
    const base = this.getAttribute('base-url') || window.location.origin;
    return new Api(base, this.getAttribute('token') || '');
  }

  connectedCallback() {
    if (!this.started) {
      this.started = true;
      this.restart({ focus: false });
    }
  }

  disconnectedCallback() {
    this.leave();
  }

  attributeChangedCallback(_name, before, after) {
    // A new token or server: the cached catalogs and the list may differ.
    if (this.started && before !== after) {
      this.catalogs.clear();
      this.refreshList();
    }
  }

  /** A fresh wizard run: new Idempotency-Key, nothing chosen yet. */
  restart({ focus, accountId }) {
    this.leave();
    this.run += 1;
    this.idempotencyKey = newIdempotencyKey();
    this.accountId = accountId || this.getAttribute('account-id') || '';
    this.method = null;
    this.awsAccountId = '';
    this.partition = 'aws';
    this.permissions = { mode: 'default' };
    this.connection = null;
    this.organization = null;
    this.organizationalUnitIds = [];
    this.show('start', { focus });
    this.refreshList();
  }

  /** Without a token every request would be refused, so ask nothing until one is set. */
  refreshList() {
    if (this.getAttribute('token')) this.list.refresh(this.api);
  }

  catalog(partition) {
    if (!this.catalogs.has(partition)) {
      const p = this.api.catalog(partition);
      p.catch(() => this.catalogs.delete(partition)); // let a retry ask again
      this.catalogs.set(partition, p);
    }
    return this.catalogs.get(partition);
  }

  /** Display name of a catalog bundle, for the checklist's missing actions. */
  bundleName(id) {
    const cat = this.loadedCatalog;
    if (!cat) return id;
    for (const p of [cat.core, ...cat.products]) {
      if (p.id === id) return p.name;
      const i = (p.integrations || []).find((x) => x.id === id);
      if (i) return `${p.name}: ${i.name}`;
    }
    return id;
  }

  leave() {
    if (this.current && this.current.onLeave) this.current.onLeave();
    this.current = null;
  }

  /** Render step `name`; focus its heading so screen readers announce it. */
  show(name, { focus = true } = {}) {
    this.leave();
    this.step = name;
    this.nextBlocked = false;
    const spec = STEPS[name](this);
    this.current = spec;
    const route = ROUTES[this.method || 'manual'];
    const index = route.indexOf(name);
    const heading = h('h3', { tabindex: '-1' }, spec.title);
    this.errorEl = h('div', { class: 'error', role: 'alert' });
    this.bannerEl = h('div', { class: 'banner-slot', role: 'status' });
    this.backButton = index > 0
      ? h('button', { type: 'button', onclick: () => this.show(route[index - 1]) }, 'Back')
      : null;
    this.nextButton = spec.next
      ? h('button', { type: 'button', class: 'primary', onclick: () => this.next(spec.next.run) }, spec.next.label)
      : null;
    fill(this.stepEl,
      h('p', { class: 'step-count' }, this.method ? `Step ${index + 1} of ${route.length}` : 'Step 1'),
      heading,
      this.bannerEl,
      spec.body,
      this.errorEl,
      this.backButton || this.nextButton ? h('div', { class: 'nav' }, this.backButton, this.nextButton) : null);
    if (spec.onEnter) spec.onEnter();
    if (focus) heading.focus();
  }

  async next(run) {
    this.clearError();
    this.setBusy(true);
    const runId = this.run;
    try {
      await run();
    } catch (e) {
      if (runId === this.run) this.error(e);
    } finally {
      if (runId === this.run) this.setBusy(false);
    }
  }

  /** While a request is out, Back and Next wait for it. */
  setBusy(busy) {
    for (const b of [this.backButton, this.nextButton]) {
      if (b && b.isConnected) b.disabled = busy || (b === this.nextButton && this.nextBlocked);
    }
  }

  /** The permissions step blocks Next while its selection is invalid. */
  blockNext(blocked) {
    this.nextBlocked = blocked;
    if (this.nextButton) this.nextButton.disabled = blocked;
  }

  clearError() {
    if (this.errorEl) fill(this.errorEl);
  }

  /** Show an error's message; `actions` are extra controls (e.g. Continue). */
  error(e, ...actions) {
    const message = e && e.message ? e.message : String(e);
    fill(this.errorEl, h('p', {}, message), actions);
  }

  goManual() {
    this.method = 'manual';
    this.show('policy');
  }

  /**
   * Create the connection, once per wizard run: the Idempotency-Key makes
   * a retry of the same request return the first answer instead of a
   * second connection.
   */
  async createConnection() {
    if (this.connection) return true;
    const body = {
      accountId: this.accountId,
      partition: this.partition,
      permissions: this.permissions,
      method: this.method,
    };
    if (this.awsAccountId) body.awsAccountId = this.awsAccountId;
    try {
      this.connection = await this.api.createConnection(body, this.idempotencyKey);
    } catch (e) {
      if (e.code === 'idempotency_key_reused') {
        // An earlier attempt of this run got through with other choices;
        // a new key makes the server say which connection holds the account.
        this.idempotencyKey = newIdempotencyKey();
        return this.createConnection();
      }
      if (e.code === 'account_has_connection' && e.details && e.details.connectionId) {
        const id = e.details.connectionId;
        this.error(e, h('button', { type: 'button', onclick: () => this.resume(id) }, 'Continue with this connection'));
        return false;
      }
      throw e;
    }
    this.refreshList();
    return true;
  }

  /** Start connecting the organization, once per wizard run. */
  async createOrganization() {
    if (this.organization) return true;
    try {
      this.organization = await this.api.createOrganization({
        accountId: this.accountId,
        partition: this.partition,
        permissions: this.permissions,
        managementAccountId: this.awsAccountId,
        organizationalUnitIds: this.organizationalUnitIds,
      });
    } catch (e) {
      if (e.code === 'account_has_connection' && e.details && e.details.connectionId) {
        const id = e.details.connectionId;
        this.error(e, h('button', { type: 'button', onclick: () => this.resume(id) }, 'Continue with this connection'));
        return false;
      }
      throw e;
    }
    this.refreshList();
    return true;
  }

  /**
   * Carry on with an existing connection: from the list (its own method),
   * or after a 409 (the method chosen in this run).
   */
  async resume(id, { method } = {}) {
    this.clearError();
    let c;
    try {
      c = await this.api.connection(id);
    } catch (e) {
      this.error(e);
      return;
    }
    this.leave();
    this.run += 1;
    this.connection = c;
    this.accountId = c.accountId;
    this.partition = c.partition;
    this.awsAccountId = c.awsAccountId || '';
    this.permissions = c.permissions;
    this.method = method || this.method || c.method;
    // Names for the checklist's missing actions, as the permissions step would have loaded.
    this.catalog(c.partition).then((cat) => { this.loadedCatalog = cat; }, () => {});
    this.show(this.method === 'automatic' ? 'template' : 'policy');
    if (c.status === 'connected') this.connected(c);
  }

  connected(c) {
    this.connection = c;
    if (this.backButton) this.backButton.hidden = true;
    if (this.nextButton) this.nextButton.hidden = true;
    const account = c.roleArn ? c.roleArn.split(':')[4] : c.awsAccountId;
    fill(this.bannerEl, h('div', { class: 'banner success', tabindex: '-1' },
      h('span', { 'aria-hidden': 'true' }, '✓ '),
      h('strong', {}, 'Account connected. '),
      account ? `Your AWS account ${account} is now linked to Spot.` : 'Your AWS account is now linked to Spot.'));
    this.bannerEl.firstChild.focus();
    this.refreshList();
    this.emit('connected', c);
  }

  failed(c) {
    this.connection = c;
    this.refreshList();
    this.emit('failed', c);
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

/**
 * Style the shadow root with wizard.css. When the page has already loaded
 * it (index.html does), share its rules: no second request on the way to
 * the first paint. Otherwise link it; `ready` runs once styles apply.
 */
function adoptStyles(root, href, ready) {
  const loaded = [...document.styleSheets].find((s) => s.href === href);
  if (loaded && 'adoptedStyleSheets' in root) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync([...loaded.cssRules].map((r) => r.cssText).join('\n'));
      root.adoptedStyleSheets = [sheet];
      ready();
      return;
    } catch {
      // fall back to a link of our own
    }
  }
  root.prepend(h('link', { rel: 'stylesheet', href, onload: ready, onerror: ready }));
}

if (!customElements.get('account-connect-wizard')) {
  customElements.define('account-connect-wizard', AccountConnectWizard);
}
