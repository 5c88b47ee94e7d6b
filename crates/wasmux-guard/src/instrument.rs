//! Rewrites a module so an engine that lacks them in-engine can stop the guest, hold it
//! to a memory limit and bound its call depth: wasm3 has no interrupt (its only hook,
//! `m3_Yield`, runs on calls, never on loop back-edges) and no memory cap but the
//! module's own; WasmEdge's interpreter keeps its frames on the heap with no depth limit
//! and its AOT code overflows the native stack into a crash.
//!
//! Four host imports are appended (module `wasmux_guard`):
//! - `poll() -> i32`: every loop iteration and every function entry spends one unit of
//!   fuel from a new global; when it runs out, `poll` is called: it traps if the run
//!   was killed and otherwise returns fresh fuel. A guest spinning in a loop, in
//!   recursion or in tail calls is thus stopped within `FUEL` (10,000) iterations or calls, at
//!   the cost of a few interpreted instructions each.
//! - `grow(delta) -> delta'`: placed before each `memory.grow` that fits the memory's
//!   own maximum (a grow past it, or past 4 GiB, gets a delta no memory can take
//!   without asking: it fails whatever the limit, and is no denial of it); it returns
//!   the delta when the run's memory budget allows it, else a delta no memory can take,
//!   so the grow itself fails with -1 as the guest expects (and the denial is recorded).
//! - `grow_table(delta) -> delta'`: the same before each `table.grow`, charging the
//!   new elements to the same budget (tables hold host memory too: 100M elements are
//!   800 MB).
//! - `deep()`, when asked for ([`Guards::max_depth`]): every function counts its
//!   activations in a new global on entry and uncounts them on every way out (the body
//!   is wrapped in a block, so a branch to the function's own label passes the
//!   uncount too; `return` and tail calls uncount before leaving); past the maximum,
//!   `deep` ends the guest as a stack overflow.
//!
//! Appended imports shift the indices of the module's own functions by four; every
//! reference (calls, exports, elements, `ref.func`, start) is remapped. Custom sections
//! are dropped: the `name` section's indices would be stale, and an engine's own
//! sections (WasmEdge's AOT native code) must never come from an image.

use std::convert::Infallible;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    BlockType, ConstExpr, EntityType, GlobalType, ImportSection, Instruction, SectionId,
    TypeSection, ValType,
};
use wasmparser::{Operator, Payload, TypeRef};

/// Import module of the two guard functions.
pub(crate) const GUARD_MODULE: &str = "wasmux_guard";
/// Import name of the loop poll.
pub(crate) const POLL: &str = "poll";
/// Import name of the grow check.
pub(crate) const GROW: &str = "grow";
/// Import name of the call-depth check.
pub(crate) const DEEP: &str = "deep";
/// Import name of the table-grow check.
pub(crate) const GROW_TABLE: &str = "grow_table";
/// Loop iterations and calls between two polls.
pub(crate) const FUEL: i32 = 10_000;
/// A `memory.grow` delta no 32-bit memory can take (> 65536 pages).
pub(crate) const DENIED_DELTA: u32 = u32::MAX;
/// The most pages a 32-bit memory can have (4 GiB).
const MAX_PAGES: u64 = 65_536;
/// How many imports the rewrite appends.
const ADDED_IMPORTS: u32 = 4;

/// The version of the rewrite's output: part of the precompile cache key of engines
/// that compile the rewritten module (WasmEdge AOT). Bump it on any change to what
/// [`instrument`] emits, so no cached native code of an older rewrite is reused.
pub const REWRITE_VERSION: u32 = 4;

/// Which guards an engine needs beyond fuel and memory, which every rewrite gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Guards {
    /// Bound the guest's call depth at this many activations (for engines whose own
    /// limit is missing or crashes the host); `None` leaves it to the engine.
    pub max_depth: Option<u32>,
}

/// A rewritten module and what the runner needs to know about it.
#[derive(Debug)]
pub struct Instrumented {
    /// The module to hand to the engine.
    pub bytes: Vec<u8>,
    /// What the module holds when instantiated (checked against the limit before
    /// running).
    pub initial: InitialSize,
}

/// What a module holds as soon as it is instantiated, which the memory limit counts
/// before it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InitialSize {
    /// Memory 0's initial size, in bytes.
    pub memory: u64,
    /// The initial elements of the module's own tables, all together.
    pub table_elements: u64,
}

impl InitialSize {
    /// As 16 bytes (little-endian), for a backend that stores it beside a precompiled
    /// artifact.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.memory.to_le_bytes());
        bytes[8..].copy_from_slice(&self.table_elements.to_le_bytes());
        bytes
    }

    /// Back from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let (memory, tables) = bytes.split_at(8);
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
        InitialSize {
            memory: word(memory),
            table_elements: word(tables),
        }
    }
}

