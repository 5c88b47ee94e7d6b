//! Differential execution: one import-free core module run on every engine, its
//! outcome compared with wasmtime's (docs/reliability.md, "Differential fuzzing").
//!
//! The fuzz target `differential` (`fuzz/`) generates the modules with wasm-smith; the
//! disagreements it finds are kept under `fuzz-regressions/differential/` and replayed
//! here on every test run. A module qualifies when it imports nothing and exports
//! `run: [] -> [i64]`; [`observable`] turns it into a WASI command whose `_start` calls
//! `run` and then writes one 64-bit hash of everything the run left behind (its result,
//! every numeric global and all of linear memory) to stdout. The outcome compared is
//! the typed exit status (a trap by its kind) and that hash.

use std::convert::Infallible;
use std::io::{Read, Seek};

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    MemArg, MemorySection, MemoryType, Module, TypeSection, ValType,
};
use wasmparser::Payload;
use wasmux::{
    DynEngine, EngineOptions, ExitStatus, RunControl, RunSpec, Tier, TrapKind, WasmBinary,
};

/// The export a generated module must have: the entry whose effects are compared.
pub const RUN_EXPORT: &str = "run";

/// The memory limit of every run: the same denial point on every engine, so a guest
/// that grows without bound fails alike instead of by each host's own exhaustion.
pub const MEMORY_LIMIT: u64 = 64 << 20;

/// The `(module (func (export "run") (result i64)))` shape, for wasm-smith's
/// `Config::exports`: generated modules export exactly this.
pub fn required_exports() -> Vec<u8> {
    module_returning(0, None)
}

/// A module whose `run` returns `value`, with `imports` as its import section if given.
fn module_returning(value: i64, imports: Option<&ImportSection>) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I64]);
    module.section(&types);
    if let Some(imports) = imports {
        module.section(imports);
    }
    let mut functions = FunctionSection::new();
    functions.function(0);
    let mut exports = ExportSection::new();
    exports.export(RUN_EXPORT, ExportKind::Func, 0);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instructions().i64_const(value).end();
    code.function(&body);
    module.section(&functions).section(&exports).section(&code);
    module.finish()
}

/// Why a module cannot be observed.
#[derive(Debug)]
pub struct NotObservable(pub String);

impl std::fmt::Display for NotObservable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Rewrites `module` into a WASI command that runs `run` and prints the hash of its
/// effects (8 bytes, little endian). `fd_write` becomes function 0, so every function
/// index moves up by one; memory 0 is exported as `memory`, and a module without
/// memory gets one page.
pub fn observable(module: &[u8]) -> Result<Vec<u8>, NotObservable> {
    let shape = Shape::of(module)?;
    let mut observer = Observer {
        shape,
        emitted_imports: false,
        emitted_memory: false,
    };
    let mut out = Module::new();
    observer
        .parse_core_module(&mut out, wasmparser::Parser::new(0), module)
        .map_err(|e| NotObservable(e.to_string()))?;
    let command = out.finish();
    // An invalid command would fail alike on every engine and pass for agreement.
    wasmparser::Validator::new()
        .validate_all(&command)
        .map_err(|e| NotObservable(format!("the observable command is invalid: {e}")))?;
    Ok(command)
}

/// What `observable` needs to know before rewriting.
#[derive(Debug, Default)]
struct Shape {
    types: u32,
    defined_functions: u32,
    /// The function index of `run`, before the shift.
    run: Option<u32>,
    /// The globals hashed: index and type (all are numeric without reference types).
    globals: Vec<(u32, wasmparser::ValType)>,
    has_memory: bool,
}

