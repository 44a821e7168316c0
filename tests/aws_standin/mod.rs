//! A small AWS stand-in in front of moto, for what moto cannot do: refuse
//! AssumeRole while a role "propagates", throttle, answer
//! SimulatePrincipalPolicy, refuse GetRole, page ListRoles without end, be
//! slow (per action, every call, or for one role's sessions: a hung
//! account), or answer a given number of calls with an error (4xx or 5xx).
//! It speaks STS's and IAM's query/XML wire format (and names the calls of
//! JSON services, such as Organizations, by their X-Amz-Target); every
//! other call goes to moto unchanged. It can also answer as something that
//! is not AWS would: an empty 404, a proxy's HTML 403, a bare 503. It logs every call with the session that signed it,
//! when it arrived and when it was answered (so a test can tell calls made
//! side by side from calls made one after another), and counts the TCP
//! connections it accepts and the calls it holds at once. The verifier's
//! production SDK clients are pointed at it through the Config's endpoint
//! overrides.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// Results per SimulatePrincipalPolicy page at most, below the MaxItems the
/// verifier asks for: IAM may truncate early, and the verifier must page.
const SIMULATE_PAGE: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AccessDenied,
    Throttling,
    /// This answer instead (one that is not AWS's, say).
    Answer(Fault),
}

/// What IAM's simulator answers for one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimAnswer {
    pub decision: &'static str,
    pub allowed_by_organizations: bool,
    pub allowed_by_boundary: bool,
}

impl SimAnswer {
    pub const ALLOWED: SimAnswer = SimAnswer {
        decision: "allowed",
        allowed_by_organizations: true,
        allowed_by_boundary: true,
    };
    /// What IAM answers when an SCP of the organization denies the action.
    pub const DENIED_BY_SCP: SimAnswer = SimAnswer {
        decision: "explicitDeny",
        allowed_by_organizations: false,
        allowed_by_boundary: true,
    };
}

#[derive(Debug, Clone)]
pub enum Simulator {
    /// Forwarded to moto, which lacks the operation.
    Moto,
    /// The role may not call it.
    AccessDenied,
    /// Answers per action (lower case); any other action is allowed.
    Answers(HashMap<String, SimAnswer>),
}

/// One SimulatePrincipalPolicy request as received.
#[derive(Debug, Clone)]
pub struct SimRequest {
    pub policy_source_arn: String,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// The access key it was signed with.
    pub access_key: String,
}

#[derive(Debug)]
pub struct Script {
    /// Per role ARN: refuse its next N AssumeRole calls this way.
    pub refuse_assume: HashMap<String, (Refusal, u32)>,
    /// Per role ARN: AssumeRole calls seen.
    pub assume_calls: HashMap<String, u32>,
    pub simulator: Simulator,
    pub simulate_calls: Vec<SimRequest>,
    pub deny_get_role: bool,
    /// ListRoles answers truncated pages of other roles, forever.
    pub endless_list_roles: bool,
    /// Results per SimulatePrincipalPolicy page; None: SIMULATE_PAGE.
    pub simulate_page: Option<usize>,
    /// Calls seen per Action.
    pub calls: BTreeMap<String, u32>,
    /// Per Action, how long to wait before answering.
    pub delays: HashMap<String, Duration>,
    /// Per role ARN: how long every call signed with a session of that role
    /// waits before its answer (its AssumeRole goes through).
    pub hang_roles: HashMap<String, Duration>,
    /// Access keys AssumeRole handed out for a role in `hang_roles` (kept
    /// by the stand-in; public only so `..Script::default()` works).
    pub hung_keys: HashMap<String, Duration>,
    /// How long every call waits before its answer (beside `delays`), so
    /// calls made side by side overlap at the stand-in.
    pub delay_all: Option<Duration>,
    /// Per Action: answer its next N calls with this error.
    pub errors: HashMap<String, (Fault, u32)>,
    /// While set, every call is answered with this error (an outage).
    pub outage: Option<Fault>,
    /// Every call, in the order they arrived.
    pub log: Vec<Call>,
    /// Per role ARN, the access keys AssumeRole handed out for it, in order.
    pub sessions: HashMap<String, Vec<String>>,
}

