//! The claims this process holds, and what a stop does with them: a send
//! that went out but is not recorded yet is recorded, anything else is given
//! back for another replica to send at once.

use std::collections::HashMap;

use sqlx::{Connection, PgConnection};

use super::Delivery;
use crate::domain::MessageId;
use crate::store::Bounded;
use crate::store::outbox::{self, Claimed};

/// A claim held, by its token; `sent` once the gateway took the message and
/// until the send is recorded.
pub(super) struct Held {
    claim: i32,
    sent: Option<Sent>,
}

/// What recording a send needs.
#[derive(Clone)]
pub(super) struct Sent {
    pub provider_message_id: Option<String>,
    pub slot: Option<i64>,
}

pub(super) type HeldClaims = HashMap<MessageId, Held>;

impl Delivery {
    fn held(&self) -> std::sync::MutexGuard<'_, HeldClaims> {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn hold(&self, message: &Claimed) {
        let held = Held {
            claim: message.claim,
            sent: None,
        };
        self.held().insert(message.id, held);
    }

    /// The gateway took the message: until its send is recorded, the claim
    /// stays held, so that a stop records it rather than giving it back.
    pub(super) fn hold_sent(&self, message: &Claimed, sent: Sent) {
        if let Some(held) = self.held().get_mut(&message.id)
            && held.claim == message.claim
        {
            held.sent = Some(sent);
        }
    }

    /// The attempt is over: its claim is let go, unless its send went out and
    /// could not be recorded (`recorded` false), which only a stop ends.
    pub(super) fn settle(&self, message: &Claimed, recorded: bool) {
        let mut held = self.held();
        if let Some(h) = held.get(&message.id)
            && h.claim == message.claim
            && (recorded || h.sent.is_none())
        {
            held.remove(&message.id);
        }
    }

    /// A connection of its own, opened on the runtime that calls: the pool's
    /// idle connections may belong to runtimes a stop has ended (those of the
    /// HTTP workers whose requests opened them), or to a database that reset
    /// them; a statement on one fails ("A Tokio 1.x context was found, but it
    /// is being shutdown").
    pub(super) async fn fresh_connection(&self) -> Result<PgConnection, sqlx::Error> {
        let options = self.inner.pool.connect_options();
        PgConnection::connect_with(&options).bounded().await
    }

    /// Records the sends that went out and gives back the leases of the other
    /// messages this process claimed and has not settled (sends cut short by a
    /// stop), so another replica can take them at once instead of when the
    /// lease runs out. A send that was in flight may have reached the gateway:
    /// it may go out twice, as after a crash, but not `LEASE` late. Returns
    /// how many were recorded or given back.
    ///
    /// It runs on a connection of its own (`fresh_connection`); only if that
    /// cannot be opened is the pool tried.
    pub async fn release_leases(&self) -> Result<u64, sqlx::Error> {
        *self.inner.stopping.write().await = true;
        let held: Vec<(MessageId, Held)> = self.held().drain().collect();
        if held.is_empty() {
            return Ok(0);
        }
        match self.fresh_connection().await {
            Ok(mut connection) => {
                let done = end_claims(&mut connection, &held).await;
                // Closing politely is not worth the stop's time if it fails.
                let _ = connection.close().bounded().await;
                done
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not open a connection to give back leases; trying the pool");
                let mut connection = self.inner.pool.acquire().bounded().await?;
                end_claims(&mut connection, &held).await
            }
        }
    }
}

async fn end_claims(connection: &mut PgConnection, held: &[(MessageId, Held)]) -> Result<u64, sqlx::Error> {
    let mut done = 0;
    for (id, held) in held {
        if let Some(sent) = &held.sent {
            outbox::mark_sent(
                &mut *connection,
                *id,
                sent.provider_message_id.as_deref(),
                sent.slot,
            )
            .await?;
            done += 1;
        }
    }
    let unsent: Vec<(MessageId, i32)> = held
        .iter()
        .filter(|(_, h)| h.sent.is_none())
        .map(|(id, h)| (*id, h.claim))
        .collect();
    if !unsent.is_empty() {
        done += outbox::release(&mut *connection, &unsent).await?;
    }
    Ok(done)
}
