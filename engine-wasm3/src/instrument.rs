//! Rewrites a module so wasm3 can be stopped and held to a memory limit, neither of
//! which its interpreter offers: wasm3 has no interrupt (its only hook, `m3_Yield`, runs
//! on calls, never on loop back-edges) and enforces no memory cap but the module's own.
//!
//! Two host imports are appended (module [`GUARD_MODULE`]):
//! - `poll() -> i32`: every loop iteration and every function entry spends one unit of
//!   fuel from a new global; when it runs out, `poll` is called: it traps if the run
//!   was killed and otherwise returns fresh fuel. A guest spinning in a loop, in
//!   recursion or in tail calls is thus stopped within [`FUEL`] iterations or calls, at
//!   the cost of a few interpreted instructions each.
//! - `grow(delta) -> delta'`: placed before each `memory.grow`; it returns the delta
//!   when the run's memory budget allows it, else a delta no memory can take, so the
//!   grow itself fails with -1 as the guest expects (and the denial is recorded).
//!
//! Appended imports shift the indices of the module's own functions by two; every
//! reference (calls, exports, elements, `ref.func`, start) is remapped. The `name`
//! section, whose indices would be stale, is dropped.

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
/// Loop iterations and calls between two polls.
pub(crate) const FUEL: i32 = 10_000;
/// A `memory.grow` delta no 32-bit memory can take (> 65536 pages).
pub(crate) const DENIED_DELTA: u32 = u32::MAX;

/// A rewritten module and what the runner needs to know about it.
#[derive(Debug)]
pub(crate) struct Instrumented {
    /// The module to hand to wasm3.
    pub bytes: Vec<u8>,
    /// Initial size of memory 0 in bytes (checked against the limit before running).
    pub initial_memory: u64,
}

/// Counts gathered in a first pass, to place the new types, imports and global.
#[derive(Debug, Default)]
struct Shape {
    types: u32,
    imported_functions: u32,
    imported_globals: u32,
    globals: u32,
    initial_memory: u64,
}

fn shape(bytes: &[u8]) -> Result<Shape, wasmparser::BinaryReaderError> {
    let mut shape = Shape::default();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(s) => shape.types = s.count(),
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
            Payload::MemorySection(s) => {
                if let Some(memory) = s.into_iter().next() {
                    shape.initial_memory = memory?.initial.saturating_mul(65536);
                }
            }
            _ => {}
        }
    }
    Ok(shape)
}

/// Rewrites `bytes` (already validated) as described in the module docs.
pub(crate) fn instrument(bytes: &[u8]) -> Result<Instrumented, String> {
    let shape = shape(bytes).map_err(|e| e.to_string())?;
    let mut guard = Guard {
        poll_type: shape.types,
        grow_type: shape.types + 1,
        poll: shape.imported_functions,
        grow: shape.imported_functions + 1,
        fuel: shape.imported_globals + shape.globals,
        shape,
        emitted: Emitted::default(),
    };
    let mut module = wasm_encoder::Module::new();
    guard
        .parse_core_module(&mut module, wasmparser::Parser::new(0), bytes)
        .map_err(|e| format!("instrumenting the module for wasm3: {e}"))?;
    Ok(Instrumented {
        bytes: module.finish(),
        initial_memory: guard.shape.initial_memory,
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
    /// Function index of `poll`.
    poll: u32,
    /// Function index of `grow`.
    grow: u32,
    /// Global index of the fuel counter.
    fuel: u32,
    emitted: Emitted,
}

impl Guard {
    fn add_types(&mut self, types: &mut TypeSection) {
        types.ty().function([], [ValType::I32]);
        types.ty().function([ValType::I32], [ValType::I32]);
        self.emitted.types = true;
    }

    fn add_imports(&mut self, imports: &mut ImportSection) {
        imports.import(GUARD_MODULE, POLL, EntityType::Function(self.poll_type));
        imports.import(GUARD_MODULE, GROW, EntityType::Function(self.grow_type));
        self.emitted.imports = true;
    }

    fn add_fuel(&mut self, globals: &mut wasm_encoder::GlobalSection) {
        let ty = GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        };
        globals.global(ty, &ConstExpr::i32_const(FUEL));
        self.emitted.globals = true;
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
            func + 2
        })
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_type_section(self, types, section)?;
        self.add_types(types);
        Ok(())
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
        self.add_fuel(globals);
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
            self.add_types(&mut types);
            module.section(&types);
        }
        if !self.emitted.imports && due(SectionId::Import) {
            let mut imports = ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
        }
        if !self.emitted.globals && due(SectionId::Global) {
            let mut globals = wasm_encoder::GlobalSection::new();
            self.add_fuel(&mut globals);
            module.section(&globals);
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        if section.name() == "name" {
            return Ok(());
        }
        reencode::utils::parse_custom_section(self, module, section)
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError> {
        let mut f = self.new_function_with_parsed_locals(&body)?;
        // On entry too: recursion and tail calls spin without any loop.
        self.loop_check(&mut f);
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let operator = reader.read()?;
            let is_loop = matches!(operator, Operator::Loop { .. });
            if let Operator::MemoryGrow { mem: 0 } = operator {
                f.instruction(&Instruction::Call(self.grow));
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
