// "Customize or default permissions": the choice, the product tree, and
// View JSON with the policy rendered live by POST /v1/policies.

import { h, fill, uid } from './dom.js';
import { PermissionTree, renderPolicies, sizeSummary } from './permissions.js';
import { NO_CUSTOMIZE_NOTE } from './first-steps.js';

/** Wait this long after the last click before asking for a new render. */
const PREVIEW_DEBOUNCE_MS = 250;

/** Server messages written for API clients, reworded for the customer. */
const CUSTOMER_WORDS = {
  empty_selection: 'Select at least one product, or choose Default permissions.',
  custom_permissions_not_allowed: NO_CUSTOMIZE_NOTE,
};

function defaults(catalog) {
  return {
    products: catalog.products.filter((p) => p.default).map((p) => p.id),
    integrations: catalog.products.flatMap((p) => p.integrations.filter((i) => i.default).map((i) => i.id)),
  };
}

export function permissionsStep(w) {
  const c = w.connection;
  const locked = Boolean(c);
  if (locked) w.permissions = c.permissions;
  const body = h('div', { class: 'permissions' }, h('p', { role: 'status' }, 'Loading the products and integrations…'));
  const summary = h('p', { class: 'size-summary', 'aria-live': 'polite' });
  const panelId = uid('json');
  const panel = h('div', { class: 'json-panel', id: panelId, hidden: true });
  const viewJson = h('button', {
    type: 'button', class: 'disclosure', 'aria-expanded': 'false', 'aria-controls': panelId,
    onclick: () => {
      const open = viewJson.getAttribute('aria-expanded') !== 'true';
      viewJson.setAttribute('aria-expanded', String(open));
      panel.hidden = !open;
    },
  }, 'View JSON');
  let timer;
  let inflight;
  let previewFailed = false;
  let custom = w.permissions.mode === 'custom';
  let tree;
  let spec;

  const permissions = () => (custom && tree ? { mode: 'custom', ...tree.selection() } : { mode: 'default' });

  function show(answer) {
    w.sizeLimit = answer.sizeLimit;
    summary.textContent = sizeSummary(answer);
    renderPolicies(panel, answer);
  }

  function preview() {
    clearTimeout(timer);
    w.permissions = permissions();
    if (locked) { show({ policies: c.policies, sizeLimit: w.sizeLimit, totalSize: total(c.policies) }); return; }
    timer = setTimeout(async () => {
      if (inflight) inflight.abort();
      const ctl = new AbortController();
      inflight = ctl;
      try {
        const answer = await w.api.policies(w.partition, w.permissions, ctl.signal);
        if (ctl.signal.aborted || w.current !== spec) return;
        // Clear only an error of our own: not, say, the 409 Next just showed.
        if (previewFailed) w.clearError();
        previewFailed = false;
        w.blockNext(false);
        show(answer);
      } catch (e) {
        if (e.name === 'AbortError' || w.current !== spec) return;
        previewFailed = true;
        w.error({ message: CUSTOMER_WORDS[e.code] || e.message });
        summary.textContent = '';
        fill(panel);
        // Only a refused selection blocks Next; a network hiccup should not.
        w.blockNext(e.status === 422);
      }
    }, PREVIEW_DEBOUNCE_MS);
  }

  function build(catalog) {
    w.loadedCatalog = catalog;
    const initial = w.permissions.mode === 'custom' ? w.permissions : defaults(catalog);
    tree = new PermissionTree(catalog, initial, preview);
    tree.setLocked(locked);
    if (!catalog.customizable) custom = false;
    const treeWrap = h('div', { class: 'tree-wrap', hidden: !custom }, tree.element,
      h('p', { class: 'hint' }, 'If a permission bundle is not selected, the actions under it are not included in the policy JSON.'));
    const noteId = uid('note');
    const name = uid('mode');
    const radio = (mode, label, description, disabled) => {
      const id = uid('radio');
      const descId = uid('desc');
      return h('div', { class: 'radio' },
        h('input', {
          type: 'radio', id, name, value: mode, checked: custom === (mode === 'custom'), disabled: disabled || locked,
          'aria-describedby': disabled ? `${descId} ${noteId}` : descId,
          onchange: () => { custom = mode === 'custom'; treeWrap.hidden = !custom; preview(); },
        }),
        h('label', { for: id }, label),
        h('p', { class: 'desc', id: descId }, description));
    };
    fill(body,
      h('fieldset', {},
        h('legend', {}, 'Permissions'),
        radio('default', 'Default permissions', 'Provides the default IAM policy.'),
        radio('custom', 'Customize permissions', 'Select specific products and integrations you want to enable in your account. '
          + 'Each product or integration contains a list of actions that are required for it to operate in the console.',
        !catalog.customizable)),
      catalog.customizable ? null : h('p', { class: 'note', id: noteId }, h('strong', {}, 'Note: '), NO_CUSTOMIZE_NOTE),
      locked ? lockedNote(w, c) : null,
      treeWrap,
      h('div', { class: 'json-bar' }, summary, viewJson),
      panel);
    preview();
  }

  spec = {
    title: 'Customize or default permissions',
    body: [body],
    next: {
      label: 'Next',
      run: async () => {
        // The pending preview stays: if creating fails, the step still shows it.
        w.permissions = permissions();
        if (w.method === 'organization') {
          if (await w.createOrganization()) w.show('organization');
          return;
        }
        if (await w.createConnection()) w.show(w.method === 'automatic' ? 'template' : 'policy');
      },
    },
    onEnter: () => {
      w.blockNext(false);
      w.catalog(w.partition).then((cat) => { if (w.current === spec) build(cat); }, (e) => {
        if (w.current !== spec) return;
        fill(body, h('p', {}, 'The list of products could not be loaded; you can still continue with the default permissions.'));
        w.error(e);
        custom = false;
        preview();
      });
    },
    onLeave: () => { clearTimeout(timer); if (inflight) inflight.abort(); },
  };
  return spec;
}

function total(policies) {
  return policies.reduce((n, p) => n + p.size, 0);
}

/**
 * After the connection exists its permissions are fixed: say so, and offer
 * to discard a still-pending one (one DELETE; nothing is left half made).
 */
function lockedNote(w, c) {
  const discard = async () => {
    try {
      await w.api.disconnect(c.id);
    } catch (e) {
      w.error(e);
      return;
    }
    w.restart({ focus: true, accountId: c.accountId });
  };
  return h('div', { class: 'notice' },
    h('p', {}, 'The connection was created with these permissions, so they cannot change here. '
      + 'To choose others, discard it and start again.'),
    c.status === 'pending'
      ? h('button', { type: 'button', onclick: discard }, 'Discard this connection and start again')
      : null);
}
