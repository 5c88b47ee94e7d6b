//! The memory limit: per-run tunables whose linear memories ask the run's
//! [`MemoryBudget`] before they are created or grown, like wasmtime's resource limiter.
//!
//! wasmer fixes tunables per engine, so each run uses a clone of the engine (sharing its
//! compiled code) carrying its own [`BudgetTunables`].

// `Tunables::create_vm_memory` and `create_vm_table` are unsafe trait methods; the
// implementations below only forward to `BaseTunables` under the same contract.
#![allow(unsafe_code)]

use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use wasmer::sys::vm::{
    LinearMemory, MemoryError, MemoryStyle, TableStyle, VMMemory, VMMemoryDefinition, VMTable,
    VMTableDefinition,
};
use wasmer::sys::{BaseTunables, Tunables};
use wasmer::{MemoryType, Pages, TableType};
use wasmux_core::MemoryBudget;
use wasmux_core::memory::TABLE_ELEMENT_BYTES;

/// One run's memory budget, shared by every memory the run creates.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedBudget(Arc<Mutex<MemoryBudget>>);

impl SharedBudget {
    pub(crate) fn new(limit: Option<u64>) -> Self {
        SharedBudget(Arc::new(Mutex::new(MemoryBudget::new(limit))))
    }

    fn lock(&self) -> MutexGuard<'_, MemoryBudget> {
        // The budget is plain counters, consistent after any single update.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the limit refused a memory during the run.
    pub(crate) fn denied(&self) -> bool {
        self.lock().denied()
    }

    /// A new table's type under the limit: its initial elements are charged to the
    /// budget, and its maximum lowered to what the budget has left. wasmer's
    /// `table.grow` has no hook to ask at each grow, so a table may grow to the share
    /// left when it was made (docs/engines.md, "Limits").
    fn bound_table(&self, ty: &TableType) -> Result<TableType, String> {
        let mut budget = self.lock();
        if !budget.request_table_grow(0, u64::from(ty.minimum)) {
            return Err(format!(
                "the memory limit refuses a table of {} elements",
                ty.minimum
            ));
        }
        let mut bounded = *ty;
        if let Some(left) = budget.remaining() {
            let most = u32::try_from(left / TABLE_ELEMENT_BYTES)
                .unwrap_or(u32::MAX)
                .saturating_add(ty.minimum);
            bounded.maximum = Some(ty.maximum.map_or(most, |max| max.min(most)));
        }
        Ok(bounded)
    }

    fn request(&self, current: Pages, desired: Pages) -> bool {
        self.lock()
            .request_grow(current.bytes().0 as u64, desired.bytes().0 as u64)
    }
}

/// `BaseTunables`, with every linear memory accounted against a [`SharedBudget`].
pub(crate) struct BudgetTunables {
    base: BaseTunables,
    budget: SharedBudget,
}

impl BudgetTunables {
    pub(crate) fn new(budget: SharedBudget) -> Self {
        BudgetTunables {
            base: BaseTunables::new(),
            budget,
        }
    }

    fn admit(&self, ty: &MemoryType) -> Result<(), MemoryError> {
        if self.budget.request(Pages(0), ty.minimum) {
            Ok(())
        } else {
            Err(MemoryError::Generic(format!(
                "the memory limit refuses an initial memory of {} pages",
                ty.minimum.0
            )))
        }
    }

    fn wrap(&self, inner: VMMemory) -> VMMemory {
        VMMemory(Box::new(BudgetedMemory {
            inner,
            budget: self.budget.clone(),
        }))
    }
}

impl Tunables for BudgetTunables {
    fn memory_style(&self, memory: &MemoryType) -> MemoryStyle {
        self.base.memory_style(memory)
    }

    fn table_style(&self, table: &TableType) -> TableStyle {
        self.base.table_style(table)
    }

    fn create_host_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
    ) -> Result<VMMemory, MemoryError> {
        self.admit(ty)?;
        Ok(self.wrap(self.base.create_host_memory(ty, style)?))
    }

    unsafe fn create_vm_memory(
        &self,
        ty: &MemoryType,
        style: &MemoryStyle,
        vm_definition_location: NonNull<VMMemoryDefinition>,
    ) -> Result<VMMemory, MemoryError> {
        self.admit(ty)?;
        // SAFETY: forwarded unchanged; the caller upholds `create_vm_memory`'s contract.
        let inner = unsafe {
            self.base
                .create_vm_memory(ty, style, vm_definition_location)?
        };
        Ok(self.wrap(inner))
    }

    fn create_host_table(&self, ty: &TableType, style: &TableStyle) -> Result<VMTable, String> {
        self.base
            .create_host_table(&self.budget.bound_table(ty)?, style)
    }

    unsafe fn create_vm_table(
        &self,
        ty: &TableType,
        style: &TableStyle,
        vm_definition_location: NonNull<VMTableDefinition>,
    ) -> Result<VMTable, String> {
        let ty = self.budget.bound_table(ty)?;
        // SAFETY: forwarded with a lower maximum only; the caller upholds
        // `create_vm_table`'s contract.
        unsafe {
            self.base
                .create_vm_table(&ty, style, vm_definition_location)
        }
    }
}

/// A linear memory that asks the budget before every grow.
#[derive(Debug)]
struct BudgetedMemory {
    inner: VMMemory,
    budget: SharedBudget,
}

impl LinearMemory for BudgetedMemory {
    fn ty(&self) -> MemoryType {
        self.inner.ty()
    }

    fn size(&self) -> Pages {
        self.inner.size()
    }

    fn style(&self) -> MemoryStyle {
        self.inner.style()
    }

    /// The budget is told the memory's own maximum (or 4 GiB): a grow past it fails
    /// without counting as a denial by the limit (found by the differential fuzzer:
    /// `(memory 0 0)` grown by a huge delta, then read, ended "out of memory").
    fn grow(&mut self, delta: Pages) -> Result<Pages, MemoryError> {
        let current = self.inner.size();
        let desired = Pages(current.0.saturating_add(delta.0));
        let ceiling = self.inner.ty().maximum.unwrap_or(Pages::max_value());
        let allowed = self.budget.lock().request_grow_within(
            current.bytes().0 as u64,
            desired.bytes().0 as u64,
            Some(ceiling.bytes().0 as u64),
        );
        if !allowed {
            return Err(MemoryError::CouldNotGrow {
                current,
                attempted_delta: delta,
            });
        }
        self.inner.grow(delta).inspect_err(|_| {
            // Give back what the failed grow was granted.
            self.budget.request(desired, current);
        })
    }

    fn vmmemory(&self) -> NonNull<VMMemoryDefinition> {
        self.inner.vmmemory()
    }

    fn try_clone(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Ok(Box::new(BudgetedMemory {
            inner: VMMemory(LinearMemory::try_clone(&self.inner)?),
            budget: self.budget.clone(),
        }))
    }

    fn copy(&self) -> Result<Box<dyn LinearMemory + Send + Sync + 'static>, MemoryError> {
        Ok(Box::new(BudgetedMemory {
            inner: VMMemory(LinearMemory::copy(&self.inner)?),
            budget: self.budget.clone(),
        }))
    }
}
