//! Side effects of a table change that must finish before the change may be flushed: a
//! windowed table's close callbacks. The change (a window's close, recorded in its partition)
//! and its effect (the user's `on_window_close`) are made in two steps, the first under the
//! partition's lock. A commit between the two would make the close durable with its callback
//! unfinished, and a crash then would lose the callback (its event is replayed, but the window
//! is already closed). So the change takes a hold under the lock, and a flush of the partition
//! waits until no hold is left; a hold dropped without [`EffectHold::done`] (the callback
//! failed or panicked) fails every later flush of the partition until it is recovered afresh:
//! nothing past an unfinished callback is committed, and a restart runs it again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The holds of one partition (a new partition state starts with none).
#[derive(Debug, Default)]
pub(crate) struct Effects {
    running: AtomicUsize,
    failed: AtomicBool,
}

impl Effects {
    /// A hold taken by a change whose effect is about to run.
    pub fn hold(self: &Arc<Self>) -> EffectHold {
        self.running.fetch_add(1, Ordering::SeqCst);
        EffectHold {
            effects: self.clone(),
            done: false,
        }
    }

    /// Whether an effect is still running.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst) > 0
    }

    /// Whether an effect ended without finishing.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }
}

/// A running effect; see the module docs.
#[derive(Debug)]
#[must_use = "a hold dropped without done() fails the partition's flushes"]
pub(crate) struct EffectHold {
    effects: Arc<Effects>,
    done: bool,
}

impl EffectHold {
    /// The effect finished: the change may be flushed.
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Drop for EffectHold {
    fn drop(&mut self) {
        if !self.done {
            self.effects.failed.store(true, Ordering::SeqCst);
        }
        self.effects.running.fetch_sub(1, Ordering::SeqCst);
    }
}
