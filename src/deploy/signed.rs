//! AWS requests signed here (SigV4, the `aws-sigv4` crate the SDK signs
//! with): the hook makes two calls, Lambda's Invoke and CodeDeploy's
//! PutLifecycleEventHookExecutionStatus, too few to pay for two more SDK
//! crates in a binary at its size budget.

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, SystemTime};

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest answer read (a Lambda response payload is at most 6 MB; the
/// hook's probes answer a few hundred bytes).
const MAX_ANSWER: usize = 1 << 20;

/// An answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Signer {
    aws: SdkConfig,
    http: HttpClient,
}

impl Signer {
    pub fn new(aws: SdkConfig) -> Self {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(Duration::from_secs(5)));
        tcp.enforce_http(false);
        // https in AWS; http only when AWS_ENDPOINT_URL names a local stand-in.
        let tls = crate::automatic::responder::tls_builder()
            .https_or_http()
            .enable_http1();
        Signer {
            aws,
            http: Client::builder(TokioExecutor::new()).build(tls.wrap_connector(tcp)),
        }
    }

    pub fn region(&self) -> String {
        self.aws
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into())
    }

    /// `https://<service>.<region>.amazonaws.com` (`.com.cn` in China), or
    /// the SDK's `AWS_ENDPOINT_URL` when set, as every client of ours honours it.
    pub fn endpoint(&self, service: &str) -> String {
        if let Some(url) = self.aws.endpoint_url() {
            return url.trim_end_matches('/').to_owned();
        }
        let region = self.region();
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{service}.{region}.{suffix}")
    }

    /// POSTs `body` to `path` (already percent-encoded) of `service`'s
    /// endpoint, signed as `service` with the function's own credentials.
    pub async fn post(
        &self,
        service: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let url = format!("{}{path}", self.endpoint(service));
        let provider = self
            .aws
            .credentials_provider()
            .ok_or_else(|| "no AWS credentials configured".to_owned())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("cannot read the function's credentials: {e}"))?;
        let mut request = http::Request::post(&url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut request = request
            .body(body)
            .map_err(|e| format!("{url} is not a request target: {e}"))?;
        let identity = credentials.into();
        let region = self.region();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let pairs: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            pairs.into_iter(),
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| format!("cannot sign: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("cannot sign: {e}"))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let exchange = async {
            let answer = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("cannot reach {url}: {e}"))?;
            let (parts, body) = answer.into_parts();
            let body = Limited::new(body, MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("{url} answered unreadably: {e}"))?
                .to_bytes();
            Ok(Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("{url} did not answer within {} s", timeout.as_secs()))?
    }
}
