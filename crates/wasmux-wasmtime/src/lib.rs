//! The wasmtime backend of wasmux: core modules through WASI preview1 (wasmux's own, as
//! on every engine), components through `wasi:cli/run` (wasmtime-wasi's preview2). It
//! only translates a [`RunSpec`](wasmux_core::RunSpec) into wasmtime calls; every
//! policy (mapping, limits, exit statuses) comes from `wasmux-core`.
//!
//! - preopens: the descriptors the spec opened; read-only enforced by
//!   `wasmux-wasi-preview1` and wasmtime-wasi's `FsPerms::ReadOnly`, not host modes;
//!   device nodes refused by both (`nodes` there, `wasi` here);
//! - memory limit: the store's `ResourceLimiter`, accounting through `MemoryBudget`;
//! - kill and deadline: epoch interruption; the epoch only advances when some run is
//!   killed, and each store then checks its own `RunControl`, so other runs go on;
//! - fast paths: a loaded module is an `InstancePre` (imports resolved once, so each
//!   run only instantiates); the `pooling` option ([`EngineOptions`]) adds the pooling
//!   allocator for a shim running the same images many times; compiled code goes to the precompile
//!   cache through `Module::serialize` and comes back through `Module::deserialize`.

mod open_check;
mod outcome;
mod preview1;
mod run;
mod serve;
mod serve_p3;
mod stdio;
mod wasi;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use wasmtime::component::{Component, Linker as ComponentLinker};
use wasmtime::{
    Config, InstanceAllocationStrategy, Linker, Module as CoreModule, OptLevel,
    PoolingAllocationConfig, RegallocAlgorithm, Strategy,
};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmux_core::{
    Artifact, Capabilities, Descriptor, Engine, EngineInfo, EngineOptions, Error, OptionSupport,
    Precompile, Precompiler, Result, Support, Tier, WasmBinary, WasmFeature, WasmKind,
};

use crate::run::{ComponentState, CoreState};

/// The engine's name, as used by `--engine` and `run.oci.handler`.
pub const NAME: &str = DESCRIPTOR.name;

/// Name, wasmtime release built against, and capabilities.
pub const DESCRIPTOR: Descriptor = Descriptor {
    name: "wasmtime",
    version: "48.0.8",
    capabilities: Capabilities {
        components: Support::Supported,
        memory_limit: Support::Supported,
        interrupt: Support::Supported,
        serve_http: Support::Supported,
    },
    options: OptionSupport {
        pooling: Support::Supported,
        stack_size: Support::Supported,
        tiers: &[Tier::Baseline, Tier::Optimized, Tier::Auto],
        tier_refusal: "",
        wasm_features: Support::Supported,
    },
};

/// A wasmtime engine: the compiler that makes cache entries, and under `tier=auto` a
/// baseline one for big modules the cache does not hold yet.
#[derive(Clone)]
pub struct WasmtimeEngine {
    main: Compiler,
    /// Winch with the same configuration, built on the first big miss.
    baseline: Option<Arc<LazyCompiler>>,
}

/// A baseline compiler made when first needed (most runs never need one).
struct LazyCompiler {
    config: Config,
    pooled: bool,
    wasi_p3: bool,
    compiler: OnceLock<Compiler>,
}

/// Modules smaller than this compile optimized right away even under `tier=auto`: for
/// them Cranelift takes tens of milliseconds, and baseline code would only slow the run.
pub const BASELINE_MIN_BYTES: usize = 1 << 20;

impl WasmtimeEngine {
    /// Builds the engine: Cranelift (Winch for a first start of a big module),
    /// components and epoch interruption on, instances allocated on demand (the
    /// cheapest start for a process that runs once).
    pub fn new() -> Result<Self> {
        Self::with_options(&EngineOptions::default())
    }