/// Counts gathered in a first pass, to place the new types, imports and global.
#[derive(Debug, Default)]
struct Shape {
    types: u32,
    imported_functions: u32,
    imported_globals: u32,
    globals: u32,
    initial_memory: u64,
    /// The most pages memory 0 may ever have: its declared maximum, else 65,536 (4 GiB);
    /// `None` for a 64-bit memory. A grow past it fails whatever the limit, so the
    /// rewrite refuses it without asking the host: asked, the host would count it as a
    /// denial by the limit (and wasm3 reads a maximum of 0 as none, and grew such a
    /// memory).
    memory_ceiling: Option<u64>,
    initial_table_elements: u64,
    /// Result types of each type index (empty for non-function types).
    results: Vec<Vec<wasmparser::ValType>>,
    /// Type index of each function the module defines, in order.
    defined: Vec<u32>,
}

impl Shape {
    fn initial(&self) -> InitialSize {
        InitialSize {
            memory: self.initial_memory,
            table_elements: self.initial_table_elements,
        }
    }
}

fn shape(bytes: &[u8]) -> Result<Shape, wasmparser::BinaryReaderError> {
    let mut shape = Shape::default();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(s) => {
                for group in s {
                    for ty in group?.into_types() {
                        let results = match ty.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => f.results().to_vec(),
                            _ => Vec::new(),
                        };
                        shape.results.push(results);
                    }
                }
            }
            Payload::FunctionSection(s) => {
                for ty in s {
                    shape.defined.push(ty?);
                }
            }
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    match import?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => shape.imported_functions += 1,
                        TypeRef::Global(_) => shape.imported_globals += 1,
                        _ => {}
                    }
                }
            }
            Payload::GlobalSection(s) => shape.globals = s.count(),
            Payload::TableSection(s) => {
                for table in s {
                    let initial = table?.ty.initial;
                    shape.initial_table_elements =
                        shape.initial_table_elements.saturating_add(initial);
                }
            }
            Payload::MemorySection(s) => {
                if let Some(memory) = s.into_iter().next() {
                    let memory = memory?;
                    shape.initial_memory = memory.initial.saturating_mul(65536);
                    shape.memory_ceiling = (!memory.memory64)
                        .then(|| memory.maximum.unwrap_or(MAX_PAGES).min(MAX_PAGES));
                }
            }
            _ => {}
        }
    }
    shape.types = shape.results.len() as u32;
    Ok(shape)
}

/// Set (with the `bench-unguarded` feature only) to skip the rewrite: the engine runs the
/// module as given, without kill, memory cap or depth bound. For benchmarks measuring
/// what the guard costs; never honoured by a normal build.
pub const UNGUARDED_VAR: &str = "WASMUX_UNGUARDED";

/// Whether this process runs guarded engines without the rewrite ([`UNGUARDED_VAR`]).
pub fn unguarded() -> bool {
    cfg!(feature = "bench-unguarded") && std::env::var_os(UNGUARDED_VAR).is_some()
}

/// The rewrite's version as it goes into cache keys: [`REWRITE_VERSION`], or
/// `unguarded`, so code compiled from an unrewritten module is never taken for a
/// guarded one's.
pub fn rewrite_version() -> String {
    if unguarded() {
        "unguarded".into()
    } else {
        REWRITE_VERSION.to_string()
    }
}

/// Why a module could not be rewritten: it is not valid Wasm after all (the engines that
/// validate only after the rewrite learn it here), or the rewrite met something it
/// cannot re-encode.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    /// The module does not parse.
    #[error("{0}")]
    Parse(#[from] wasmparser::BinaryReaderError),
    /// The module parses but cannot be re-encoded with the guards.
    #[error("instrumenting the module: {0}")]
    Reencode(String),
}

/// Rewrites `bytes` (already validated) as described in the module docs; returns them
/// as they are when [`unguarded`].
pub fn instrument(bytes: &[u8], guards: Guards) -> Result<Instrumented, RewriteError> {
    let shape = shape(bytes)?;
    if unguarded() {
        return Ok(Instrumented {
            bytes: bytes.to_vec(),
            initial: shape.initial(),
        });
    }
    // Block types for wrapping bodies that return several values: `[] -> results`.
    let mut multi_results = Vec::new();
    let mut wrapper_types = vec![None; shape.results.len()];
    if guards.max_depth.is_some() {
        for (index, results) in shape.results.iter().enumerate() {
            if results.len() > 1 {
                wrapper_types[index] = Some(shape.types + 3 + multi_results.len() as u32);
                multi_results.push(results.clone());
            }
        }
    }
    let globals = shape.imported_globals + shape.globals;
    let mut guard = Guard {
        poll_type: shape.types,
        grow_type: shape.types + 1,
        deep_type: shape.types + 2,
        poll: shape.imported_functions,
        grow: shape.imported_functions + 1,
        deep: shape.imported_functions + 2,
        grow_table: shape.imported_functions + 3,
        fuel: globals,
        depth: globals + 1,
        scratch: globals + 2,
        max_depth: guards.max_depth,
        multi_results,
        wrapper_types,
        next_body: 0,
        shape,
        emitted: Emitted::default(),
    };
    let mut module = wasm_encoder::Module::new();
    guard
        .parse_core_module(&mut module, wasmparser::Parser::new(0), bytes)
        .map_err(|e| RewriteError::Reencode(e.to_string()))?;
    Ok(Instrumented {
        bytes: module.finish(),
        initial: guard.shape.initial(),
    })
}

