//! Engine options an embedder can give any engine by name: each backend honours the ones
//! it has and refuses the others with [`Error::Unsupported`], never silently.

use std::collections::BTreeMap;

use crate::engine::Support;
use crate::error::{Error, Result};

/// The smallest native stack an option may ask for: below it no engine gets through its
/// own start-up.
pub const MIN_STACK_SIZE: usize = 256 << 10;

/// How to build an engine. The default is each engine's own default set-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Reserve memories and instances up front for this many live instances (wasmtime's
    /// pooling allocator): cheaper starts for a process running the same images many
    /// times, and more live instances than that fail to instantiate.
    pub pooling: Option<u32>,
    /// The native stack a guest runs on, in bytes (wasmtime: the Wasm stack limit;
    /// wasm3, WAMR and WasmEdge: the run thread's stack). Deeper recursion then traps
    /// later, or sooner, as a stack overflow.
    pub stack_size: Option<usize>,
    /// Which compiler tier makes native code ([`Tier`]); `None` is the engine's default
    /// (wasmtime: [`Tier::Auto`]).
    pub tier: Option<Tier>,
    /// Wasm proposals switched on or off (`wasm-gc=on`); the others stay at the
    /// engine's defaults. A module that uses a proposal switched off fails to load.
    pub features: BTreeMap<WasmFeature, bool>,
}

/// A Wasm proposal an engine may be told to accept or refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WasmFeature {
    /// Garbage-collected structs and arrays (wasm-gc).
    Gc,
    /// Exception handling (`try_table`, `throw`).
    Exceptions,
    /// Shared memories and atomics.
    Threads,
    /// `return_call` and friends.
    TailCall,
    /// 64-bit memory indexes.
    Memory64,
    /// 128-bit SIMD.
    Simd,
    /// More than one memory per module.
    MultiMemory,
    /// The component model's async ABI (async exports, streams, futures): what WASI
    /// 0.3 components are built on. Off by default even where compiled in: wasmtime
    /// 48 calls its support incomplete. On, a component exporting
    /// `wasi:http/handler@0.3.0` is served.
    ComponentModelAsync,
}

impl WasmFeature {
    /// Every switch, in the order options list them.
    pub const ALL: [WasmFeature; 8] = [
        WasmFeature::Gc,
        WasmFeature::Exceptions,
        WasmFeature::Threads,
        WasmFeature::TailCall,
        WasmFeature::Memory64,
        WasmFeature::Simd,
        WasmFeature::MultiMemory,
        WasmFeature::ComponentModelAsync,
    ];

    /// The option's key: `wasm-gc`, `wasm-tail-call`, ...
    pub fn key(self) -> &'static str {
        match self {
            WasmFeature::Gc => "wasm-gc",
            WasmFeature::Exceptions => "wasm-exceptions",
            WasmFeature::Threads => "wasm-threads",
            WasmFeature::TailCall => "wasm-tail-call",
            WasmFeature::Memory64 => "wasm-memory64",
            WasmFeature::Simd => "wasm-simd",
            WasmFeature::MultiMemory => "wasm-multi-memory",
            WasmFeature::ComponentModelAsync => "wasm-component-model-async",
        }
    }
}

/// Compile tiers for an engine that has both a baseline compiler (fast to compile, slower
/// code) and an optimizing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Baseline code only (wasmtime: Winch), cached as such: the fastest first start,
    /// the slowest compute.
    Baseline,
    /// Optimized code only (wasmtime: Cranelift): the first start of a big module waits
    /// for the whole compile.
    Optimized,
    /// A big module missing from the cache starts on baseline code while its optimized
    /// code is compiled for the cache (the caller decides where: see
    /// `CacheEvent::Deferred`); small modules and cache hits are optimized code.
    Auto,
}

impl Tier {
    /// The option's text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Baseline => "baseline",
            Tier::Optimized => "optimized",
            Tier::Auto => "auto",
        }
    }
}

impl EngineOptions {
    /// Each engine's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the pooling allocator sized for `max_instances` live instances.
    pub fn with_pooling(mut self, max_instances: u32) -> Self {
        self.pooling = Some(max_instances);
        self
    }

    /// With a native stack of `bytes`.
    pub fn with_stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// With compile tier `tier`.
    pub fn with_tier(mut self, tier: Tier) -> Self {
        self.tier = Some(tier);
        self
    }

    /// With the proposal `feature` switched on or off.
    pub fn with_feature(mut self, feature: WasmFeature, on: bool) -> Self {
        self.features.insert(feature, on);
        self
    }

