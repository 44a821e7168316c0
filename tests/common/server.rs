//! The built binary serving (`account-connect serve` on an OS-picked port),
//! its output read line by line; killed when the test ends however it ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// On an in-memory store with the test JWT secret, the settings `env`
    /// added (or replacing those).
    pub fn start_with(env: &[(&str, String)]) -> Server {
        super::moto_endpoint();
        let mut child = Command::new(env!("CARGO_BIN_EXE_account-connect"));
        child
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("ACCOUNT_CONNECT_STORE", "sqlite::memory:")
            .env(
                "ACCOUNT_CONNECT_JWT_SECRET",
                std::str::from_utf8(super::TEST_SECRET).unwrap(),
            )
            .env("ACCOUNT_CONNECT_PROPAGATION_BUDGET_SECS", "0")
            .env("RUST_LOG", "warn")
            .env_remove("AWS_LAMBDA_FUNCTION_NAME")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = child.spawn().expect("the server starts");
        // Read on a thread to the end: a closed pipe would fail its later prints.
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            lines,
            base: String::new(),
        };
        let first = server
            .next_line(|l| l.contains("listening on http://"))
            .expect("the server listens");
        server.base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .to_owned();
        server
    }

    /// The next output line that `want` accepts, within 20 s.
    pub fn next_line(&self, want: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + Duration::from_secs(20);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if want(&l) => return Some(l),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}
