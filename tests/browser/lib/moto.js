// IAM in moto (the AWS stand-in at AWS_ENDPOINT_URL), through the IAM query
// API. Moto routes a request by the service named in the Authorization
// header's credential scope and does not check the signature, so a fixed
// fake one is enough.

import { randomBytes } from 'node:crypto';

const AUTH = 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, '
  + 'SignedHeaders=host, Signature=x';

export function motoEndpoint() {
  const url = process.env.AWS_ENDPOINT_URL;
  if (!url) throw new Error('AWS_ENDPOINT_URL is not set: these tests need moto (scripts/test starts it)');
  return url.replace(/\/+$/, '');
}

async function iam(params) {
  const res = await fetch(`${motoEndpoint()}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: AUTH },
    body: new URLSearchParams({ Version: '2010-05-08', ...params }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`IAM ${params.Action} failed: HTTP ${res.status} ${text.slice(0, 500)}`);
  return text;
}

function tag(xml, name) {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  if (!m) throw new Error(`no <${name}> in ${xml.slice(0, 300)}`);
  return m[1];
}

/** Moto's state outlives a test run, so every name is unique. */
export function unique(prefix) {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Create a role with `trust` and one managed policy per document; returns the role ARN. */
export async function createRole({ name, trust, documents = [] }) {
  const roleXml = await iam({
    Action: 'CreateRole',
    RoleName: name,
    AssumeRolePolicyDocument: JSON.stringify(trust),
  });
  for (const [i, doc] of documents.entries()) {
    const policyXml = await iam({
      Action: 'CreatePolicy',
      PolicyName: `${name}-policy-${i + 1}`,
      PolicyDocument: JSON.stringify(doc),
    });
    await iam({ Action: 'AttachRolePolicy', RoleName: name, PolicyArn: tag(policyXml, 'Arn') });
  }
  return tag(roleXml, 'Arn');
}

/** Create an S3 bucket in moto (path style: PUT /bucket). */
export async function createBucket(name) {
  const res = await fetch(`${motoEndpoint()}/${name}`, {
    method: 'PUT',
    headers: { authorization: AUTH.replace('/iam/', '/s3/') },
  });
  if (!res.ok) throw new Error(`S3 CreateBucket ${name} failed: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
}
