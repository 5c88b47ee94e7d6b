//! wasmtime and wasmtime-wasi used directly, the way an embedder writes it, taking the
//! same steps as wasmux's wasmtime backend: compile (or deserialize), link WASI
//! preview1, and per run a WASI context from the spec (argv, env, cwd, the same
//! preopens, stdio on `/dev/null`), a store, instantiation and `_start`.

use std::fs::File;
use std::path::Path;

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, Store,
};
use wasmtime_wasi::cli::{InputFile, OutputFile};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};
use wasmux::RunSpec;

/// A raw wasmtime engine with WASI preview1 linked once.
pub struct RawWasmtime {
    engine: Engine,
    linker: Linker<WasiP1Ctx>,
}

impl RawWasmtime {
    /// Default configuration (instances allocated on demand), or the pooling
    /// allocator sized for `pool` live instances.
    pub fn new(pool: Option<u32>) -> Self {
        let mut config = Config::new();
        if let Some(instances) = pool {
            let mut pooling = PoolingAllocationConfig::default();
            pooling
                .total_core_instances(instances)
                .total_memories(instances)
                .total_tables(instances);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        }
        let engine = Engine::new(&config).expect("a wasmtime engine");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("WASI linked");
        RawWasmtime { engine, linker }
    }

    /// Compiles with Cranelift.
    pub fn compile(&self, bytes: &[u8]) -> Module {
        Module::new(&self.engine, bytes).expect("the module compiles")
    }

    /// The compiled module's native code, to deserialize later.
    pub fn serialize(&self, module: &Module) -> Vec<u8> {
        module.serialize().expect("serialised")
    }

    /// Loads what [`serialize`](Self::serialize) produced and was saved to `path`,
    /// the fastest way wasmtime offers (the file is mapped, not copied).
    pub fn deserialize_file(&self, path: &Path) -> Module {
        // SAFETY: the file holds what `serialize` produced on an engine of the same
        // configuration in this process.
        #[allow(unsafe_code)]
        unsafe { Module::deserialize_file(&self.engine, path) }.expect("deserialised")
    }

    /// Resolves the module's imports once.
    pub fn pre(&self, module: &Module) -> InstancePre<WasiP1Ctx> {
        self.linker.instantiate_pre(module).expect("linked")
    }

    /// One run of `spec`'s workload: its exit status.
    pub fn run(&self, pre: &InstancePre<WasiP1Ctx>, spec: &RunSpec) -> i32 {
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&spec.args)
            .envs(&spec.env)
            .initial_cwd(&spec.cwd)
            .allow_blocking_current_thread(true);
        for preopen in spec.wasi_preopens().expect("preopens") {
            let perms = if preopen.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(preopen.dir.proc_path(), &preopen.guest, perms)
                .expect("preopened");
        }
        let null = |write: bool| {
            File::options()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .expect("/dev/null")
        };
        wasi.stdin(InputFile::new(null(false)))
            .stdout(OutputFile::new(null(true)))
            .stderr(OutputFile::new(null(true)));
        let mut store = Store::new(&self.engine, wasi.build_p1());
        let instance = pre.instantiate(&mut store).expect("instantiated");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .expect("a command module");
        match start.call(&mut store, ()) {
            Ok(()) => 0,
            Err(e) => e.downcast_ref::<I32Exit>().map_or(134, |exit| exit.0),
        }
    }
}