impl Shape {
    fn of(module: &[u8]) -> Result<Shape, NotObservable> {
        let err = |e: wasmparser::BinaryReaderError| NotObservable(e.to_string());
        let mut shape = Shape::default();
        for payload in wasmparser::Parser::new(0).parse_all(module) {
            match payload.map_err(err)? {
                Payload::ImportSection(s) if s.count() > 0 => {
                    return Err(NotObservable("the module imports something".into()));
                }
                Payload::TypeSection(s) => shape.types = s.count(),
                Payload::FunctionSection(s) => shape.defined_functions = s.count(),
                Payload::MemorySection(s) => shape.has_memory = s.count() > 0,
                Payload::StartSection { .. } => {
                    return Err(NotObservable("the module has a start function".into()));
                }
                Payload::GlobalSection(s) => {
                    for (index, global) in (0..).zip(s) {
                        let ty = global.map_err(err)?.ty.content_type;
                        if ty.is_reference_type() || ty == wasmparser::ValType::V128 {
                            return Err(NotObservable(format!("global {index} is {ty}")));
                        }
                        shape.globals.push((index, ty));
                    }
                }
                Payload::ExportSection(s) => {
                    for export in s {
                        let export = export.map_err(err)?;
                        if export.name == RUN_EXPORT
                            && export.kind == wasmparser::ExternalKind::Func
                        {
                            shape.run = Some(export.index);
                        }
                        if export.name == "_start" || export.name == "memory" {
                            let name = export.name;
                            return Err(NotObservable(format!("the module exports {name}")));
                        }
                    }
                }
                _ => {}
            }
        }
        if shape.run.is_none() {
            return Err(NotObservable(format!("no `{RUN_EXPORT}` export")));
        }
        Ok(shape)
    }
}

/// FNV-1a's 64-bit offset basis and prime: a cheap hash a few instructions can compute.
const FNV_OFFSET: i64 = 0xcbf2_9ce4_8422_2325_u64 as i64;
const FNV_PRIME: i64 = 0x0000_0100_0000_01b3;

struct Observer {
    shape: Shape,
    emitted_imports: bool,
    emitted_memory: bool,
}

impl Observer {
    /// Type indices of the two functions added: `fd_write` and `_start`.
    fn fd_write_type(&self) -> u32 {
        self.shape.types
    }

    fn start_type(&self) -> u32 {
        self.shape.types + 1
    }

    /// `_start`, the last function: after the module's own, which moved up by one.
    fn start_index(&self) -> u32 {
        1 + self.shape.defined_functions
    }

    fn add_imports(&mut self, imports: &mut ImportSection) {
        imports.import(
            "wasi_snapshot_preview1",
            "fd_write",
            EntityType::Function(self.fd_write_type()),
        );
        self.emitted_imports = true;
    }

    /// `_start`: h = hash(run(), globals, memory); memory[0..8] = h; fd_write(1, h).
    fn start_body(&self) -> Function {
        const HASH: u32 = 0;
        const ADDR: u32 = 1;
        const END: u32 = 2;
        let mut f = Function::new([(1, ValType::I64), (2, ValType::I32)]);
        let mut i = f.instructions();
        let mix = |i: &mut wasm_encoder::InstructionSink<'_>| {
            i.local_get(HASH)
                .i64_xor()
                .i64_const(FNV_PRIME)
                .i64_mul()
                .local_set(HASH);
        };
        i.i64_const(FNV_OFFSET).local_set(HASH);
        i.call(self.shape.run.unwrap_or_default() + 1);
        mix(&mut i);
        for &(global, ty) in &self.shape.globals {
            i.global_get(global);
            match ty {
                wasmparser::ValType::I32 => {
                    i.i64_extend_i32_u();
                }
                wasmparser::ValType::F32 => {
                    i.i32_reinterpret_f32().i64_extend_i32_u();
                }
                wasmparser::ValType::F64 => {
                    i.i64_reinterpret_f64();
                }
                _ => {}
            }
            mix(&mut i);
        }
        let word = MemArg {
            offset: 0,
            align: 3,
            target: wasm_encoder::MemArgTarget::Memory(0),
            ordering: None,
        };
        let half = MemArg { align: 2, ..word };
        // Every 8-byte word of memory: a memory is a whole number of 64 KiB pages.
        i.memory_size(0).i32_const(16).i32_shl().local_set(END);
        i.block(wasm_encoder::BlockType::Empty)
            .loop_(wasm_encoder::BlockType::Empty)
            .local_get(ADDR)
            .local_get(END)
            .i32_ge_u()
            .br_if(1)
            .local_get(ADDR)
            .i64_load(word);
        mix(&mut i);
        i.local_get(ADDR)
            .i32_const(8)
            .i32_add()
            .local_set(ADDR)
            .br(0)
            .end()
            .end();
        // Somewhere to write from: an empty memory that cannot grow prints nothing.
        i.memory_size(0)
            .i32_eqz()
            .if_(wasm_encoder::BlockType::Empty)
            .i32_const(1)
            .memory_grow(0)
            .i32_const(-1)
            .i32_eq()
            .br_if(1)
            .end();
        i.i32_const(0).local_get(HASH).i64_store(word);
        i.i32_const(8).i32_const(0).i32_store(half);
        i.i32_const(12).i32_const(8).i32_store(half);
        i.i32_const(1)
            .i32_const(8)
            .i32_const(1)
            .i32_const(16)
            .call(0)
            .drop()
            .end();
        f
    }
}