    /// The engine with `options`. `pooling` selects wasmtime's pooling allocator:
    /// memories and instances come from a pool reserved up front for that many live
    /// instances, so a shim starting the same images again and again skips most `mmap`
    /// work per run; more live instances than that fail to instantiate, with a link
    /// error. `stack_size` is the Wasm stack limit; guests run on the calling thread,
    /// which must have that much stack to spare. `tier`: `optimized` is Cranelift,
    /// `baseline` Winch (its code cached as such), `auto` (the default) Cranelift except
    /// for a module of [`BASELINE_MIN_BYTES`] or more missing from the cache, which
    /// loads on Winch ([`CacheEvent::Deferred`](wasmux_core::CacheEvent::Deferred)).
    pub fn with_options(options: &EngineOptions) -> Result<Self> {
        let mut config = Config::new();
        let pooled = options.pooling.is_some();
        if let Some(max_instances) = options.pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_core_instances(max_instances)
                .total_memories(max_instances)
                .total_tables(max_instances)
                .total_component_instances(max_instances);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        if let Some(bytes) = options.stack_size {
            // wasmtime refuses a Wasm stack larger than its async stacks, even unused.
            config
                .async_stack_size(bytes.saturating_add(1 << 20))
                .max_wasm_stack(bytes);
        }
        // The async ABI (WASI 0.3) only when asked for: its store state costs every run.
        config
            .wasm_component_model(true)
            .concurrency_support(false)
            .epoch_interruption(true);
        let wasi_p3 = options.features.get(&WasmFeature::ComponentModelAsync) == Some(&true);
        for (feature, on) in &options.features {
            switch(&mut config, *feature, *on);
        }
        let mut winch = config.clone();
        winch.strategy(Strategy::Winch);
        // Under Winch, Cranelift still compiles the trampolines between the host and
        // Wasm (one per function a table or an export exposes: thousands for CPython).
        // Their code is a few moves; optimizing it and allocating registers the careful
        // way cost 17% of a cold CPython start, so Winch's trampolines get neither.
        winch
            .cranelift_opt_level(OptLevel::None)
            .cranelift_regalloc_algorithm(RegallocAlgorithm::SinglePass);
        Ok(match options.tier.unwrap_or(Tier::Auto) {
            Tier::Baseline => WasmtimeEngine {
                main: Compiler::new(&winch, "winch", pooled, wasi_p3)?,
                baseline: None,
            },
            Tier::Optimized => WasmtimeEngine {
                main: Compiler::new(&config, "cranelift", pooled, wasi_p3)?,
                baseline: None,
            },
            Tier::Auto => WasmtimeEngine {
                main: Compiler::new(&config, "cranelift", pooled, wasi_p3)?,
                baseline: Some(Arc::new(LazyCompiler {
                    config: winch,
                    pooled,
                    wasi_p3,
                    compiler: OnceLock::new(),
                })),
            },
        })
    }
}

/// Switches one Wasm proposal on or off (`wasm-<proposal>=on|off`). Validation then
/// refuses a module that uses a proposal switched off; a proposal a compiler cannot
/// do (Winch: GC, exceptions, tail calls) is refused when the engine is built.
fn switch(config: &mut Config, feature: WasmFeature, on: bool) {
    match feature {
        WasmFeature::Gc => config.wasm_function_references(on).wasm_gc(on),
        WasmFeature::Exceptions => config.wasm_exceptions(on),
        WasmFeature::Threads => config.wasm_threads(on),
        WasmFeature::TailCall => config.wasm_tail_call(on),
        WasmFeature::Memory64 => config.wasm_memory64(on),
        WasmFeature::Simd => config.wasm_simd(on),
        WasmFeature::MultiMemory => config.wasm_multi_memory(on),
        WasmFeature::ComponentModelAsync => config
            .concurrency_support(on)
            .wasm_component_model_async(on),
    };
}

impl LazyCompiler {
    fn get(&self) -> Result<&Compiler> {
        if let Some(compiler) = self.compiler.get() {
            return Ok(compiler);
        }
        let compiler = Compiler::new(&self.config, "winch", self.pooled, self.wasi_p3)?;
        Ok(self.compiler.get_or_init(|| compiler))
    }
}

/// One wasmtime engine (one compiler) with WASI linked once, shared by every module it
/// loads.
#[derive(Clone)]
struct Compiler {
    engine: wasmtime::Engine,
    /// The engine's configuration, kept where the engine allocates on demand: a
    /// served component's instances come from a pooled engine built from it
    /// ([`serve`](crate::serve)).
    on_demand: Option<Arc<Config>>,
    strategy: &'static str,
    /// The async ABI is on: a component exporting `wasi:http/handler@0.3.0` is linked
    /// with WASI 0.3 and served.
    wasi_p3: bool,
    core_linker: Linker<CoreState>,
    /// Built on the first component: most runs are core modules, and linking all of
    /// WASI preview2 would cost every start.
    component_linker: Arc<OnceLock<ComponentLinker<ComponentState>>>,
}

