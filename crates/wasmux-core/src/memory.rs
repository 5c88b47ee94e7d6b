//! `MemoryBudget`: the memory-limit accounting every engine's limiter hook delegates to.
//! Tables count too: a `table.grow` of 100M elements is 800 MB of host memory.

/// What one table element costs against the limit: a pointer, which is what the
/// engines store per element of a `funcref` or `externref` table.
pub const TABLE_ELEMENT_BYTES: u64 = 8;

/// Tracks the guest's total memory (over all its memories and tables) against a limit, and
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

    /// [`request_grow`](Self::request_grow) for a memory that may hold at most
    /// `maximum` bytes (its own declared maximum, or what its index type can address). A
    /// grow past that fails whatever the limit, so it is refused here without being
    /// charged or counted as a denial: counted, the run would end "out of memory" where
    /// the guest only asked for more than its own memory may have.
    pub fn request_grow_within(
        &mut self,
        current: u64,
        desired: u64,
        maximum: Option<u64>,
    ) -> bool {
        maximum.is_none_or(|maximum| desired <= maximum) && self.request_grow(current, desired)
    }

    /// [`request_table_grow`](Self::request_table_grow) for a table of at most `maximum`
    /// elements, as [`request_grow_within`](Self::request_grow_within) for memory.
    pub fn request_table_grow_within(
        &mut self,
        current: u64,
        desired: u64,
        maximum: Option<u64>,
    ) -> bool {
        maximum.is_none_or(|maximum| desired <= maximum)
            && self.request_table_grow(current, desired)
    }

    /// One table asks to grow from `current` to `desired` elements (a new table asks
    /// from 0), counted at [`TABLE_ELEMENT_BYTES`] each in the same budget as memory.
    pub fn request_table_grow(&mut self, current: u64, desired: u64) -> bool {
        self.request_grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }

    /// The bytes still free under the limit; `None` without a limit.
    pub fn remaining(&self) -> Option<u64> {
        self.limit.map(|limit| limit.saturating_sub(self.used))
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
    fn a_grow_past_the_maximum_is_refused_but_neither_charged_nor_a_denial() {
        let mut budget = MemoryBudget::new(Some(100));
        assert!(!budget.request_grow_within(10, 90, Some(50)));
        assert!(!budget.denied());
        assert!(budget.request_grow_within(10, 100, Some(100)));
        assert!(!budget.request_table_grow_within(0, 7, Some(6)));
        assert!(!budget.denied());
        assert!(!budget.request_grow_within(100, 101, None));
        assert!(budget.denied());
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
    fn tables_share_the_budget_with_memory() {
        let mut budget = MemoryBudget::new(Some(16 << 20));
        assert!(budget.request_grow(0, 8 << 20));
        assert!(budget.request_table_grow(0, 1 << 20));
        assert!(!budget.request_table_grow(1 << 20, 100_000_000));
        assert!(budget.denied());
    }

    #[test]
    fn no_limit_allows_everything() {
        let mut budget = MemoryBudget::new(None);
        assert!(budget.request_grow(0, u64::MAX));
        assert!(!budget.denied());
    }
}
