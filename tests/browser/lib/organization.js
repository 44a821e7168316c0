// The set-up the organization tests share: a server on its own SQLite file
// with the callback topic and key set, moto's organization stand-in
// (tests/tools/org_stand_in.py), the binary's callback commands, and a
// browser; started before the file's tests, stopped after them.

import { before, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, ROOT } from './server.js';
import { launch } from './browser.js';

const BIN = process.env.ACCOUNT_CONNECT_BIN || path.join(ROOT, 'target/debug/account-connect');
const PYTHON = path.join(process.env.ACCOUNT_CONNECT_TEST_VENV || path.join(ROOT, '.venv'), 'bin/python');

/** Registers the hooks; `server` and `browser` are set once `before` ran. */
export function organizationHarness() {
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
  const h = {
    dir,
    env,
    server: undefined,
    browser: undefined,
    /** org_stand_in.py's JSON answer. */
    standIn(...args) {
      const out = execFileSync(PYTHON, [path.join(ROOT, 'tests/tools/org_stand_in.py'), ...args], { env }).toString();
      return JSON.parse(out.trim().split('\n').pop());
    },
    /** A callback command's answer to CloudFormation (its last line). */
    callback(...args) {
      const out = execFileSync(BIN, args, { env }).toString();
      return JSON.parse(out.trim().split('\n').pop());
    },
  };
  before(async () => {
    [h.server, h.browser] = await Promise.all([startServer(env), launch()]);
  });
  after(async () => {
    await h.browser?.close();
    await h.server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return h;
}