impl Compiler {
    /// `strategy`: which compiler `config` selects, named in cache fingerprints.
    fn new(config: &Config, strategy: &'static str, pooled: bool, wasi_p3: bool) -> Result<Self> {
        let engine = wasmtime::Engine::new(config).map_err(engine_error)?;
        let core_linker = run::core_linker(&engine).map_err(engine_error)?;
        Ok(Compiler {
            engine,
            on_demand: (!pooled).then(|| Arc::new(config.clone())),
            strategy,
            wasi_p3,
            core_linker,
            component_linker: Arc::default(),
        })
    }

    fn component_linker(&self) -> Result<&ComponentLinker<ComponentState>> {
        if let Some(linker) = self.component_linker.get() {
            return Ok(linker);
        }
        let linker = run::component_linker(&self.engine).map_err(engine_error)?;
        Ok(self.component_linker.get_or_init(|| linker))
    }

    /// Resolves a compiled module's or component's imports once, for every run.
    fn link(&self, wasm: &WasmBinary, compiled: Compiled) -> Result<WasmtimeModule> {
        let link = |e: wasmtime::Error| Error::link(&wasm.origin, e);
        let linked = match compiled {
            Compiled::Core(module) => {
                Linked::Core(self.core_linker.instantiate_pre(&module).map_err(link)?)
            }
            Compiled::Component(component) if self.wasi_p3 && serves_wasi_p3(&component) => {
                let pre = run::component_linker_async(&self.engine, true)
                    .and_then(|linker| linker.instantiate_pre(&component))
                    .and_then(ServicePre::new)
                    .map_err(link)?;
                Linked::Component {
                    command: None,
                    proxy: Some(Served::P3(pre)),
                }
            }
            Compiled::Component(component) => {
                let pre = self
                    .component_linker()?
                    .instantiate_pre(&component)
                    .map_err(link)?;
                let proxy = ProxyPre::new(pre.clone()).ok().map(Served::P2);
                let command = match CommandPre::new(pre) {
                    Ok(command) => Some(command),
                    Err(_) if proxy.is_some() => None,
                    Err(e) => return Err(link(e)),
                };
                Linked::Component { command, proxy }
            }
        };
        Ok(WasmtimeModule {
            engine: self.engine.clone(),
            on_demand: self.on_demand.clone(),
            linked,
        })
    }

    fn compile(&self, wasm: &WasmBinary) -> Result<Compiled> {
        let invalid = |e: wasmtime::Error| Error::invalid_module(&wasm.origin, e);
        Ok(match wasm.kind {
            WasmKind::CoreModule => {
                Compiled::Core(CoreModule::new(&self.engine, &wasm.bytes).map_err(invalid)?)
            }
            WasmKind::Component => {
                Compiled::Component(Component::new(&self.engine, &wasm.bytes).map_err(|e| {
                    if !self.wasi_p3 && uses_async_abi(&e) {
                        ASYNC_ABI_OFF
                    } else {
                        invalid(e)
                    }
                })?)
            }
        })
    }

    fn load(&self, wasm: &WasmBinary) -> Result<WasmtimeModule> {
        let compiled = self.compile(wasm)?;
        self.link(wasm, compiled)
    }
}

/// Compiled, not yet linked.
enum Compiled {
    Core(CoreModule),
    Component(Component),
}

impl EngineInfo for WasmtimeEngine {
    fn descriptor(&self) -> &'static Descriptor {
        &DESCRIPTOR
    }
}

/// A compiled and pre-linked module or component, ready to instantiate many times.
pub struct WasmtimeModule {
    engine: wasmtime::Engine,
    /// The engine's configuration when it allocates on demand (no `pooling` option).
    on_demand: Option<Arc<Config>>,
    linked: Linked,
}

enum Linked {
    Core(wasmtime::InstancePre<CoreState>),
    /// A component: a command (`wasi:cli/run`), a `wasi:http` proxy
    /// (`wasi:http/incoming-handler`), or both.
    Component {
        command: Option<CommandPre<ComponentState>>,
        proxy: Option<Served>,
    },
}

/// A component that serves `wasi:http`, linked for the world it exports.
pub(crate) enum Served {
    /// WASI 0.2: `wasi:http/incoming-handler`, checked against the synchronous linker.
    P2(ProxyPre<ComponentState>),
    /// WASI 0.3: `wasi:http/handler@0.3.0`, linked asynchronously (its only way).
    P3(ServicePre<ComponentState>),
}

