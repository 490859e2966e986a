//! A TCP proxy in front of PostgreSQL that a test can break in each way an
//! outage does, and restore.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the proxy fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The port is closed: connections are refused, as by a server that is down.
    Refused,
    /// Connections are made (PostgreSQL's startup goes through), then reset
    /// (RST) at the first query.
    Reset,
    /// Connections are accepted and answered with bytes that are not PostgreSQL
    /// (a web server on the wrong port, say).
    Garbage,
    /// Connections are accepted and never answered, as behind a dead route.
    Silent,
}

pub struct DatabaseProxy {
    pub port: u16,
    target: SocketAddr,
    serving: Mutex<Option<Serving>>,
    /// While set, forwarded connections stay open but carry nothing.
    swallowing: Arc<AtomicBool>,
    /// While the port is refused: the port bound but not listening, so that
    /// connections to it are refused and no other socket of the machine (a
    /// test binding port 0) takes it before it is restored.
    held: Mutex<Option<TcpSocket>>,
}

struct Serving {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl DatabaseProxy {
    /// Forwards a port of its own on 127.0.0.1 to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = bind(0).await;
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            target,
            serving: Mutex::new(None),
            swallowing: Arc::new(AtomicBool::new(false)),
            held: Mutex::new(None),
        };
        proxy.serve(listener, None);
        proxy
    }

    /// Drops every open connection and closes the port (`Outage::Refused`).
    pub async fn cut(&self) {
        self.fail(Outage::Refused).await;
    }

    /// Drops every open connection (a reset, for the peer), then fails new
    /// ones as `outage` says. Returns once the old connections are gone.
    pub async fn fail(&self, outage: Outage) {
        self.stop_serving().await;
        if outage == Outage::Refused {
            *self.held.lock().unwrap() = Some(socket(self.port));
        } else {
            self.serve(self.bind_again(), Some(outage));
        }
    }

    /// Keeps every connection open, pooled ones included, but from now on
    /// reads and drops what either side sends, as a black-holed route or a
    /// frozen server does: no reset, no close, no answer. New connections too.
    pub fn swallow(&self) {
        self.swallowing.store(true, Ordering::SeqCst);
    }

    /// Forwards again on the connections kept open (what was swallowed is lost).
    pub fn resume(&self) {
        self.swallowing.store(false, Ordering::SeqCst);
    }

    /// Forwards again, on the same port.
    pub async fn restore(&self) {
        self.stop_serving().await;
        self.serve(self.bind_again(), None);
    }

    async fn stop_serving(&self) {
        let serving = self.serving.lock().unwrap().take();
        if let Some(serving) = serving {
            serving.stop.cancel();
            serving.tasks.close();
            serving.tasks.wait().await;
        }
    }

    fn serve(&self, listener: TcpListener, outage: Option<Outage>) {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let target = self.target;
        let swallowing = self.swallowing.clone();
        let (accept_stop, connections) = (stop.clone(), tasks.clone());
        tasks.spawn(async move {
            loop {
                let inbound = tokio::select! {
                    _ = accept_stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                // Linger 0: a connection the proxy drops is reset (RST), as
                // when a network fails, rather than closed politely.
                #[allow(deprecated)]
                let _ = inbound.set_linger(Some(std::time::Duration::ZERO));
                let stop = accept_stop.clone();
                let swallowing = swallowing.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = handle(inbound, target, outage, swallowing) => {}
                    }
                });
            }
        });
        *self.serving.lock().unwrap() = Some(Serving { stop, tasks });
    }
}

async fn handle(
    mut inbound: TcpStream,
    target: SocketAddr,
    outage: Option<Outage>,
    swallowing: Arc<AtomicBool>,
) {
    match outage {
        None => {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let (from_client, to_client) = inbound.into_split();
            let (from_server, to_server) = outbound.into_split();
            tokio::join!(
                pipe(from_client, to_server, &swallowing),
                pipe(from_server, to_client, &swallowing),
            );
        }
        Some(Outage::Reset) => {
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            // With trust authentication a client sends two packets before its
            // first query: SSLRequest, then StartupMessage.
            let (mut from_client, mut to_server) = (0usize, [0u8; 8192]);
            loop {
                let mut from_server = [0u8; 8192];
                tokio::select! {
                    read = inbound.read(&mut to_server) => match read {
                        Ok(n) if n > 0 => {
                            from_client += 1;
                            if from_client > 2 {
                                return; // dropped with linger 0: a reset
                            }
                            if outbound.write_all(&to_server[..n]).await.is_err() {
                                return;
                            }
                        }
                        _ => return,
                    },
                    read = outbound.read(&mut from_server) => match read {
                        Ok(n) if n > 0 => {
                            if inbound.write_all(&from_server[..n]).await.is_err() {
                                return;
                            }
                        }
                        _ => return,
                    },
                }
            }
        }
        Some(Outage::Garbage) => {
            let mut buffer = [0u8; 1024];
            loop {
                match inbound.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
                        if inbound.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        Some(Outage::Silent) => {
            // Reads what comes, answers nothing, until the test restores.
            let mut buffer = [0u8; 1024];
            while matches!(inbound.read(&mut buffer).await, Ok(n) if n > 0) {}
            std::future::pending::<()>().await;
        }
        Some(Outage::Refused) => {}
    }
}

/// Forwards one direction until its sender closes it (then closes it onward,
/// as `copy_bidirectional` does), dropping what it reads while `swallowing`.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, swallowing: &AtomicBool) {
    let mut buffer = [0u8; 8192];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => {
                if !swallowing.load(Ordering::SeqCst) && to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl DatabaseProxy {
    /// Listens on the proxy's port again, on the socket that held it while
    /// it was refused, if any.
    fn bind_again(&self) -> TcpListener {
        let held = self.held.lock().unwrap().take();
        held.unwrap_or_else(|| socket(self.port)).listen(128).unwrap()
    }
}

/// Binds 127.0.0.1:`port` (0: any), reusing the address so the same port can
/// be bound again at once.
async fn bind(port: u16) -> TcpListener {
    socket(port).listen(128).unwrap()
}

/// 127.0.0.1:`port` bound, not yet listening.
fn socket(port: u16) -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("the proxy's port can be bound");
    socket
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.lock().unwrap().take() {
            serving.stop.cancel();
        }
    }
}
