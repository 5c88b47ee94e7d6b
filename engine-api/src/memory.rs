//! `MemoryBudget`: the memory-limit accounting every engine's limiter hook delegates to.

/// Tracks the guest's total linear memory (over all its memories) against a limit, and
/// remembers whether a grow was denied, which turns a later failure into `OutOfMemory`.
#[derive(Debug, Clone, Default)]
pub struct MemoryBudget {
    limit: Option<u64>,
    used: u64,
    denied: bool,
}

impl MemoryBudget {
    /// A budget of `limit` bytes in total; `None` allows everything.
    pub fn new(limit: Option<u64>) -> Self {
        MemoryBudget {
            limit,
            used: 0,
            denied: false,
        }
    }

    /// One memory asks to grow from `current` to `desired` bytes (a new memory asks
    /// from 0). Returns whether the grow is allowed, and accounts for it if so.
    pub fn request_grow(&mut self, current: u64, desired: u64) -> bool {
        let total = self.used.saturating_sub(current).saturating_add(desired);
        if self.limit.is_some_and(|limit| total > limit) {
            self.denied = true;
            return false;
        }
        self.used = total;
        true
    }

    /// Sets the accounted total to what the engine reports, for an engine that can still
    /// refuse a grow the budget allowed (so the refused one is not counted).
    pub fn observe(&mut self, total: u64) {
        self.used = total;
    }

    /// Whether any grow was refused during the run.
    pub fn denied(&self) -> bool {
        self.denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observed_size_replaces_a_grow_that_did_not_happen() {
        let mut budget = MemoryBudget::new(Some(100));
        assert!(budget.request_grow(10, 90));
        budget.observe(10);
        assert!(budget.request_grow(10, 60));
        assert!(!budget.denied());
    }

    #[test]
    fn counts_all_memories_and_remembers_denials() {
        let mut budget = MemoryBudget::new(Some(100));
        assert!(budget.request_grow(0, 60));
        assert!(budget.request_grow(0, 40));
        assert!(!budget.denied());
        assert!(!budget.request_grow(60, 61));
        assert!(budget.denied());
        assert!(budget.request_grow(40, 40));
    }

    #[test]
    fn no_limit_allows_everything() {
        let mut budget = MemoryBudget::new(None);
        assert!(budget.request_grow(0, u64::MAX));
        assert!(!budget.denied());
    }
}
