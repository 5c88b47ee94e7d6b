//! The content address of a compiled artifact: everything that decides whether native
//! code compiled once may be run again.

use wasmux_core::{ArtifactKey, Descriptor};

/// Bumped whenever the key's inputs or the entry layout change, so old entries miss.
const KEY_FORMAT: &str = "wasmux-precompile-v2";

/// The key of `module` compiled by the engine `descriptor` names, configured as
/// `fingerprint` says, on this host: a BLAKE3 hash (cryptographic, so no image can be
/// crafted to collide with another's entry) over the module bytes, the engine's name,
/// version and configuration fingerprint, and the host's CPU features.
pub fn cache_key(descriptor: &Descriptor, fingerprint: &str, module: &[u8]) -> ArtifactKey {
    let mut hasher = blake3::Hasher::new();
    for part in [
        KEY_FORMAT,
        env!("CARGO_PKG_VERSION"),
        descriptor.name,
        descriptor.version,
        fingerprint,
        host_cpu_features(),
    ] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.update(module);
    ArtifactKey::from_bytes(*hasher.finalize().as_bytes())
}

/// The CPU features compiled code may depend on, as detected on this host: code
/// compiled on a machine with AVX-512 must not run on one without. Detected once per
/// process: every cache lookup hashes it.
pub fn host_cpu_features() -> &'static str {
    static FEATURES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    FEATURES.get_or_init(detect_cpu_features)
}

fn detect_cpu_features() -> String {
    let mut found: Vec<&str> = Vec::new();
    macro_rules! detect {
        ($check:ident, $($feature:tt),+) => {
            $(if std::arch::$check!($feature) { found.push($feature); })+
        };
    }
    #[cfg(target_arch = "x86_64")]
    detect!(
        is_x86_feature_detected,
        "sse3",
        "ssse3",
        "sse4.1",
        "sse4.2",
        "popcnt",
        "avx",
        "avx2",
        "fma",
        "bmi1",
        "bmi2",
        "lzcnt",
        "avx512f",
        "avx512vl",
        "avx512dq",
        "avx512bw",
        "avx512vbmi"
    );
    #[cfg(target_arch = "aarch64")]
    detect!(
        is_aarch64_feature_detected,
        "neon",
        "lse",
        "fp16",
        "pauth",
        "bti"
    );
    format!("{}:{}", std::env::consts::ARCH, found.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TEST_ENGINE as ENGINE;

    #[test]
    fn every_input_changes_the_key() {
        let base = cache_key(&ENGINE, "cfg", b"module");
        let renamed = Descriptor {
            name: "other",
            ..ENGINE
        };
        let newer = Descriptor {
            version: "2",
            ..ENGINE
        };
        assert_eq!(base, cache_key(&ENGINE, "cfg", b"module"));
        assert_ne!(base, cache_key(&renamed, "cfg", b"module"));
        assert_ne!(base, cache_key(&newer, "cfg", b"module"));
        assert_ne!(base, cache_key(&ENGINE, "cfg2", b"module"));
        assert_ne!(base, cache_key(&ENGINE, "cfg", b"module2"));
        // Length-prefixed parts: moving a byte between two parts is another key.
        let shifted = Descriptor {
            name: "tes",
            version: "t1",
            ..ENGINE
        };
        assert_ne!(base, cache_key(&shifted, "cfg", b"module"));
    }

    #[test]
    fn cpu_features_name_the_architecture() {
        assert!(host_cpu_features().starts_with(std::env::consts::ARCH));
        assert_eq!(ArtifactKey::from_bytes([0xab; 32]).to_string().len(), 64);
    }
}
