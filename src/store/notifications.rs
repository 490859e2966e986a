//! The replica's one `LISTEN` connection, shared by whatever keeps in memory
//! what another replica's commit can make stale.
//!
//! A connection is precious (each replica's are few), so one listens for
//! every channel. Each subscriber names its channels when it subscribes; the
//! hub tells it each notification on them, and whether notifications are
//! heard at all. When the connection is lost (PostgreSQL down, a route gone
//! silent) nothing is heard and nothing says what was missed: a subscriber
//! trusts its memory only while told it is listening, and drops what it
//! holds at either change. The hub listens again `RELISTEN_AFTER` a loss.
//!
//! The hub knows channels and subscribers, not what they hold: the channels
//! are named by the triggers that notify on them (the migrations) and by the
//! modules that keep what those triggers make stale.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Bounded, call_timeout, ping_on};

const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// Keeps something a notification makes stale.
pub trait Subscriber: Send + Sync {
    /// A notification on `channel`, one of those it subscribed to.
    fn told(&self, channel: &str);

    /// Whether notifications are heard: `false` once the connection is lost
    /// or the service stops, `true` once it listens (again). Changes may have
    /// gone unheard in between.
    fn listening(&self, listening: bool);
}

/// A worker's wake-up: woken at each notification, to look for work. Memory
/// it has none, so the connection's state means nothing to it.
impl Subscriber for Notify {
    fn told(&self, _channel: &str) {
        self.notify_one();
    }

    fn listening(&self, _listening: bool) {}
}

struct Subscription {
    channels: Vec<&'static str>,
    subscriber: Arc<dyn Subscriber>,
}

/// Who asked for which channels: the hub's routing, without its connection.
#[derive(Default)]
struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    /// Every channel some subscriber asked for, once each.
    fn channels(&self) -> Vec<&'static str> {
        let mut channels: Vec<&'static str> =
            self.0.iter().flat_map(|s| s.channels.iter().copied()).collect();
        channels.sort_unstable();
        channels.dedup();
        channels
    }

    /// Tells a notification on `channel` to the subscribers that asked for
    /// it, in the order they subscribed.
    fn tell(&self, channel: &str) {
        for s in self.0.iter().filter(|s| s.channels.contains(&channel)) {
            s.subscriber.told(channel);
        }
    }

    fn set_listening(&self, listening: bool) {
        for s in &self.0 {
            s.subscriber.listening(listening);
        }
    }
}

/// The hub: subscribed to before it runs, then run once per replica.
pub struct Notifications {
    pool: PgPool,
    subscriptions: Subscriptions,
}

impl Notifications {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            subscriptions: Subscriptions::default(),
        }
    }

    /// Tells `subscriber` of every notification on `channels`, and of the
    /// connection's state.
    pub fn subscribe(&mut self, channels: &[&'static str], subscriber: Arc<dyn Subscriber>) {
        self.subscriptions.0.push(Subscription {
            channels: channels.to_vec(),
            subscriber,
        });
    }

    /// Listens until `shutdown`, listening again whenever the connection is lost.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failing = false;
        loop {
            match self.connect().await {
                Ok(listener) => {
                    failing = false;
                    self.subscriptions.set_listening(true);
                    let stopped = self.hear(listener, &shutdown).await;
                    self.subscriptions.set_listening(false);
                    if stopped {
                        return;
                    }
                    tracing::warn!("lost the LISTEN connection; memory kept fresh by it is not trusted");
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot LISTEN; memory kept fresh by it is not trusted");
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
        }
    }

    async fn connect(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all(self.subscriptions.channels())
            .bounded()
            .await?;
        Ok(listener)
    }

    /// Tells what `listener` hears until the connection is lost (`false`)
    /// or `shutdown` (`true`).
    async fn hear(&self, mut listener: PgListener, shutdown: &CancellationToken) -> bool {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return true,
                // A quiet connection may be a dead one that no error will
                // ever reveal (a black-holed route): after a quiet call
                // timeout it must answer a ping in one.
                told = tokio::time::timeout(call_timeout(), listener.try_recv()) => match told {
                    Ok(Ok(Some(told))) => self.subscriptions.tell(told.channel()),
                    Ok(Ok(None) | Err(_)) => return false,
                    Err(_quiet) => {
                        if ping_on(&mut listener).await.is_err() {
                            return false;
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records what it is told, as `channel` or `listening`/`deaf`.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Subscriber for Recorder {
        fn told(&self, channel: &str) {
            self.0.lock().unwrap().push(channel.to_owned());
        }

        fn listening(&self, listening: bool) {
            let said = if listening { "listening" } else { "deaf" };
            self.0.lock().unwrap().push(said.to_owned());
        }
    }

    impl Recorder {
        fn heard(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
    }

    fn subscriptions() -> (Subscriptions, [Arc<Recorder>; 3]) {
        let recorders: [Arc<Recorder>; 3] = Default::default();
        let subscriptions = Subscriptions(vec![
            subscription(&["clients"], recorders[0].clone()),
            subscription(&["finished", "clients"], recorders[1].clone()),
            subscription(&["events"], recorders[2].clone()),
        ]);
        (subscriptions, recorders)
    }

    fn subscription(channels: &[&'static str], subscriber: Arc<dyn Subscriber>) -> Subscription {
        Subscription {
            channels: channels.to_vec(),
            subscriber,
        }
    }

    #[test]
    fn each_channel_is_listened_to_once() {
        let (subscriptions, _) = subscriptions();
        assert_eq!(subscriptions.channels(), ["clients", "events", "finished"]);
    }

    #[test]
    fn a_notification_reaches_only_the_subscribers_of_its_channel() {
        let (subscriptions, [clients, both, events]) = subscriptions();
        subscriptions.tell("clients");
        subscriptions.tell("finished");
        subscriptions.tell("unasked");
        assert_eq!(clients.heard(), ["clients"]);
        assert_eq!(both.heard(), ["clients", "finished"]);
        assert!(events.heard().is_empty());
    }

    #[test]
    fn every_subscriber_hears_whether_it_is_listening() {
        let (subscriptions, recorders) = subscriptions();
        subscriptions.set_listening(true);
        subscriptions.set_listening(false);
        for recorder in recorders {
            assert_eq!(recorder.heard(), ["listening", "deaf"]);
        }
    }

    #[tokio::test]
    async fn a_wake_up_is_woken_by_a_notification() {
        let notify = Arc::new(Notify::new());
        let subscriptions = Subscriptions(vec![subscription(&["events"], notify.clone())]);
        subscriptions.tell("events");
        tokio::time::timeout(Duration::from_secs(1), notify.notified())
            .await
            .expect("woken");
    }
}
