//! Random identifiers from the OS CSPRNG.

/// `bytes` random bytes, hex-encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is unavailable");
    hex::encode(buf)
}
