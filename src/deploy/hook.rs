//! CodeDeploy's pre-traffic hook (`PreTrafficHookFunction`): before any
//! traffic shifts to the new versions, it invokes each of them directly
//! (not through the alias, which still points at the old ones) and reports
//! Succeeded only when every check passed, Failed otherwise, so CodeDeploy
//! stops the deployment and the alias stays where it was.
//!
//! - the API's new version: `GET /health` (200) and one read against the
//!   table, `GET /v1/connections/<an id no one has>` (404: the table
//!   answered), both as API Gateway's HTTP API events;
//! - the callback's and the dispatcher's: the probe event (`probe`), which
//!   they answer after one read against the table.

use super::probe;
use crate::config::PreTrafficConfig;
use crate::domain::ConnectionId;
use crate::sdk::signed::Signer;
use aws_config::SdkConfig;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// Each invocation's budget: the API function's own timeout is 29 s.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(35);
const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What CodeDeploy hands a lifecycle hook.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HookEvent {
    deployment_id: String,
    lifecycle_event_hook_execution_id: String,
}

/// One check of one new version.
#[derive(Debug, Serialize)]
pub struct Check {
    pub version: String,
    pub what: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("not a CodeDeploy lifecycle hook event: {0}")]
    Event(String),
    /// CodeDeploy was not told: it fails the deployment when the hook's
    /// time runs out (or the invocation's error is retried).
    #[error("could not report {status} to CodeDeploy: {why}")]
    Report { status: &'static str, why: String },
}

#[derive(Clone)]
pub struct PreTrafficHook {
    config: PreTrafficConfig,
    signer: Signer,
}

impl PreTrafficHook {
    pub fn new(config: PreTrafficConfig, aws: SdkConfig) -> Self {
        PreTrafficHook {
            config,
            signer: Signer::new(aws),
        }
    }

    /// Runs the checks and reports their verdict to CodeDeploy; answers
    /// the verdict and each check (the hook's log says the same).
    pub async fn handle(&self, event: Value) -> Result<Value, HookError> {
        let event: HookEvent = serde_json::from_value(event).map_err(|e| HookError::Event(e.to_string()))?;
        let checks = self.checks().await;
        let passed = checks.iter().all(|c| c.passed);
        for c in &checks {
            if c.passed {
                tracing::info!(version = %c.version, check = %c.what, "pre-traffic check passed");
            } else {
                tracing::warn!(version = %c.version, check = %c.what, detail = %c.detail, "pre-traffic check failed");
            }
        }
        let status = if passed { "Succeeded" } else { "Failed" };
        self.report(&event, status).await?;
        tracing::info!(deployment = %event.deployment_id, status, "pre-traffic hook reported");
        Ok(json!({ "deploymentId": event.deployment_id, "status": status, "checks": checks }))
    }

    /// Every check, side by side.
    pub async fn checks(&self) -> Vec<Check> {
        let api = &self.config.api_version;
        // A well-formed id no connection has: the answer is the table's.
        let missing = format!("/v1/connections/{}", ConnectionId::generate().as_str());
        let mut pending = vec![
            futures::future::Either::Left(self.http_check(api, "GET /health", "/health", 200)),
            futures::future::Either::Left(self.http_check(
                api,
                "one read against the table (GET /v1/connections/{id}: 404)",
                &missing,
                404,
            )),
        ];
        for version in &self.config.event_versions {
            pending.push(futures::future::Either::Right(self.probe_check(version)));
        }
        futures::future::join_all(pending).await
    }

    async fn http_check(&self, version: &str, what: &str, path: &str, want: u16) -> Check {
        let event = http_event(path);
        let (passed, detail) = match self.invoke(version, &event).await {
            Ok(answer) => {
                let status = answer["statusCode"].as_u64().unwrap_or_default();
                let body: String = answer["body"].as_str().unwrap_or_default().chars().take(300).collect();
                (status == u64::from(want), format!("status {status}: {body}"))
            }
            Err(why) => (false, why),
        };
        Check {
            version: version.to_owned(),
            what: what.to_owned(),
            passed,
            detail,
        }
    }