/// Which of the sections carrying additions have been written.
#[derive(Debug, Default)]
struct Emitted {
    types: bool,
    imports: bool,
    globals: bool,
}

struct Guard {
    shape: Shape,
    poll_type: u32,
    grow_type: u32,
    deep_type: u32,
    /// Function index of `poll`.
    poll: u32,
    /// Function index of `grow`.
    grow: u32,
    /// Function index of `deep`.
    deep: u32,
    /// Function index of `grow_table` (of the same type as `grow`).
    grow_table: u32,
    /// Global index of the fuel counter.
    fuel: u32,
    /// Global index of the call-depth counter.
    depth: u32,
    /// Global index of a scratch word: a `memory.grow`'s delta, needed twice.
    scratch: u32,
    max_depth: Option<u32>,
    /// Result lists that need a type of their own to type a wrapping block.
    multi_results: Vec<Vec<wasmparser::ValType>>,
    /// For each type index, the `[] -> results` type added for it, if any.
    wrapper_types: Vec<Option<u32>>,
    /// Index (among defined functions) of the next function body.
    next_body: usize,
    emitted: Emitted,
}

impl Guard {
    fn add_types(&mut self, types: &mut TypeSection) -> Result<(), ReencodeError> {
        types.ty().function([], [ValType::I32]);
        types.ty().function([ValType::I32], [ValType::I32]);
        types.ty().function([], []);
        for results in self.multi_results.clone() {
            let results: Vec<ValType> = results
                .into_iter()
                .map(|t| self.val_type(t))
                .collect::<Result<_, _>>()?;
            types.ty().function([], results);
        }
        self.emitted.types = true;
        Ok(())
    }

    fn add_imports(&mut self, imports: &mut ImportSection) {
        imports.import(GUARD_MODULE, POLL, EntityType::Function(self.poll_type));
        imports.import(GUARD_MODULE, GROW, EntityType::Function(self.grow_type));
        imports.import(GUARD_MODULE, DEEP, EntityType::Function(self.deep_type));
        imports.import(
            GUARD_MODULE,
            GROW_TABLE,
            EntityType::Function(self.grow_type),
        );
        self.emitted.imports = true;
    }

    fn add_globals(&mut self, globals: &mut wasm_encoder::GlobalSection) {
        let ty = GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        };
        globals.global(ty, &ConstExpr::i32_const(FUEL));
        globals.global(ty, &ConstExpr::i32_const(0));
        globals.global(ty, &ConstExpr::i32_const(0));
        self.emitted.globals = true;
    }

    /// Before a `memory.grow` of memory 0: the delta the grow is to take. A 32-bit
    /// memory's grow past its ceiling gets [`DENIED_DELTA`] without asking the host
    /// (`size + delta > ceiling ? DENIED_DELTA : grow(delta)`, the delta kept in the
    /// scratch global); any other grow asks the host's `grow`.
    fn guard_memory_grow(&self, f: &mut wasm_encoder::Function) {
        let Some(ceiling) = self.shape.memory_ceiling else {
            f.instruction(&Instruction::Call(self.grow));
            return;
        };
        f.instruction(&Instruction::GlobalSet(self.scratch))
            .instruction(&Instruction::MemorySize(0))
            .instruction(&Instruction::I64ExtendI32U)
            .instruction(&Instruction::GlobalGet(self.scratch))
            .instruction(&Instruction::I64ExtendI32U)
            .instruction(&Instruction::I64Add)
            .instruction(&Instruction::I64Const(ceiling as i64))
            .instruction(&Instruction::I64GtU)
            .instruction(&Instruction::If(BlockType::Result(ValType::I32)))
            .instruction(&Instruction::I32Const(DENIED_DELTA as i32))
            .instruction(&Instruction::Else)
            .instruction(&Instruction::GlobalGet(self.scratch))
            .instruction(&Instruction::Call(self.grow))
            .instruction(&Instruction::End);
    }

    /// At function entry and after `loop`: spend one unit of fuel, or poll the host
    /// when none is left.
    fn loop_check(&self, f: &mut wasm_encoder::Function) {
        f.instructions()
            .global_get(self.fuel)
            .if_(BlockType::Empty)
            .global_get(self.fuel)
            .i32_const(1)
            .i32_sub()
            .global_set(self.fuel)
            .else_()
            .call(self.poll)
            .global_set(self.fuel)
            .end();
    }

    /// At function entry: count the activation; past the maximum, call `deep`.
    fn enter(&self, f: &mut wasm_encoder::Function, max_depth: u32) {
        f.instructions()
            .global_get(self.depth)
            .i32_const(1)
            .i32_add()
            .global_set(self.depth)
            .global_get(self.depth)
            .i32_const(max_depth as i32)
            .i32_gt_u()
            .if_(BlockType::Empty)
            .call(self.deep)
            .end();
    }

    /// On every way out of a function: uncount the activation.
    fn leave(&self, f: &mut wasm_encoder::Function) {
        f.instructions()
            .global_get(self.depth)
            .i32_const(1)
            .i32_sub()
            .global_set(self.depth);
    }

    /// The block type wrapping the body of a function of type `ty`.
    fn body_block(&mut self, ty: u32) -> Result<BlockType, ReencodeError> {
        let results = self
            .shape
            .results
            .get(ty as usize)
            .cloned()
            .unwrap_or_default();
        Ok(match results.as_slice() {
            [] => BlockType::Empty,
            [one] => BlockType::Result(self.val_type(*one)?),
            _ => BlockType::FunctionType(
                self.wrapper_types
                    .get(ty as usize)
                    .copied()
                    .flatten()
                    .unwrap_or_default(),
            ),
        })
    }
}