impl Served {
    /// The component served.
    pub(crate) fn component(&self) -> &Component {
        match self {
            Served::P2(pre) => pre.instance_pre().component(),
            Served::P3(pre) => pre.instance_pre().component(),
        }
    }
}

/// What loading a component that needs the async ABI says while it is off: the
/// switch that turns it on.
const ASYNC_ABI_OFF: Error = Error::Unsupported {
    engine: NAME,
    feature: "WASI 0.3 (the component model's async ABI)",
    reason: "it is off unless the workload asks for it (wasmtime 48 calls it incomplete): \
             --engine-option wasm-component-model-async=on, or the same in the \
             wasmux.io/engine-options annotation",
};

/// Whether validation refused a component for using the async ABI (streams, futures,
/// async lifts), by wasmparser's wording.
fn uses_async_abi(error: &wasmtime::Error) -> bool {
    format!("{error:#}").contains("requires the component model async feature")
}

/// Whether `component` exports WASI 0.3's `wasi:http/handler`.
fn serves_wasi_p3(component: &Component) -> bool {
    component
        .component_type()
        .exports(component.engine())
        .any(|(name, _)| name.starts_with("wasi:http/handler@0.3"))
}

impl Engine for WasmtimeEngine {
    type Module = WasmtimeModule;

    fn load_module(&self, wasm: &WasmBinary) -> Result<WasmtimeModule> {
        match self.load_baseline(wasm) {
            Some(baseline) => baseline,
            None => self.main.load(wasm),
        }
    }

    fn precompiler(&self) -> Precompiler<'_, WasmtimeModule> {
        Precompiler::Available(self)
    }
}

impl Precompile<WasmtimeModule> for WasmtimeEngine {
    /// The compiler's name and wasmtime's own hash of its version, configuration and
    /// target features: baseline and optimized code are different entries.
    fn fingerprint(&self) -> String {
        let mut hasher = DefaultHasher::new();
        self.main
            .engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{}-{:016x}", self.main.strategy, hasher.finish())
    }

    fn compile_for_cache(&self, wasm: &WasmBinary) -> Result<(WasmtimeModule, Vec<u8>)> {
        let compiled = self.main.compile(wasm)?;
        let serialized = match &compiled {
            Compiled::Core(module) => module.serialize(),
            Compiled::Component(component) => component.serialize(),
        }
        .map_err(engine_error)?;
        Ok((self.main.link(wasm, compiled)?, serialized))
    }

    fn load_precompiled(&self, wasm: &WasmBinary, artifact: &Artifact) -> Result<WasmtimeModule> {
        let engine = &self.main.engine;
        // SAFETY: wasmtime runs deserialized bytes as native code without checking them.
        // An `Artifact` only comes from the precompile cache, which hands it out after
        // the BLAKE3 hash it wrote with the bytes matched, under a key that covers this
        // engine's configuration and compiler; the bytes are what `compile_for_cache`
        // serialised. A core module is mapped from the entry's file (payload at offset
        // 0, wasmux's trailer after the ELF image, which wasmtime's parser does not
        // read); entries are replaced by rename, never changed in place, as mapping
        // requires.
        #[allow(unsafe_code)]
        let compiled = unsafe {
            match wasm.kind {
                WasmKind::CoreModule => artifact
                    .file()
                    .try_clone()
                    .map_err(wasmtime::Error::from)
                    .and_then(|file| CoreModule::deserialize_open_file(engine, file))
                    .map(Compiled::Core),
                WasmKind::Component => {
                    Component::deserialize(engine, artifact.bytes()).map(Compiled::Component)
                }
            }
        }
        .map_err(engine_error)?;
        self.main.link(wasm, compiled)
    }

    /// Under `tier=auto`, a module of [`BASELINE_MIN_BYTES`] or more on Winch. A module
    /// Winch cannot compile (a proposal it lacks) is left to Cranelift.
    fn load_baseline(&self, wasm: &WasmBinary) -> Option<Result<WasmtimeModule>> {
        let baseline = self.baseline.as_ref()?;
        if wasm.bytes.len() < BASELINE_MIN_BYTES {
            return None;
        }
        let compiler = match baseline.get() {
            Ok(compiler) => compiler,
            Err(e) => return Some(Err(e)),
        };
        compiler.load(wasm).ok().map(Ok)
    }
}

fn engine_error(e: wasmtime::Error) -> Error {
    Error::engine(NAME, e)
}
