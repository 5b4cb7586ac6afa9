//! Catches a table used from inside its own in-place update: the update's closure runs under
//! the partition's lock, so touching the same table there would otherwise deadlock the
//! thread. Like `RefCell`, it is a programming error, reported by a panic that names the
//! table (an agent's panic stops the worker with it, see `AgentFailure::Panicked`).

use std::cell::Cell;

thread_local! {
    /// The address of the table whose update closure runs on this thread (0: none).
    static UPDATING: Cell<usize> = const { Cell::new(0) };
}

/// Marks `table` as updating on this thread until dropped (the mark before it comes back).
pub(super) struct Updating {
    before: usize,
}

impl Updating {
    pub(super) fn enter<T>(table: &T) -> Self {
        let before = UPDATING.with(|u| u.replace(table as *const T as usize));
        Updating { before }
    }
}

impl Drop for Updating {
    fn drop(&mut self) {
        UPDATING.with(|u| u.set(self.before));
    }
}

/// Panics when `table`'s update closure is running on this thread.
pub(super) fn refuse_inside_update<T>(table: &T, name: &str) {
    if UPDATING.with(|u| u.get()) == table as *const T as usize {
        panic!(
            "table `{name}` was used inside its own update closure (Table::update runs it \
             under the partition's lock): read what the closure needs before calling update"
        );
    }
}
