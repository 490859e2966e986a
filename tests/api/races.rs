//! Two first requests racing for one (client, phone, purpose).

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn parallel_first_requests_for_one_phone_make_one_verification() {
    let app = spawn_app().await;
    let responses =
        join_all((0..12).map(|_| app.request_code(json!({"phone": PHONE, "purpose": "signup"})))).await;
    let mut accepted = 0;
    for response in responses {
        match response.status().as_u16() {
            202 => accepted += 1,
            // The losers find the winner's verification, within its cooldown.
            429 => {
                problem(response, 429, "resend_too_soon").await;
            }
            other => panic!("a racing request answered {other}"),
        }
    }
    assert!(accepted >= 1);
    assert_eq!(app.verification_count().await, 1);
}