/// An error answer: the HTTP status and IAM's or STS's code, in AWS's own
/// error document; or, with another body, an answer that is not AWS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub code: &'static str,
    pub body: FaultBody,
}

/// What an error answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultBody {
    /// AWS's error document with `code`, in the call's protocol (query/XML
    /// for STS and IAM, JSON for a call named by X-Amz-Target).
    Aws,
    /// Nothing at all.
    Empty,
    /// A proxy's or load balancer's HTML page.
    Html,
}

impl Fault {
    pub const INTERNAL: Fault = Fault {
        status: 500,
        code: "InternalFailure",
        body: FaultBody::Aws,
    };
    pub const UNAVAILABLE: Fault = Fault {
        status: 503,
        code: "ServiceUnavailable",
        body: FaultBody::Aws,
    };
    pub const THROTTLING: Fault = Fault {
        status: 400,
        code: "Throttling",
        body: FaultBody::Aws,
    };
    pub const ACCESS_DENIED: Fault = Fault {
        status: 403,
        code: "AccessDenied",
        body: FaultBody::Aws,
    };
    /// A 404 with no body: a wrong route on the way, not AWS.
    pub const EMPTY_404: Fault = Fault {
        status: 404,
        code: "",
        body: FaultBody::Empty,
    };
    /// A proxy refusing the request with its HTML page.
    pub const PROXY_403: Fault = Fault {
        status: 403,
        code: "",
        body: FaultBody::Html,
    };
    /// A load balancer's 503 page.
    pub const PROXY_503: Fault = Fault {
        status: 503,
        code: "",
        body: FaultBody::Html,
    };
    /// Each answer that is not AWS's, and AWS's own 503.
    pub const OUTAGES: [Fault; 4] = [Fault::UNAVAILABLE, Fault::PROXY_503, Fault::EMPTY_404, Fault::PROXY_403];
}

/// One call as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    /// The access key that signed it.
    pub access_key: String,
    /// For AssumeRole, the role asked for.
    pub role_arn: Option<String>,
    /// A JSON-protocol call's request body (what it asked about: the
    /// policy, the target, the child).
    pub json: Option<String>,
    pub arrived: Instant,
    pub answered: Instant,
}

/// The longest chain of calls in which each one arrived only after the one
/// before it was answered: how many round trips, one after another, the
/// calls took (calls made side by side share a level).
pub fn sequential_levels(calls: &[Call]) -> usize {
    let mut sorted: Vec<&Call> = calls.iter().collect();
    sorted.sort_by_key(|c| c.arrived);
    let mut levels: Vec<usize> = Vec::new();
    for (i, c) in sorted.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| sorted[j].answered <= c.arrived)
            .map(|j| levels[j])
            .max()
            .unwrap_or(0);
        levels.push(before + 1);
    }
    levels.into_iter().max().unwrap_or(0)
}

impl Default for Script {
    fn default() -> Self {
        Script {
            refuse_assume: HashMap::new(),
            assume_calls: HashMap::new(),
            simulator: Simulator::Moto,
            simulate_calls: Vec::new(),
            deny_get_role: false,
            endless_list_roles: false,
            simulate_page: None,
            calls: BTreeMap::new(),
            delays: HashMap::new(),
            hang_roles: HashMap::new(),
            hung_keys: HashMap::new(),
            delay_all: None,
            errors: HashMap::new(),
            outage: None,
            log: Vec::new(),
            sessions: HashMap::new(),
        }
    }
}

/// TCP connections accepted, calls in flight and the most at once.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub peak_in_flight: AtomicUsize,
}

#[derive(Clone)]
struct Shared {
    moto: String,
    script: Arc<Mutex<Script>>,
    counters: Arc<Counters>,
    http: reqwest::Client,
}

