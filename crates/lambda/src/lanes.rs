//! One lane per account in this process: bookings into the same account wait their turn
//! here instead of racing each other through DynamoDB.
//!
//! Why: DynamoDB cancels a transaction that names an item of another transaction in flight,
//! and every booking writes its account. Sixty-four concurrent orders into one account would
//! otherwise lose most of their races, each losing round costing a read and a transaction,
//! until some give up. In a lane they take turns (first come, first served), so a hot account
//! is as fast as one booking after another. Bookings in other processes (other Lambda
//! instances) still race and retry; the lane only removes the races a process would have with
//! itself, which on a long-running server (`bonus dev`) is all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// Lanes by account key. Lanes nobody holds or waits for are dropped as the map grows.
#[derive(Default)]
pub struct AccountLanes {
    lanes: Mutex<HashMap<String, Weak<TurnLock<()>>>>,
}

/// Above this many lanes, the idle ones are swept out on the next entry.
const SWEEP_ABOVE: usize = 1_024;

/// The turn of one booking: the next one in the lane goes when this is dropped.
pub struct Turn(#[allow(dead_code)] OwnedMutexGuard<()>);

impl AccountLanes {
    /// Wait for this account's turn.
    pub async fn enter(&self, account: &str) -> Turn {
        let lane = {
            let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
            if lanes.len() > SWEEP_ABOVE {
                lanes.retain(|_, l| l.strong_count() > 0);
            }
            match lanes.get(account).and_then(Weak::upgrade) {
                Some(lane) => lane,
                None => {
                    let lane = Arc::new(TurnLock::new(()));
                    lanes.insert(account.to_string(), Arc::downgrade(&lane));
                    lane
                }
            }
        };
        Turn(lane.lock_owned().await)
    }

    /// Lanes currently known (held, waited for, or not yet swept).
    pub fn len(&self) -> usize {
        self.lanes.lock().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_booking_at_a_time_per_account_and_idle_lanes_are_swept() {
        let lanes = Arc::new(AccountLanes::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (lanes, inside, most) = (lanes.clone(), inside.clone(), most.clone());
                tokio::spawn(async move {
                    let _turn = lanes.enter("velo#M-1").await;
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two in one lane");
        // Another account never waits for this one.
        let _a = lanes.enter("velo#M-1").await;
        let _b = lanes.enter("velo#M-2").await;
        drop((_a, _b));
        for i in 0..=SWEEP_ABOVE + 1 {
            drop(lanes.enter(&format!("velo#L-{i}")).await);
        }
        assert!(lanes.len() <= SWEEP_ABOVE + 2, "{}", lanes.len());
    }
}
