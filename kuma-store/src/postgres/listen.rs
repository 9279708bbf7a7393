//! Hearing about changes: `LISTEN` on a connection of its own, connected
//! again with back-off (100 ms doubling to 5 s) when it drops.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::Config;
use tracing::{info, warn};

use super::connect::Transport;
use super::schema::CHANNEL;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Moves `changes` on every notification, every reconnection and every
/// `resync`; keeps `connected` true while the connection is up. Runs until
/// aborted.
pub(crate) async fn listen(
    config: Config,
    transport: Transport,
    described: Arc<str>,
    changes: watch::Sender<u64>,
    connected: watch::Sender<bool>,
    resync: Duration,
) {
    let bump = || changes.send_modify(|c| *c = c.wrapping_add(1));
    let mut backoff = FIRST_BACKOFF;
    let mut was_up = true;
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
    loop {
        match transport.listening(&config).await {
            Ok((client, mut rx, driver)) => {
                if client.batch_execute(&format!("LISTEN {CHANNEL}")).await.is_ok() {
                    if !was_up {
                        info!(store = %described, "store reachable again: reading everything");
                    }
                    connected.send_replace(true);
                    backoff = FIRST_BACKOFF;
                    // Whatever happened while disconnected is read now.
                    bump();
                    loop {
                        tokio::select! {
                            heard = rx.recv() => match heard {
                                Some(()) => bump(),
                                None => break,
                            },
                            _ = timer.tick() => bump(),
                        }
                    }
                }
                driver.abort();
            }
            Err(e) => {
                if was_up {
                    warn!(store = %described, "store unreachable, serving the last good resources: {e}");
                }
            }
        }
        if *connected.borrow() {
            warn!(store = %described, "lost the store's notification connection; reconnecting");
        }
        connected.send_replace(false);
        was_up = false;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