    /// Parses a comma-separated list of [`set`](Self::set)'s `key=value` texts (an
    /// annotation's value: `tier=baseline,stack-size=1m`); blanks around items are
    /// ignored, an empty list is no option.
    pub fn parse_list(list: &str) -> Result<Self> {
        let mut options = Self::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            options.set(item)?;
        }
        Ok(options)
    }

    /// These options, with `base`'s for every one these leave unset: an explicit
    /// caller's choice (these) over what a workload asks for (`base`).
    pub fn over(&self, base: &EngineOptions) -> EngineOptions {
        let mut features = base.features.clone();
        features.extend(self.features.iter().map(|(f, on)| (*f, *on)));
        EngineOptions {
            pooling: self.pooling.or(base.pooling),
            stack_size: self.stack_size.or(base.stack_size),
            tier: self.tier.or(base.tier),
            features,
        }
    }

    /// The options as `key=value` texts, each accepted by [`set`](Self::set): how a
    /// process hands its engine set-up to another (a background cache fill).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.pooling {
            args.push(format!("pooling={n}"));
        }
        if let Some(bytes) = self.stack_size {
            args.push(format!("stack-size={bytes}"));
        }
        if let Some(tier) = self.tier {
            args.push(format!("tier={}", tier.as_str()));
        }
        for (feature, on) in &self.features {
            args.push(format!(
                "{}={}",
                feature.key(),
                if *on { "on" } else { "off" }
            ));
        }
        args
    }

    /// Sets one option from its text form, as a command line gives it: `pooling=N`
    /// (live instances), `stack-size=BYTES` (a number, or with a `k`/`m` suffix),
    /// `tier=baseline|optimized|auto`, or a proposal switch `wasm-gc=on|off` (and
    /// `wasm-exceptions`, `wasm-threads`, `wasm-tail-call`, `wasm-memory64`,
    /// `wasm-simd`, `wasm-multi-memory`).
    pub fn set(&mut self, key_value: &str) -> Result<()> {
        let invalid = |reason: String| Error::InvalidOption {
            option: key_value.to_owned(),
            reason,
        };
        let (key, value) = key_value
            .split_once('=')
            .ok_or_else(|| invalid("expected KEY=VALUE".into()))?;
        match key {
            "pooling" => {
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid("expected a positive number of instances".into()))?;
                self.pooling = Some(n);
            }
            "stack-size" => {
                let bytes = parse_size(value).ok_or_else(|| {
                    invalid("expected a size in bytes, e.g. 8388608, 512k or 8m".into())
                })?;
                if bytes < MIN_STACK_SIZE {
                    return Err(invalid(format!("at least {MIN_STACK_SIZE} bytes")));
                }
                self.stack_size = Some(bytes);
            }
            "tier" => {
                self.tier = Some(match value {
                    "baseline" => Tier::Baseline,
                    "optimized" => Tier::Optimized,
                    "auto" => Tier::Auto,
                    _ => return Err(invalid("expected baseline, optimized or auto".into())),
                });
            }
            key if key.starts_with("wasm-") => {
                let feature = WasmFeature::ALL
                    .into_iter()
                    .find(|f| f.key() == key)
                    .ok_or_else(|| {
                        let keys: Vec<_> = WasmFeature::ALL.iter().map(|f| f.key()).collect();
                        invalid(format!("known proposal switches: {}", keys.join(", ")))
                    })?;
                let on = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(invalid("expected on or off".into())),
                };
                self.features.insert(feature, on);
            }
            _ => {
                return Err(invalid(
                    "known options: pooling, stack-size, tier, wasm-<proposal>".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What a workload asks of its engine (a bundle's `run.oci.handler` and
/// `wasmux.io/engine-options`): the front door's own choices go over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    /// The engine it names.
    pub engine: Option<String>,
    /// The engine options it sets.
    pub options: EngineOptions,
}

impl Requested {
    /// A workload that asks for this engine and nothing else.
    pub fn engine(name: impl Into<String>) -> Self {
        Requested {
            engine: Some(name.into()),
            options: EngineOptions::new(),
        }
    }
}

/// Which [`EngineOptions`] an engine takes, declared in its
/// [`Descriptor`](crate::Descriptor). The engine registry refuses every other option with
/// [`check`](Self::check) before the engine is built, naming the engine and the reason:
/// no backend has to remember to refuse, and none can ignore one silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSupport {
    /// `pooling`.
    pub pooling: Support,
    /// `stack-size`.
    pub stack_size: Support,
    /// The `tier`s it takes; any other is refused with [`tier_refusal`](Self::tier_refusal).
    pub tiers: &'static [Tier],
    /// Why the other tiers are refused.
    pub tier_refusal: &'static str,
    /// The `wasm-<proposal>` switches.
    pub wasm_features: Support,
}

/// Why every engine but wasmtime refuses `pooling`.
pub const ONLY_WASMTIME_POOLS: &str = "only wasmtime has a pooling instance allocator";

impl OptionSupport {
    /// An engine that takes no option (tests, a new backend's start).
    pub const NONE: OptionSupport = OptionSupport {
        pooling: Support::Unsupported(ONLY_WASMTIME_POOLS),
        stack_size: Support::Unsupported("this engine's stack cannot be sized"),
        tiers: &[],
        tier_refusal: "this engine has one compiler, or none",
        wasm_features: Support::Unsupported("this engine's proposals cannot be switched"),
    };

    /// Refuses any option in `options` that this declaration does not take.
    pub fn check(&self, engine: &'static str, options: &EngineOptions) -> Result<()> {
        let refuse = |feature, reason| {
            Err(Error::Unsupported {
                engine,
                feature,
                reason,
            })
        };
        if let (Some(_), Support::Unsupported(reason)) = (options.pooling, self.pooling) {
            return refuse("the pooling option", reason);
        }
        if let (Some(_), Support::Unsupported(reason)) = (options.stack_size, self.stack_size) {
            return refuse("the stack-size option", reason);
        }
        if let (Some(_), Support::Unsupported(reason)) =
            (options.features.keys().next(), self.wasm_features)
        {
            return refuse("the wasm-<proposal> switches", reason);
        }
        match options.tier {
            Some(tier) if !self.tiers.contains(&tier) => {
                refuse("the tier option", self.tier_refusal)
            }
            _ => Ok(()),
        }
    }
}

/// `1234`, `512k`, `8m`, `2g` (powers of 1024), as bytes: how sizes are written in
/// options and settings.
pub fn parse_size(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    let units = [('k', 1usize << 10), ('m', 1 << 20), ('g', 1 << 30)];
    let (digits, unit) = units
        .iter()
        .find_map(|(suffix, unit)| Some((lower.strip_suffix(*suffix)?, *unit)))
        .unwrap_or((lower.as_str(), 1));
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_set_from_text() {
        let mut options = EngineOptions::new();
        options.set("pooling=16").unwrap();
        options.set("stack-size=8m").unwrap();
        assert_eq!(
            options,
            EngineOptions::new()
                .with_pooling(16)
                .with_stack_size(8 << 20)
        );
        options.set("stack-size=524288").unwrap();
        assert_eq!(options.stack_size, Some(512 << 10));
        for tier in [Tier::Baseline, Tier::Optimized, Tier::Auto] {
            options.set(&format!("tier={}", tier.as_str())).unwrap();
            assert_eq!(options.tier, Some(tier));
        }
    }

    #[test]
    fn a_list_parses_and_a_callers_options_go_over_a_workloads() {
        let workload = EngineOptions::parse_list(" tier=baseline, stack-size=1m ,").unwrap();
        assert_eq!(
            workload,
            EngineOptions::new()
                .with_tier(Tier::Baseline)
                .with_stack_size(1 << 20)
        );
        assert_eq!(EngineOptions::parse_list("").unwrap(), EngineOptions::new());
        let caller = EngineOptions::new().with_tier(Tier::Optimized);
        assert_eq!(
            caller.over(&workload),
            EngineOptions::new()
                .with_tier(Tier::Optimized)
                .with_stack_size(1 << 20)
        );
        let err = EngineOptions::parse_list("tier=baseline,stak-size=1m").unwrap_err();
        assert!(err.to_string().contains("stak-size=1m"), "{err}");
    }

    #[test]
    fn proposal_switches_are_set_merged_and_written_back() {
        let workload = EngineOptions::parse_list("wasm-gc=on,wasm-simd=off").unwrap();
        let caller = EngineOptions::parse_list("wasm-simd=on").unwrap();
        assert_eq!(
            caller.over(&workload),
            EngineOptions::new()
                .with_feature(WasmFeature::Gc, true)
                .with_feature(WasmFeature::Simd, true)
        );
        for bad in ["wasm-gcc=on", "wasm-gc=yes"] {
            let err = EngineOptions::new().set(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
        let refused = OptionSupport::NONE
            .check("test", &workload)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("wasm-<proposal>"), "{refused}");
    }

    #[test]
    fn options_round_trip_through_their_text() {
        let options = EngineOptions::new()
            .with_pooling(3)
            .with_stack_size(1 << 20)
            .with_tier(Tier::Baseline)
            .with_feature(WasmFeature::TailCall, false)
            .with_feature(WasmFeature::Gc, true);
        let mut parsed = EngineOptions::new();
        for arg in options.to_args() {
            parsed.set(&arg).unwrap();
        }
        assert_eq!(parsed, options);
    }

    #[test]
    fn bad_options_are_errors_naming_the_option() {
        for bad in [
            "pooling",
            "pooling=0",
            "pooling=-1",
            "stack-size=1k",
            "stack-size=lots",
            "stack-size=99999999999999999999m",
            "tier=fast",
            "tier=",
        ] {
            let err = EngineOptions::new().set(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidOption { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn a_declaration_refuses_what_it_does_not_take_naming_the_engine() {
        let takes_auto = OptionSupport {
            tiers: &[Tier::Auto],
            ..OptionSupport::NONE
        };
        assert!(takes_auto.check("x", &EngineOptions::new()).is_ok());
        assert!(
            takes_auto
                .check("x", &EngineOptions::new().with_tier(Tier::Auto))
                .is_ok()
        );
        for refused in [
            EngineOptions::new().with_pooling(4),
            EngineOptions::new().with_stack_size(1 << 20),
            EngineOptions::new().with_tier(Tier::Optimized),
        ] {
            let err = takes_auto.check("x", &refused).unwrap_err();
            assert!(
                matches!(err, Error::Unsupported { engine: "x", .. }),
                "{err}"
            );
        }
    }
}
