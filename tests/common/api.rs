//! The API as a client speaks it: one method per route of the route table,
//! each answering the status and the JSON body (Null when it is not JSON).

use super::TestApp;
use serde_json::{json, Value};

/// Status and JSON body.
pub type Answer = (u16, Value);

impl TestApp {
    /// An app another process serves at `base` (the built binary): its clock
    /// is the system's, which nobody moves.
    pub fn at(base: &str) -> TestApp {
        TestApp {
            base: base.to_owned(),
            client: reqwest::Client::new(),
            clock: account_connect::clock::Clock::system(),
        }
    }

    /// A request to `path` with a bearer token if given; for headers, raw
    /// bodies and anything else a route method does not say.
    pub fn request(&self, method: &str, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let req = self
            .client
            .request(method.parse().expect("an HTTP method"), self.url(path));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request built by `request`.
    pub async fn answer(&self, req: reqwest::RequestBuilder) -> Answer {
        let res = req.send().await.expect("the app answers");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        super::assert_no_debug_text("an API answer", &text);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Any method and path, with a token and a JSON body if given: for tests
    /// that walk routes in a loop.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let mut req = self.request(method, path, token);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.answer(req).await
    }

    pub async fn health(&self) -> Answer {
        self.call("GET", "/health", None, None).await
    }

    pub async fn openapi(&self) -> Answer {
        self.call("GET", "/openapi.json", None, None).await
    }

    /// `query` as it goes after the `?` ("" for none), e.g. `partition=aws`.
    pub async fn catalog(&self, query: &str) -> Answer {
        self.call("GET", &with_query("/v1/catalog", query), None, None).await
    }

    pub async fn render_policies(&self, body: &Value) -> Answer {
        self.call("POST", "/v1/policies", None, Some(body)).await
    }

    pub async fn create_connection(&self, token: &str, body: &Value) -> Answer {
        self.call("POST", "/v1/connections", Some(token), Some(body)).await
    }

    /// The same with an Idempotency-Key.
    pub async fn create_connection_keyed(&self, token: &str, key: &str, body: &Value) -> Answer {
        let req = self
            .request("POST", "/v1/connections", Some(token))
            .header("Idempotency-Key", key)
            .json(body);
        self.answer(req).await
    }

    /// `query` as it goes after the `?` ("" for none).
    pub async fn list_connections(&self, token: &str, query: &str) -> Answer {
        self.call("GET", &with_query("/v1/connections", query), Some(token), None)
            .await
    }

    pub async fn get_connection(&self, token: &str, id: &str) -> Answer {
        self.call("GET", &format!("/v1/connections/{id}"), Some(token), None)
            .await
    }

    pub async fn disconnect(&self, token: &str, id: &str) -> Answer {
        self.call("DELETE", &format!("/v1/connections/{id}"), Some(token), None)
            .await
    }

    pub async fn rotate_external_id(&self, token: &str, id: &str) -> Answer {
        self.call("POST", &format!("/v1/connections/{id}/external-id"), Some(token), None)
            .await
    }

    /// The audit trail; `query` as it goes after the `?` ("" for none).
    pub async fn events(&self, token: &str, id: &str, query: &str) -> Answer {
        let path = with_query(&format!("/v1/connections/{id}/events"), query);
        self.call("GET", &path, Some(token), None).await
    }

    pub async fn connect_role(&self, token: &str, id: &str, role_arn: &str) -> Answer {
        let body = json!({ "roleArn": role_arn });
        self.call("POST", &format!("/v1/connections/{id}/role"), Some(token), Some(&body))
            .await
    }

    pub async fn recheck(&self, token: &str, id: &str) -> Answer {
        self.call("POST", &format!("/v1/connections/{id}/checks"), Some(token), None)
            .await
    }

    pub async fn template(&self, token: &str, id: &str) -> Answer {
        self.call("GET", &format!("/v1/connections/{id}/template"), Some(token), None)
            .await
    }

    /// Spot's set-credentials, the body as Spot's SDK sends it.
    pub async fn spot_set_credentials(&self, token: &str, account: &str, iam_role: &str) -> Answer {
        let body = json!({"credentials": {"iamRole": iam_role}});
        let path = format!("/setup/credentials/aws?accountId={account}");
        self.call("POST", &path, Some(token), Some(&body)).await
    }

    pub async fn spot_get_credentials(&self, token: &str, account: &str) -> Answer {
        let path = format!("/setup/credentials/aws?accountId={account}");
        self.call("GET", &path, Some(token), None).await
    }

    pub async fn spot_create_external_id(&self, token: &str, account: &str) -> Answer {
        let path = format!("/setup/credentials/aws/externalId?accountId={account}");
        self.call("POST", &path, Some(token), None).await
    }

    pub async fn spot_read_external_id(&self, token: &str, account: &str) -> Answer {
        let path = format!("/setup/credentials/aws/externalId/{account}");
        self.call("GET", &path, Some(token), None).await
    }

    pub async fn create_organization(&self, token: &str, body: &Value) -> Answer {
        self.call("POST", "/v1/organizations", Some(token), Some(body)).await
    }

    pub async fn get_organization(&self, token: &str, id: &str) -> Answer {
        self.call("GET", &format!("/v1/organizations/{id}"), Some(token), None)
            .await
    }

    pub async fn sync_organization(&self, token: &str, id: &str) -> Answer {
        self.call("POST", &format!("/v1/organizations/{id}/sync"), Some(token), None)
            .await
    }

    pub async fn preflight_organization(&self, token: &str, id: &str) -> Answer {
        self.call("GET", &format!("/v1/organizations/{id}/preflight"), Some(token), None)
            .await
    }

    pub async fn offboard_organization(&self, token: &str, id: &str) -> Answer {
        self.call("DELETE", &format!("/v1/organizations/{id}"), Some(token), None)
            .await
    }

    pub async fn organization_template(&self, token: &str, id: &str) -> Answer {
        self.call("GET", &format!("/v1/organizations/{id}/template"), Some(token), None)
            .await
    }

    pub async fn assign_spot_account(&self, token: &str, id: &str, account: &str) -> Answer {
        let body = json!({"accountId": account});
        self.call(
            "PUT",
            &format!("/v1/connections/{id}/account"),
            Some(token),
            Some(&body),
        )
        .await
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

impl TestApp {
    pub async fn partitions(&self) -> Answer {
        self.call("GET", "/v1/partitions", None, None).await
    }

    /// A relay's POST: `body` as is, with the timestamp and signature headers given.
    pub async fn relay(&self, partition: &str, timestamp: Option<&str>, signature: Option<&str>, body: &str) -> Answer {
        let mut req = self
            .request("POST", &format!("/v1/relay/{partition}"), None)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = timestamp {
            req = req.header(account_connect::automatic::relay::TIMESTAMP_HEADER, t);
        }
        if let Some(s) = signature {
            req = req.header(account_connect::automatic::relay::SIGNATURE_HEADER, s);
        }
        self.answer(req).await
    }
}

impl TestApp {
    pub async fn create_webhook(&self, token: &str, body: &Value) -> Answer {
        self.call("POST", "/v1/webhooks", Some(token), Some(body)).await
    }

    pub async fn list_webhooks(&self, token: &str) -> Answer {
        self.call("GET", "/v1/webhooks", Some(token), None).await
    }

    pub async fn get_webhook(&self, token: &str, id: &str) -> Answer {
        self.call("GET", &format!("/v1/webhooks/{id}"), Some(token), None).await
    }

    pub async fn delete_webhook(&self, token: &str, id: &str) -> Answer {
        self.call("DELETE", &format!("/v1/webhooks/{id}"), Some(token), None)
            .await
    }

    pub async fn rotate_webhook_secret(&self, token: &str, id: &str) -> Answer {
        self.call("POST", &format!("/v1/webhooks/{id}/secret"), Some(token), None)
            .await
    }

    pub async fn test_webhook(&self, token: &str, id: &str) -> Answer {
        self.call("POST", &format!("/v1/webhooks/{id}/test"), Some(token), None)
            .await
    }

    /// `query` as it goes after the `?` ("" for none).
    pub async fn webhook_deliveries(&self, token: &str, id: &str, query: &str) -> Answer {
        let path = with_query(&format!("/v1/webhooks/{id}/deliveries"), query);
        self.call("GET", &path, Some(token), None).await
    }

    pub async fn enable_webhook(&self, token: &str, id: &str) -> Answer {
        self.call("POST", &format!("/v1/webhooks/{id}/enable"), Some(token), None)
            .await
    }

    /// `body` is `{"since": RFC 3339}`.
    pub async fn recover_webhook(&self, token: &str, id: &str, body: &Value) -> Answer {
        self.call("POST", &format!("/v1/webhooks/{id}/recover"), Some(token), Some(body))
            .await
    }

    pub async fn retry_delivery(&self, token: &str, id: &str, message_id: &str) -> Answer {
        let path = format!("/v1/webhooks/{id}/deliveries/{message_id}/retry");
        self.call("POST", &path, Some(token), None).await
    }
}