    async fn probe_check(&self, version: &str) -> Check {
        let (passed, detail) = match self.invoke(version, &probe::event()).await {
            Ok(answer) => (answer["status"] == "ok", answer.to_string()),
            Err(why) => (false, why),
        };
        Check {
            version: version.to_owned(),
            what: "probe: one read against the table".to_owned(),
            passed,
            detail,
        }
    }

    /// Lambda's Invoke (RequestResponse) of the version's ARN: its answer,
    /// or why there is none (a refusal, the function's own error).
    async fn invoke(&self, version: &str, event: &Value) -> Result<Value, String> {
        let path = format!(
            "/2015-03-31/functions/{}/invocations",
            utf8_percent_encode(version, NON_ALPHANUMERIC)
        );
        let headers = [
            ("content-type", "application/json"),
            ("x-amz-invocation-type", "RequestResponse"),
        ];
        let body = serde_json::to_vec(event).expect("events serialize");
        let answer = self
            .signer
            .post("lambda", &path, &headers, body, INVOKE_TIMEOUT)
            .await?;
        let text = String::from_utf8_lossy(&answer.body);
        let short: String = text.chars().take(500).collect();
        if answer.status != 200 {
            return Err(format!("Invoke answered {}: {short}", answer.status));
        }
        if let Some(kind) = answer.headers.get("x-amz-function-error") {
            return Err(format!(
                "the version failed ({}): {short}",
                kind.to_str().unwrap_or("?")
            ));
        }
        serde_json::from_slice(&answer.body).map_err(|e| format!("the version answered no JSON ({e}): {short}"))
    }

    /// PutLifecycleEventHookExecutionStatus, tried three times.
    async fn report(&self, event: &HookEvent, status: &'static str) -> Result<(), HookError> {
        let body = serde_json::to_vec(&json!({
            "deploymentId": event.deployment_id,
            "lifecycleEventHookExecutionId": event.lifecycle_event_hook_execution_id,
            "status": status,
        }))
        .expect("a report serializes");
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            (
                "x-amz-target",
                "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus",
            ),
        ];
        let mut why = String::new();
        for attempt in 0..3u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            match self
                .signer
                .post("codedeploy", "/", &headers, body.clone(), REPORT_TIMEOUT)
                .await
            {
                Ok(a) if a.status == 200 => return Ok(()),
                // A refusal (4xx) will not change on a retry.
                Ok(a) if a.status < 500 => {
                    why = format!("CodeDeploy answered {}: {}", a.status, String::from_utf8_lossy(&a.body));
                    break;
                }
                Ok(a) => why = format!("CodeDeploy answered {}", a.status),
                Err(e) => why = e,
            }
        }
        Err(HookError::Report { status, why })
    }
}

/// API Gateway's HTTP API event (payload 2.0) for `GET path`, with the
/// claims its JWT authorizer would pass: a tenant no one has, every account.
fn http_event(path: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "user-agent": "account-connect-pre-traffic-hook", "x-forwarded-proto": "https" },
        "requestContext": {
            "accountId": "pre-traffic-hook",
            "apiId": "pre-traffic-hook",
            "domainName": "pre-traffic-hook.invalid",
            "http": { "method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "account-connect-pre-traffic-hook" },
            "requestId": ConnectionId::generate().as_str().trim_start_matches("con-"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0,
            "authorizer": { "jwt": { "claims": { "sub": "pre-traffic-hook", "org": probe::PROBE_ORG, "accounts": "*" }, "scopes": null } }
        },
        "isBase64Encoded": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_event_is_codedeploys() {
        let e: HookEvent = serde_json::from_value(json!({
            "DeploymentId": "d-ABC123", "LifecycleEventHookExecutionId": "eyJ..."
        }))
        .unwrap();
        assert_eq!(e.deployment_id, "d-ABC123");
        assert!(serde_json::from_value::<HookEvent>(json!({"DeploymentId": "d-1"})).is_err());
    }

    #[test]
    fn the_http_event_is_one_lambda_http_reads() {
        let event = http_event("/health");
        let request: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
        assert!(matches!(request, lambda_http::request::LambdaRequest::ApiGatewayV2(_)));
    }
}
