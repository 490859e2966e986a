//! One send attempt: open the text, take a slot, renew the claim, send, and
//! carry out what `plan` makes of the answer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;
use tracing::Level;

use sqlx::Connection;

use super::Delivery;
use super::held::Sent;
use crate::delivery::gateway::SEND_TIMEOUT;
use crate::delivery::plan::{self, KeyStep, Log, MessageStep, Step};
use crate::delivery::senders::{Sender, Slot};
use crate::store::Bounded;
use crate::store::outbox::{self, Claimed};

/// A key's slot taken for a message before its attempt: by the dispatcher for
/// its batch, or in the statement that claimed the message, which renewed the
/// lease too (`renewed`: when the send may start, on the database's clock).
pub(in crate::delivery) struct Taken<'a> {
    pub sender: &'a Sender,
    pub slot: i64,
    pub renewed: Option<DateTime<Utc>>,
}

impl Delivery {
    #[tracing::instrument(skip_all, fields(message = %message.id, verification = %message.verification_id, attempt = message.attempts))]
    pub(super) async fn attempt(&self, message: Claimed, taken: Option<Taken<'_>>) {
        let tried = self.try_attempt(&message, taken).await;
        if let Err(e) = &tried {
            // The lease runs out and the message is claimed again: nothing is
            // lost. A send that went out stays held: a stop records it.
            tracing::warn!(error = %e, "could not record a delivery attempt");
        }
        self.settle(&message, tried.is_ok());
    }

    /// Sends one claimed message, on the slot `taken` for it if one was.
    async fn try_attempt(&self, message: &Claimed, taken: Option<Taken<'_>>) -> Result<(), sqlx::Error> {
        let senders = &self.inner.senders;
        let Some(text) = self
            .inner
            .sealer
            .open(&message.body_sealed, &message.phone_digits)
        else {
            return self
                .carry_out(message, plan::unreadable(), taken.map(|t| t.slot), None)
                .await;
        };
        let (sender, slot, renewed) = match taken {
            Some(t) => (t.sender, t.slot, t.renewed),
            None => match senders.take_slot().await? {
                Slot::Granted(sender, slot) => (sender, slot, None),
                Slot::Wait => {
                    return self.carry_out(message, plan::wait_for_slot(), None, None).await;
                }
                Slot::NoneInService(reason) => {
                    let step = plan::no_key_in_service(reason);
                    return self.carry_out(message, step, None, None).await;
                }
            },
        };
        let renewed = match renewed {
            Some(at) => Some(at),
            None => outbox::renew(&self.inner.pool, message, SEND_TIMEOUT).await?,
        };
        let Some(send_started) = renewed else {
            // Another sender holds it now, or it can no longer arrive in time.
            return senders.refund(slot).await;
        };

        let outcome = self
            .inner
            .gateway
            .send_message(&sender.key, &message.phone_digits, &text)
            .await;
        drop(text);
        let step = plan::plan(&outcome, message.attempts, rand::rng().random::<f64>());
        // The gateway counts a request when it arrives: count the slot from the
        // answer, not from when it was taken, so no window is ever short of it
        // (a send's record does it in the same statement). Failing that must not
        // keep the outcome from being recorded: a send left unrecorded goes out
        // again once its lease runs out.
        if !matches!(step.message, MessageStep::Sent { .. }) {
            self.count_from_answer(slot).await;
        }
        self.carry_out(message, step, Some(slot), Some((sender, send_started)))
            .await
    }

