//! The fire budget of chains. Work an execution causes (its events fed
//! back to triggers, and `emit` / `submit` / `fire` made while its callable
//! runs) belongs to the chain of the execution the chain started from, its
//! root. Depth alone bounds how long a chain grows, not how wide: two
//! triggers on `execution.completed` double the work at each level. So each
//! root may cause at most `maxChainFires` fires in all; the fire after that
//! is refused as `trigger.loop_blocked`.
//!
//! The counts live in the engine's memory, one entry per root that caused
//! a fire; an entry no fire touched for [`IDLE_MS`] is dropped (a chain
//! quiet for an hour has ended, or was blocked), so memory is bounded by
//! the chains active in the last hour.

use std::collections::HashMap;

/// How long a root's count is kept after its chain's last fire.
pub const IDLE_MS: i64 = 3_600_000;

/// Fewest entries before a sweep of idle ones is worth it.
const SWEEP_FLOOR: usize = 1024;

struct Spent {
    fires: u32,
    last_ms: i64,
    /// Triggers whose refusal in this chain was reported already.
    reported: Vec<std::sync::Arc<str>>,
}

/// Fires caused per chain root.
pub(super) struct ChainBudget {
    spent: HashMap<Box<str>, Spent>,
    sweep_at: usize,
}

impl Default for ChainBudget {
    fn default() -> Self {
        Self { spent: HashMap::new(), sweep_at: SWEEP_FLOOR }
    }
}

impl ChainBudget {
    /// Fires the chain of `root` caused so far.
    pub fn fires(&self, root: &str) -> u32 {
        self.spent.get(root).map_or(0, |s| s.fires)
    }

    /// Counts one fire of the chain of `root`.
    pub fn spend(&mut self, root: &str, now_ms: i64) {
        match self.spent.get_mut(root) {
            Some(s) => {
                s.fires = s.fires.saturating_add(1);
                s.last_ms = now_ms;
            }
            None => {
                if self.spent.len() >= self.sweep_at {
                    self.spent.retain(|_, s| now_ms - s.last_ms < IDLE_MS);
                    self.sweep_at = (self.spent.len() * 2).max(SWEEP_FLOOR);
                }
                self.spent.insert(root.into(), Spent { fires: 1, last_ms: now_ms, reported: Vec::new() });
            }
        }
    }

    /// Whether the refusal of `trigger` in the chain of `root` is the
    /// first (and so is reported as `trigger.loop_blocked`). Later ones
    /// are not: a listener of `loop_blocked` that emits in the refused
    /// chain is refused again, and reporting that too would loop.
    pub fn first_refusal(&mut self, root: &str, trigger: &std::sync::Arc<str>, now_ms: i64) -> bool {
        let spent = self.spent.entry(root.into()).or_insert(Spent { fires: 0, last_ms: now_ms, reported: Vec::new() });
        spent.last_ms = now_ms;
        if spent.reported.contains(trigger) {
            return false;
        }
        spent.reported.push(trigger.clone());
        true
    }

    /// Roots counted now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.spent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_root() {
        let mut b = ChainBudget::default();
        b.spend("a", 0);
        b.spend("a", 1);
        b.spend("b", 2);
        assert_eq!((b.fires("a"), b.fires("b"), b.fires("c")), (2, 1, 0));
    }

    #[test]
    fn idle_roots_are_dropped_and_memory_stays_bounded() {
        let mut b = ChainBudget::default();
        // 100k roots, one an hour's worth of milliseconds apart in batches:
        // the map never holds much more than the roots of the last hour.
        let mut most = 0;
        for i in 0..100_000i64 {
            b.spend(&format!("root{i}"), i * 1000);
            most = most.max(b.len());
        }
        // 3,600 roots per hour at one per second; the sweep runs when the
        // map doubles, so it stays under twice that plus the floor.
        assert!(most <= 2 * 3_600 + SWEEP_FLOOR, "{most}");
        // An active root keeps its count across sweeps.
        let mut b = ChainBudget::default();
        for i in 0..10_000i64 {
            b.spend("busy", i * 1000);
            b.spend(&format!("r{i}"), i * 1000);
        }
        assert_eq!(b.fires("busy"), 10_000);
    }
}