pub struct StandIn {
    pub url: String,
    pub script: Arc<Mutex<Script>>,
    pub counters: Arc<Counters>,
}

impl StandIn {
    /// Starts on 127.0.0.1 with an OS-chosen port, in front of `moto`.
    pub async fn start(moto: &str, script: Script) -> StandIn {
        use axum::serve::ListenerExt;
        let script = Arc::new(Mutex::new(script));
        let counters = Arc::new(Counters::default());
        let shared = Shared {
            moto: moto.trim_end_matches('/').to_owned(),
            script: script.clone(),
            counters: counters.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = counters.clone();
        let listener = listener.tap_io(move |_| {
            accepted.connections.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        StandIn { url, script, counters }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        f(&mut self.script.lock().unwrap())
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// The most calls it held at once so far.
    pub fn peak_in_flight(&self) -> usize {
        self.counters.peak_in_flight.load(Ordering::SeqCst)
    }

    /// The calls of the last session of `role_arn`: its AssumeRole and every
    /// call signed with the credentials that AssumeRole handed out.
    pub fn last_session(&self, role_arn: &str) -> Vec<Call> {
        self.with(|s| {
            let key = s
                .sessions
                .get(role_arn)
                .and_then(|k| k.last())
                .cloned()
                .unwrap_or_default();
            let assume = s
                .log
                .iter()
                .rposition(|c| c.action == "AssumeRole" && c.role_arn.as_deref() == Some(role_arn));
            s.log
                .iter()
                .enumerate()
                .filter(|(i, c)| Some(*i) == assume || (!key.is_empty() && c.access_key == key))
                .map(|(_, c)| c.clone())
                .collect()
        })
    }
}

/// Counts a call in flight while it lives.
struct InFlight(Arc<Counters>);

impl InFlight {
    fn new(c: &Arc<Counters>) -> Self {
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(c.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The form fields of a query-protocol request.
fn form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `Name.member.N` values in order of N.
fn members(f: &[(String, String)], name: &str) -> Vec<String> {
    let prefix = format!("{name}.member.");
    let mut v: Vec<(u32, String)> = f
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.parse().ok()?, v.clone())))
        .collect();
    v.sort();
    v.into_iter().map(|(_, v)| v).collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn request_id() -> String {
    format!("standin-{}", account_connect::ids::random_token(8))
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml")], body).into_response()
}

/// An error in the query protocol's shape, as STS and IAM send it.
fn error(ns: &str, status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(message),
            request_id()
        ),
    )
}

fn access_key(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// A JSON-protocol call's operation, from its X-Amz-Target (`Service.Operation`).
fn json_target(headers: &HeaderMap) -> Option<String> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    Some(target.rsplit('.').next().unwrap_or(target).to_owned())
}

async fn handle(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let _in_flight = InFlight::new(&s.counters);
    let arrived = Instant::now();
    let f = form(&body);
    let action = json_target(&headers).unwrap_or_else(|| field(&f, "Action").unwrap_or_default().to_owned());
    let key = access_key(&headers);
    let (delay, fault) = {
        let mut script = s.script.lock().unwrap();
        *script.calls.entry(action.clone()).or_default() += 1;
        let hung = script.hung_keys.get(&key).copied();
        let fault = match script.errors.get_mut(&action) {
            Some((fault, n)) if *n > 0 => {
                *n -= 1;
                Some(*fault)
            }
            _ => script.outage,
        };
        let delay = script.delays.get(&action).copied().or(hung);
        (delay.into_iter().chain(script.delay_all).max(), fault)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let role_arn = (action == "AssumeRole").then(|| field(&f, "RoleArn").unwrap_or_default().to_owned());
    let json = headers
        .contains_key("x-amz-target")
        .then(|| String::from_utf8_lossy(&body).into_owned());
    let answer = answer(&s, &action, &f, fault, method, uri, headers, body).await;
    let mut script = s.script.lock().unwrap();
    script.log.push(Call {
        action,
        access_key: key,
        role_arn,
        json,
        arrived,
        answered: Instant::now(),
    });
    answer
}

#[allow(clippy::too_many_arguments)]
async fn answer(
    s: &Shared,
    action: &str,
    f: &[(String, String)],
    fault: Option<Fault>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(fault) = fault {
        return fault_answer(fault, action, headers.contains_key("x-amz-target"));
    }
    let answer = match action {
        "AssumeRole" => assume_role(s, f),
        "SimulatePrincipalPolicy" => simulate(s, f, &headers),
        "GetRole" if s.script.lock().unwrap().deny_get_role => Some(error(
            IAM_NS,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!(
                "User: {} is not authorized to perform: iam:GetRole",
                access_key(&headers)
            ),
        )),
        "ListRoles" if s.script.lock().unwrap().endless_list_roles => Some(endless_list_roles(f)),
        _ => None,
    };
    match answer {
        Some(r) => r,
        None if action == "AssumeRole" => {
            let res = forward(s, method, uri, headers, body).await;
            note_session(s, field(f, "RoleArn").unwrap_or_default(), res).await
        }
        None => forward(s, method, uri, headers, body).await,
    }
}

fn fault_answer(fault: Fault, action: &str, json: bool) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap();
    let message = "the stand-in was told to answer this";
    match fault.body {
        FaultBody::Aws if json => (
            status,
            [
                ("content-type", "application/x-amz-json-1.1".to_owned()),
                ("x-amzn-requestid", request_id()),
            ],
            serde_json::json!({"__type": fault.code, "message": message}).to_string(),
        )
            .into_response(),
        FaultBody::Aws => {
            let ns = if action == "AssumeRole" { STS_NS } else { IAM_NS };
            error(ns, status, fault.code, message)
        }
        FaultBody::Empty => status.into_response(),
        FaultBody::Html => (
            status,
            [("content-type", "text/html")],
            format!(
                "<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} {1}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            ),
        )
            .into_response(),
    }
}

/// Remembers the access key AssumeRole handed out for the role (and, for a
/// role in `hang_roles`, that its calls hang).
async fn note_session(s: &Shared, role: &str, res: Response) -> Response {
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    if let Some(key) = text.split("<AccessKeyId>").nth(1).and_then(|k| k.split('<').next()) {
        let mut script = s.script.lock().unwrap();
        script.sessions.entry(role.to_owned()).or_default().push(key.to_owned());
        if let Some(hang) = script.hang_roles.get(role).copied() {
            script.hung_keys.insert(key.to_owned(), hang);
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn assume_role(s: &Shared, f: &[(String, String)]) -> Option<Response> {
    let role = field(f, "RoleArn").unwrap_or_default().to_owned();
    let mut script = s.script.lock().unwrap();
    *script.assume_calls.entry(role.clone()).or_default() += 1;
    let refusal = match script.refuse_assume.get_mut(&role) {
        Some((r, n)) if *n > 0 => {
            *n -= 1;
            Some(*r)
        }
        _ => None,
    };
    match refusal {
        Some(Refusal::AccessDenied) => Some(error(
            STS_NS,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!("User: arn:aws:iam::922761411349:user/spot is not authorized to perform: sts:AssumeRole on resource: {role}"),
        )),
        Some(Refusal::Throttling) => Some(error(STS_NS, StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded")),
        Some(Refusal::Answer(fault)) => Some(fault_answer(fault, "AssumeRole", false)),
        None => None,
    }
}

fn simulate(s: &Shared, f: &[(String, String)], headers: &HeaderMap) -> Option<Response> {
    let mut script = s.script.lock().unwrap();
    let answers = match &script.simulator {
        Simulator::Moto => return None,
        Simulator::AccessDenied => {
            return Some(error(
                IAM_NS,
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "User is not authorized to perform: iam:SimulatePrincipalPolicy",
            ))
        }
        Simulator::Answers(a) => a.clone(),
    };
    let req = SimRequest {
        policy_source_arn: field(f, "PolicySourceArn").unwrap_or_default().to_owned(),
        actions: members(f, "ActionNames"),
        resources: members(f, "ResourceArns"),
        access_key: access_key(headers),
    };
    if req.actions.is_empty() {
        return Some(error(
            IAM_NS,
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null",
        ));
    }
    let marker = field(f, "Marker").unwrap_or("0");
    let start: usize = match marker.parse() {
        Ok(n) => n,
        Err(_) => return Some(error(IAM_NS, StatusCode::BAD_REQUEST, "InvalidInput", "Invalid Marker")),
    };
    let max: usize = field(f, "MaxItems").and_then(|m| m.parse().ok()).unwrap_or(100);
    let resources = if req.resources.is_empty() {
        vec!["*".to_owned()]
    } else {
        req.resources.clone()
    };
    let all: Vec<(String, String)> = req
        .actions
        .iter()
        .flat_map(|a| resources.iter().map(move |r| (a.clone(), r.clone())))
        .collect();
    let page = script.simulate_page.unwrap_or(SIMULATE_PAGE);
    let end = (start + max.min(page)).min(all.len());
    let mut members_xml = String::new();
    for (a, r) in &all[start.min(end)..end] {
        let ans = answers
            .get(&a.to_ascii_lowercase())
            .copied()
            .unwrap_or(SimAnswer::ALLOWED);
        members_xml.push_str(&format!(
            "<member><EvalActionName>{}</EvalActionName><EvalResourceName>{}</EvalResourceName><EvalDecision>{}</EvalDecision>\
             <MatchedStatements/><MissingContextValues/>\
             <OrganizationsDecisionDetail><AllowedByOrganizations>{}</AllowedByOrganizations></OrganizationsDecisionDetail>\
             <PermissionsBoundaryDecisionDetail><AllowedByPermissionsBoundary>{}</AllowedByPermissionsBoundary></PermissionsBoundaryDecisionDetail>\
             </member>",
            xml_escape(a),
            xml_escape(r),
            ans.decision,
            ans.allowed_by_organizations,
            ans.allowed_by_boundary
        ));
    }
    let truncated = end < all.len();
    let marker_xml = if truncated {
        format!("<Marker>{end}</Marker>")
    } else {
        String::new()
    };
    script.simulate_calls.push(req);
    Some(xml(
        StatusCode::OK,
        format!(
            "<SimulatePrincipalPolicyResponse xmlns=\"{IAM_NS}\"><SimulatePrincipalPolicyResult>\
             <IsTruncated>{truncated}</IsTruncated>{marker_xml}<EvaluationResults>{members_xml}</EvaluationResults>\
             </SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>",
            request_id()
        ),
    ))
}

/// A page of roles that are never the one asked for, always truncated.
fn endless_list_roles(f: &[(String, String)]) -> Response {
    let page: u64 = field(f, "Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
    let path = field(f, "PathPrefix").unwrap_or("/");
    let roles: String = (0..3)
        .map(|i| {
            let name = format!("Other-{page}-{i}");
            format!(
                "<member><Path>{path}</Path><RoleName>{name}</RoleName><RoleId>AROA{page:012}{i:04}</RoleId>\
                 <Arn>arn:aws:iam::123456789012:role{path}{name}</Arn><CreateDate>2024-01-01T00:00:00Z</CreateDate>\
                 <AssumeRolePolicyDocument>%7B%7D</AssumeRolePolicyDocument></member>"
            )
        })
        .collect();
    xml(
        StatusCode::OK,
        format!(
            "<ListRolesResponse xmlns=\"{IAM_NS}\"><ListRolesResult><Roles>{roles}</Roles><IsTruncated>true</IsTruncated>\
             <Marker>{}</Marker></ListRolesResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></ListRolesResponse>",
            page + 1,
            request_id()
        ),
    )
}

/// The request as it came, to moto, and moto's answer back.
async fn forward(s: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = s.http.request(method, format!("{}{path}", s.moto)).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/xml")
        .to_owned();
    let bytes = res.bytes().await.unwrap_or_default();
    (status, [("content-type", ctype)], bytes).into_response()
}
