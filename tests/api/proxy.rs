//! A TCP proxy in front of PostgreSQL that a test can cut, as an outage would,
//! and restore.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct DatabaseProxy {
    pub port: u16,
    target: SocketAddr,
    serving: Mutex<Option<Serving>>,
}

struct Serving {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl DatabaseProxy {
    /// Forwards a port of its own on 127.0.0.1 to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            target,
            serving: Mutex::new(None),
        };
        proxy.serve(listener);
        proxy
    }

    /// Drops every open connection and closes the port: new connections are
    /// refused, as by a server that is down. Returns once all of it is done.
    pub async fn cut(&self) {
        let serving = self.serving.lock().unwrap().take();
        if let Some(serving) = serving {
            serving.stop.cancel();
            serving.tasks.close();
            serving.tasks.wait().await;
        }
    }

    /// Opens the same port again.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the proxy's port can be bound again");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let target = self.target;
        let (accept_stop, connections) = (stop.clone(), tasks.clone());
        tasks.spawn(async move {
            loop {
                let mut inbound = tokio::select! {
                    _ = accept_stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let stop = accept_stop.clone();
                connections.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        *self.serving.lock().unwrap() = Some(Serving { stop, tasks });
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.lock().unwrap().take() {
            serving.stop.cancel();
        }
    }
}