type ReencodeError = reencode::Error<Infallible>;

impl Reencode for Observer {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError> {
        Ok(func + 1)
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([ValType::I32; 4], [ValType::I32]);
        types.ty().function([], []);
        Ok(())
    }

    /// wasm-smith writes an empty import section about half the time: `fd_write`
    /// goes into it (a second import section would make the module invalid).
    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_function_section(self, functions, section)?;
        functions.function(self.start_type());
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_export_section(self, exports, section)?;
        exports.export("_start", ExportKind::Func, self.start_index());
        // WASI reads the iovec `_start` hands `fd_write` through the exported memory.
        exports.export("memory", ExportKind::Memory, 0);
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        reencode::utils::parse_code_section(self, code, section)?;
        code.function(&self.start_body());
        Ok(())
    }

    /// The import section (a generated module has none) and, for a module without
    /// memory, a one-page memory, each written in its place: the imports just before
    /// the functions, the memory just before the first section that follows memories
    /// (an observable module has functions and exports, so both places come).
    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> Result<(), ReencodeError> {
        use wasm_encoder::SectionId;
        if !self.emitted_imports && before == Some(SectionId::Function) {
            let mut imports = ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
        }
        let past_memories = matches!(
            before,
            Some(SectionId::Tag | SectionId::Global | SectionId::Export)
        );
        if !self.shape.has_memory && !self.emitted_memory && past_memories {
            let mut memories = MemorySection::new();
            memories.memory(MemoryType {
                minimum: 1,
                maximum: Some(1),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
            module.section(&memories);
            self.emitted_memory = true;
        }
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        _module: &mut Module,
        _section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        // Dropped: a `name` section's function indices would be stale.
        Ok(())
    }
}

/// How one engine's run ended, in the terms engines must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The engine refused or failed the module before or while running it.
    Error(String),
    /// It ran: the typed status (a trap's message cleared: engines word it their own
    /// way) and what it wrote to stdout.
    Ran {
        /// The exit status, message-free.
        status: ExitStatus,
        /// The hash `_start` printed, if it got that far.
        stdout: Vec<u8>,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Error(e) => write!(f, "error: {e}"),
            Outcome::Ran { status, stdout } => {
                write!(f, "{status}, stdout {}", hex(stdout))
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads and runs `command` (from [`observable`]) on `engine` under the shared limits.
pub fn run_on(engine: &dyn DynEngine, command: &[u8]) -> Outcome {
    let attempt = || -> Result<Outcome, String> {
        let wasm =
            WasmBinary::new(command.to_vec(), "differential.wasm").map_err(|e| e.to_string())?;
        let module = engine.load(&wasm).map_err(|e| e.to_string())?;
        let mut stdout = tempfile::tempfile().map_err(|e| e.to_string())?;
        let mut spec = RunSpec::new(wasm);
        spec.stdio.stdin = wasmux::StdioStream::Null;
        spec.stdio.stderr = wasmux::StdioStream::Null;
        spec.stdio.stdout = stdout.try_clone().map_err(|e| e.to_string())?.into();
        spec.limits.memory_bytes = Some(MEMORY_LIMIT);
        spec.limits.timeout = Some(std::time::Duration::from_secs(60));
        let status = module
            .run(spec, &RunControl::new())
            .map_err(|e| e.to_string())?;
        let mut printed = Vec::new();
        stdout.rewind().map_err(|e| e.to_string())?;
        stdout
            .read_to_end(&mut printed)
            .map_err(|e| e.to_string())?;
        let status = match status {
            ExitStatus::Trapped { kind, .. } => ExitStatus::Trapped {
                kind,
                message: String::new(),
            },
            other => other,
        };
        Ok(Outcome::Ran {
            status,
            stdout: printed,
        })
    };
    attempt().unwrap_or_else(Outcome::Error)
}

/// How `other` compares with the reference outcome.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The same outcome.
    Agree,
    /// The outcomes may differ by the spec: how deep the stack goes is each engine's
    /// own (a deep recursion overflows on one and runs out of fuel on another).
    Incomparable,
    /// A disagreement: a bug in an engine or in wasmux's contract.
    Disagree,
}

/// Compares two outcomes of the same command.
pub fn compare(reference: &Outcome, other: &Outcome) -> Verdict {
    let overflowed = |o: &Outcome| {
        matches!(
            o,
            Outcome::Ran {
                status: ExitStatus::Trapped {
                    kind: TrapKind::StackOverflow,
                    ..
                },
                ..
            }
        )
    };
    match (reference, other) {
        _ if overflowed(reference) || overflowed(other) => Verdict::Incomparable,
        (Outcome::Error(_), Outcome::Error(_)) => Verdict::Agree,
        (a, b) if a == b => Verdict::Agree,
        _ => Verdict::Disagree,
    }
}

/// The engines compared: wasmtime's optimizing tier (Cranelift) first, the reference;
/// then its baseline tier (Winch) and every other engine compiled in.
pub fn engines() -> Vec<(String, Box<dyn DynEngine>)> {
    let tier = |tier: Tier| {
        let engine = wasmux::engine_with_options("wasmtime", &EngineOptions::new().with_tier(tier));
        engine
            .ok()
            .map(|engine| (format!("wasmtime tier={}", tier.as_str()), engine))
    };
    let others = wasmux::ENGINES
        .iter()
        .filter(|e| e.name != "wasmtime")
        .filter_map(|e| Some((e.name.to_owned(), wasmux::engine_by_name(e.name).ok()?)));
    tier(Tier::Optimized)
        .into_iter()
        .chain(tier(Tier::Baseline))
        .chain(others)
        .collect()
}

/// Runs `command` on every engine of [`engines`] and reports each disagreement with
/// the reference, the first: empty when all agree.
pub fn disagreements(engines: &[(String, Box<dyn DynEngine>)], command: &[u8]) -> Vec<String> {
    let Some(((reference_name, reference), others)) = engines.split_first() else {
        return Vec::new();
    };
    let expected = run_on(reference.as_ref(), command);
    others
        .iter()
        .filter_map(|(name, engine)| {
            let got = run_on(engine.as_ref(), command);
            (compare(&expected, &got) == Verdict::Disagree)
                .then(|| format!("{reference_name}: {expected}\n{name}: {got}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_wasm_smith_is_given_has_the_run_export() {
        let shape = Shape::of(&required_exports()).unwrap();
        assert_eq!(shape.run, Some(0));
        assert!(!shape.has_memory);
    }

    /// An empty import section (wasm-smith writes one half the time) takes `fd_write`:
    /// the command stays valid and runs.
    #[test]
    fn an_empty_import_section_takes_the_added_import() {
        let module = module_returning(5, Some(&ImportSection::new()));
        let command = observable(&module).unwrap();
        let engine = wasmux::engine_by_name("wasmtime").unwrap();
        let outcome = run_on(engine.as_ref(), &command);
        assert!(
            matches!(&outcome, Outcome::Ran { status: ExitStatus::Exited(0), stdout } if stdout.len() == 8),
            "{outcome}"
        );
    }

    #[test]
    fn modules_that_import_or_start_are_not_observable() {
        let imports = wat::parse_str(
            r#"(module (import "m" "f" (func)) (func (export "run") (result i64) i64.const 0))"#,
        )
        .unwrap();
        assert!(observable(&imports).is_err());
        let start = wat::parse_str(
            r#"(module (func $s) (start $s) (func (export "run") (result i64) i64.const 0))"#,
        )
        .unwrap();
        assert!(observable(&start).is_err());
    }

    /// The hash `_start` computes, in Rust: FNV-1a over 64-bit values.
    fn expected_hash(values: &[u64]) -> Vec<u8> {
        let hash = values.iter().fold(FNV_OFFSET as u64, |h, v| {
            (h ^ v).wrapping_mul(FNV_PRIME as u64)
        });
        hash.to_le_bytes().to_vec()
    }

    fn run_wat(text: &str) -> Outcome {
        let command = observable(&wat::parse_str(text).unwrap()).unwrap();
        let engine = wasmux::engine_by_name("wasmtime").unwrap();
        run_on(engine.as_ref(), &command)
    }

    #[test]
    fn the_printed_hash_covers_the_result_the_globals_and_every_word_of_memory() {
        let outcome = run_wat(
            r#"(module
                (global $g (mut i32) (i32.const 0))
                (global f64 (f64.const 1.5))
                (memory 1)
                (func $helper (result i64) i64.const 42)
                (func (export "run") (result i64)
                    (global.set $g (i32.const -1))
                    (i64.store (i32.const 65528) (i64.const 7))
                    call $helper))"#,
        );
        let mut values = vec![42, 0xffff_ffff, 1.5f64.to_bits()];
        values.extend(std::iter::repeat_n(0, 8191));
        values.push(7);
        assert_eq!(
            outcome,
            Outcome::Ran {
                status: ExitStatus::Exited(0),
                stdout: expected_hash(&values),
            }
        );
    }

    #[test]
    fn a_module_without_memory_gets_a_page_to_print_from_and_a_trap_prints_nothing() {
        let outcome = run_wat(r#"(module (func (export "run") (result i64) i64.const 3))"#);
        let mut values = vec![3];
        values.extend(std::iter::repeat_n(0, 8192));
        assert_eq!(
            outcome,
            Outcome::Ran {
                status: ExitStatus::Exited(0),
                stdout: expected_hash(&values),
            }
        );
        let trapped = run_wat(
            r#"(module (func (export "run") (result i64) (i64.div_s (i64.const 1) (i64.const 0))))"#,
        );
        let expected = Outcome::Ran {
            status: ExitStatus::Trapped {
                kind: TrapKind::IntegerDivideByZero,
                message: String::new(),
            },
            stdout: Vec::new(),
        };
        assert_eq!(trapped, expected);
        assert_eq!(compare(&expected, &trapped), Verdict::Agree);
    }

    #[test]
    fn a_stack_overflow_is_incomparable_and_another_difference_is_a_disagreement() {
        let ran = |stdout: &[u8]| Outcome::Ran {
            status: ExitStatus::Exited(0),
            stdout: stdout.to_vec(),
        };
        let overflow = Outcome::Ran {
            status: ExitStatus::Trapped {
                kind: TrapKind::StackOverflow,
                message: String::new(),
            },
            stdout: Vec::new(),
        };
        assert_eq!(compare(&overflow, &ran(b"x")), Verdict::Incomparable);
        assert_eq!(compare(&ran(b"x"), &ran(b"y")), Verdict::Disagree);
        assert_eq!(
            compare(&ran(b"x"), &Outcome::Error("no".into())),
            Verdict::Disagree
        );
    }
}
