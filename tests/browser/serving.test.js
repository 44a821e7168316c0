// The binary serves every file under web/ byte for byte, with its content
// type and the security headers. A file added to web/assets/ but not to
// the allowlist in src/api/web.rs fails here (the other tests still run,
// from a front server; see lib/server.js).

import { test, before, after } from 'node:test';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startServer, webFiles, WEB } from './lib/server.js';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

test('the binary serves web/ as it is on disk', () => {
  assert.deepEqual(server.webProblems, [], `files under web/ are not served as they are (${webFiles().length} files)`);
});

test('the page and its assets carry a strict Content-Security-Policy', async () => {
  for (const [urlPath] of webFiles()) {
    const res = await fetch(`${server.apiOrigin}${urlPath}`);
    if (res.status !== 200) continue; // reported by the test above
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'/, `${urlPath} CSP`);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${urlPath} CSP`);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', urlPath);
  }
});

test('index.html preloads every module, so none waits for its importer', () => {
  const html = readFileSync(path.join(WEB, 'index.html'), 'utf8');
  const modules = webFiles().map(([p]) => p).filter((p) => p.endsWith('.js') && p !== '/assets/page.js');
  const missing = modules.filter((p) => !html.includes(`<link rel="modulepreload" href="${p.slice(1)}">`));
  assert.deepEqual(missing, []);
});