    /// Does what `step` says, with the slot taken for the message (if any) and
    /// the key its send went to (if it was sent), and when that send started.
    async fn carry_out(
        &self,
        message: &Claimed,
        step: Step,
        slot: Option<i64>,
        sent_on: Option<(&Sender, DateTime<Utc>)>,
    ) -> Result<(), sqlx::Error> {
        let pool = &self.inner.pool;
        let senders = &self.inner.senders;
        let metrics = &self.inner.metrics;
        if step.refund
            && let Some(slot) = slot
        {
            senders.refund(slot).await?;
        }
        if let Some((sender, send_started)) = sent_on {
            match &step.key {
                KeyStep::Keep => {}
                KeyStep::Note(error) => senders.note_error(sender, error).await?,
                KeyStep::Rest { rest, error } => senders.rest(sender, *rest, error).await?,
                KeyStep::TakeOut { state, error } => {
                    senders.take_out(sender, send_started, *state, error).await?
                }
            }
        }
        if let Some((result, class)) = step.metric {
            metrics.message(&message.client, result, class);
        }
        if let Some(line) = &step.log {
            log(line, sent_on.map(|(s, _)| s.name.as_str()));
        }
        match &step.message {
            MessageStep::Sent { provider_message_id } => {
                if let Err(e) = self
                    .record_sent(message, provider_message_id.as_deref(), slot)
                    .await
                {
                    // The slot must still count from the answer, or the key's
                    // window frees early: on its own, as for any other answer.
                    if let Some(slot) = slot {
                        self.count_from_answer(slot).await;
                    }
                    return Err(e);
                }
                let took = (Utc::now() - message.created_at).to_std().unwrap_or_default();
                metrics
                    .delivery_duration
                    .with_label_values(&[&message.client])
                    .observe(took.as_secs_f64());
            }
            MessageStep::Fail { reason, error } => {
                if outbox::mark_failed(pool, message, *reason, error).await? {
                    metrics.verification(&message.client, "failed");
                }
            }
            MessageStep::Requeue {
                after,
                error,
                counted,
            } => outbox::requeue(pool, message, *after, error, *counted).await?,
        }
        if step.wake {
            self.wake();
        }
        Ok(())
    }

    /// Counts `slot` from now, the gateway's answer; a failure is logged, and
    /// must not keep the outcome from being recorded.
    async fn count_from_answer(&self, slot: i64) {
        if let Err(e) = self.inner.senders.touch(slot).await {
            tracing::warn!(error = %e, "could not count the send's slot from its answer");
        }
    }

    /// Failing to record a send would send it again when the lease runs out:
    /// tried a few times, on the pool first, then on fresh connections (the
    /// pool's may all be dead, as during a stop); the claim stays held
    /// meanwhile, and if every try fails a stop records the send
    /// (`release_leases`). It also counts the send's slot from now.
    async fn record_sent(
        &self,
        message: &Claimed,
        provider_message_id: Option<&str>,
        slot: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        let sent = Sent {
            provider_message_id: provider_message_id.map(str::to_owned),
            slot,
        };
        self.hold_sent(message, sent);
        let mut tries = 0;
        loop {
            let recorded = if tries == 0 {
                outbox::mark_sent(&self.inner.pool, message.id, provider_message_id, slot).await
            } else {
                self.record_on_fresh_connection(message, provider_message_id, slot)
                    .await
            };
            match recorded {
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(error = %e, "could not record a send yet; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                other => return other,
            }
        }
    }
}

impl Delivery {
    async fn record_on_fresh_connection(
        &self,
        message: &Claimed,
        provider_message_id: Option<&str>,
        slot: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        let mut connection = self.fresh_connection().await?;
        let recorded = outbox::mark_sent(&mut connection, message.id, provider_message_id, slot).await;
        let _ = connection.close().bounded().await;
        recorded
    }
}

/// The line `plan` chose; its level must be a constant for `tracing`.
fn log(line: &Log, sender: Option<&str>) {
    macro_rules! at {
        ($level:expr) => {
            tracing::event!(
                $level,
                sender,
                reason = line.reason.as_deref(),
                status = line.status,
                answer = line.answer.as_deref(),
                rest_ms = line.rest_ms,
                retry_in_ms = line.retry_in_ms,
                "{}",
                line.text
            )
        };
    }
    match line.level {
        Level::ERROR => at!(Level::ERROR),
        Level::WARN => at!(Level::WARN),
        Level::INFO => at!(Level::INFO),
        Level::DEBUG => at!(Level::DEBUG),
        _ => at!(Level::TRACE),
    }
}
