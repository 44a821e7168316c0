//! S3 on the stand-in, for the tests that make a template bucket and read
//! what the service put there: the same signed requests as the service's
//! (`sdk::signed`), path-style, so no S3 SDK crate is built for the tests.

use account_connect::sdk::signed::{Signer, Signing};
use aws_config::SdkConfig;
use serde_json::Value;
use std::time::Duration;

pub struct S3 {
    signer: Signer,
    base: String,
}

impl S3 {
    /// `conf` names the stand-in in its endpoint URL.
    pub fn new(conf: &SdkConfig) -> Self {
        let signer = Signer::new(conf.clone());
        let base = signer.endpoint_override().expect("tests reach S3 on the stand-in");
        S3 { signer, base }
    }

    async fn call(&self, method: &str, path: &str, body: Vec<u8>) -> Vec<u8> {
        let url = format!("{}/{path}", self.base);
        let a = self
            .signer
            .send(method, &url, "s3", Signing::S3, &[], body, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = String::from_utf8_lossy(&a.body);
        assert!((200..300).contains(&a.status), "{method} {url}: {} {text}", a.status);
        a.body.to_vec()
    }

    /// A bucket in the client's region (us-east-1 takes no location).
    pub async fn create_bucket(&self, name: &str) {
        let region = self.signer.region();
        let body = match region.as_str() {
            "us-east-1" => Vec::new(),
            r => format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{r}</LocationConstraint></CreateBucketConfiguration>"
            )
            .into_bytes(),
        };
        self.call("PUT", name, body).await;
    }

    /// The object at `key`, as JSON.
    pub async fn json(&self, bucket: &str, key: &str) -> Value {
        let body = self.call("GET", &format!("{bucket}/{key}"), Vec::new()).await;
        serde_json::from_slice(&body).unwrap()
    }

    /// The keys of every object in the bucket (one page: tests put few).
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let body = self.call("GET", &format!("{bucket}?list-type=2"), Vec::new()).await;
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains("<IsTruncated>true</IsTruncated>"), "{text}");
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
            .collect()
    }
}
