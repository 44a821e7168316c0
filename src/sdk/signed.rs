//! AWS requests signed here (SigV4, with the `aws-sigv4` crate the SDK signs
//! with) where an SDK crate would cost more than the calls are worth: the
//! deploy hook's two calls (Lambda's Invoke, CodeDeploy's
//! PutLifecycleEventHookExecutionStatus) and the templates' S3 PutObject and
//! DeleteObject. `aws-sdk-s3` brought a checksum crate of ~0.7 MB of CRC
//! tables and SIMD variants into every binary that uploads a template.

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, SystemTime};

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest answer read (a Lambda response payload is at most 6 MB; the
/// hook's probes and S3's answers are a few hundred bytes).
const MAX_ANSWER: usize = 1 << 20;

/// An answer: status, headers, body.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// How a service wants its requests signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// Most services: the path normalised and encoded twice.
    Standard,
    /// S3: the path as sent, encoded once, and the payload's SHA-256 in
    /// `x-amz-content-sha256`.
    S3,
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
        let tls = super::tls_builder().https_or_http().enable_http1();
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

    /// The SDK's `AWS_ENDPOINT_URL` when set (a local stand-in), as every
    /// client of ours honours it.
    pub fn endpoint_override(&self) -> Option<String> {
        self.aws.endpoint_url().map(|url| url.trim_end_matches('/').to_owned())
    }

    /// `https://<service>.<region>.amazonaws.com` (`.com.cn` in China), or
    /// the endpoint override.
    pub fn endpoint(&self, service: &str) -> String {
        if let Some(url) = self.endpoint_override() {
            return url;
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
        self.send("POST", &url, service, Signing::Standard, headers, body, timeout)
            .await
    }

    /// Sends `method` to `url` (already percent-encoded) signed as `service`;
    /// the whole exchange, connect included, within `timeout`.
    #[allow(clippy::too_many_arguments)]
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        service: &str,
        signing: Signing,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let provider = self
            .aws
            .credentials_provider()
            .ok_or_else(|| "no AWS credentials configured".to_owned())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("cannot read the credentials: {e}"))?;
        let mut request = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let mut request = request
            .body(body)
            .map_err(|e| format!("{url} is not a request target: {e}"))?;
        let identity = credentials.into();
        let region = self.region();
        let mut settings = SigningSettings::default();
        if signing == Signing::S3 {
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(service)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let pairs: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let signable = SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(request.body()))
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
