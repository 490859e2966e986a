//! Hashing on a fixed set of threads, each with one buffer: memory stays bounded.

use futures_util::future::join_all;
use otp_service::crypto::HASH_THREAD_PREFIX;
use serde_json::json;

use crate::helpers::*;

/// The names of a process's threads that hash.
fn hashing_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("Linux /proc")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(HASH_THREAD_PREFIX))
        .count()
}

#[tokio::test]
async fn hashing_runs_on_exactly_the_configured_number_of_threads() {
    let app = spawn_app().await;
    let replica = ServiceProcess::start(
        &app,
        &[
            ("OTP_HASH_WORKERS", "3"),
            ("OTP_PHONE_SENDS_PER_HOUR", "1000"),
            ("OTP_CLIENT_REQUESTS_PER_MINUTE", "100000"),
        ],
    )
    .await;
    let pid = replica.pid();
    assert_eq!(hashing_threads(pid), 3);
    let bodies: Vec<_> = (0..40).map(|n| json!({"phone": nth_phone(n)})).collect();
    let answers = join_all(bodies.iter().map(|body| replica.request_code(&app, body))).await;
    assert!(answers.iter().all(|a| a.status() == 202));
    assert_eq!(hashing_threads(pid), 3, "no thread was added under load");
    replica.kill().await;
}
