"""IAM's SimulatePrincipalPolicy for the re-check benchmark, which moto lacks
(it answers a 500 with a traceback, burning its CPU).

Speaks the operation's query/XML wire format: ActionNames.member.N,
ResourceArns.member.N, MaxItems and Marker, one result per action and
resource, paged at MaxItems as IAM pages. Every result is "allowed": what IAM
answers for the benchmark's roles, which carry exactly the policies the
service rendered for them. The verifier still reads and evaluates those
policies itself; this is its second opinion.
"""

import urllib.parse
import uuid
from xml.sax.saxutils import escape

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
MAX_ITEMS = 1000  # the API's maximum


def is_simulate(body):
    return b"Action=SimulatePrincipalPolicy" in body


def _members(form, name):
    prefix = name + ".member."
    items = sorted((int(k[len(prefix):]), v[0]) for k, v in form.items() if k.startswith(prefix))
    return [v for _, v in items]


def _error(code, message, status=400):
    body = (f'<ErrorResponse xmlns="{IAM_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return status, body.encode()


def answer(body):
    """(status, XML bytes) for one SimulatePrincipalPolicy request body."""
    form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
    actions = _members(form, "ActionNames")
    if not actions:
        return _error("ValidationError", "1 validation error detected: Value null at 'actionNames' "
                      "failed to satisfy constraint: Member must not be null")
    if not form.get("PolicySourceArn"):
        return _error("ValidationError", "PolicySourceArn is required")
    resources = _members(form, "ResourceArns") or ["*"]
    try:
        start = int(form.get("Marker", ["0"])[0])
        size = min(int(form.get("MaxItems", ["100"])[0]), MAX_ITEMS)
    except ValueError:
        return _error("InvalidInput", "Invalid Marker or MaxItems")
    every = [(a, r) for a in actions for r in resources]
    page = every[start:start + size]
    end = start + len(page)
    members = "".join(
        f"<member><EvalActionName>{escape(a)}</EvalActionName><EvalResourceName>{escape(r)}</EvalResourceName>"
        "<EvalDecision>allowed</EvalDecision><MatchedStatements/><MissingContextValues/>"
        "<OrganizationsDecisionDetail><AllowedByOrganizations>true</AllowedByOrganizations></OrganizationsDecisionDetail>"
        "</member>"
        for a, r in page)
    truncated = end < len(every)
    marker = f"<Marker>{end}</Marker>" if truncated else ""
    xml = (f'<SimulatePrincipalPolicyResponse xmlns="{IAM_NS}"><SimulatePrincipalPolicyResult>'
           f"<IsTruncated>{str(truncated).lower()}</IsTruncated>{marker}<EvaluationResults>{members}</EvaluationResults>"
           f"</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
           "</ResponseMetadata></SimulatePrincipalPolicyResponse>")
    return 200, xml.encode()