type ReencodeError = reencode::Error<Infallible>;

/// Position of a section in a module's required order.
fn rank(id: SectionId) -> u8 {
    match id {
        SectionId::Custom => 0,
        SectionId::Type => 1,
        SectionId::Import => 2,
        SectionId::Function => 3,
        SectionId::Table => 4,
        SectionId::Memory => 5,
        SectionId::Tag => 6,
        SectionId::Global => 7,
        SectionId::Export => 8,
        SectionId::Start => 9,
        SectionId::Element => 10,
        SectionId::DataCount => 11,
        SectionId::Code => 12,
        SectionId::Data => 13,
    }
}

impl Reencode for Guard {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError> {
        Ok(if func < self.shape.imported_functions {
            func
        } else {
            func + ADDED_IMPORTS
        })
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_type_section(self, types, section)?;
        self.add_types(types)
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_global_section(self, globals, section)?;
        self.add_globals(globals);
        Ok(())
    }

    /// Writes the sections a module lacks but the additions need, in their place.
    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), ReencodeError> {
        let due = |id: SectionId| before.is_none_or(|next| rank(next) > rank(id));
        if !self.emitted.types && due(SectionId::Type) {
            let mut types = TypeSection::new();
            self.add_types(&mut types)?;
            module.section(&types);
        }
        if !self.emitted.imports && due(SectionId::Import) {
            let mut imports = ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
        }
        if !self.emitted.globals && due(SectionId::Global) {
            let mut globals = wasm_encoder::GlobalSection::new();
            self.add_globals(&mut globals);
            module.section(&globals);
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        // All dropped: the `name` section's indices would be stale, and an engine's own
        // sections (WasmEdge keeps AOT native code in one) must never come from an image.
        let _ = (module, section);
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError> {
        let mut f = self.new_function_with_parsed_locals(&body)?;
        let ty = self
            .shape
            .defined
            .get(self.next_body)
            .copied()
            .unwrap_or_default();
        self.next_body += 1;
        // On entry too: recursion and tail calls spin without any loop.
        self.loop_check(&mut f);
        if let Some(max_depth) = self.max_depth {
            self.enter(&mut f, max_depth);
            let block = self.body_block(ty)?;
            f.instruction(&Instruction::Block(block));
        }
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let operator = reader.read()?;
            let is_loop = matches!(operator, Operator::Loop { .. });
            let leaves = matches!(
                operator,
                Operator::Return
                    | Operator::ReturnCall { .. }
                    | Operator::ReturnCallIndirect { .. }
                    | Operator::ReturnCallRef { .. }
            );
            match operator {
                Operator::MemoryGrow { mem: 0 } => self.guard_memory_grow(&mut f),
                Operator::TableGrow { .. } => {
                    f.instruction(&Instruction::Call(self.grow_table));
                }
                _ => {}
            }
            if self.max_depth.is_some() {
                if leaves {
                    self.leave(&mut f);
                } else if reader.eof() {
                    // The body's final `end`: close the wrapping block first.
                    f.instruction(&Instruction::End);
                    self.leave(&mut f);
                }
            }
            f.instruction(&self.instruction(operator)?);
            if is_loop {
                self.loop_check(&mut f);
            }
        }
        code.function(&f);
        Ok(())
    }
}
