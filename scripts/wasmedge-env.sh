#!/usr/bin/env bash
# Gets a real libwasmedge for building and testing the WasmEdge backend on a machine
# whose own Debian is too old for it: Debian trixie's WasmEdge 0.14.1 packages and the
# runtime libraries they need, unpacked into .wasmedge/ (git-ignored). The system's apt
# setup is not touched: a private configuration (sources, lists, cache) is used.
#
# Users with a normal WasmEdge install need none of this.
#
# Prints the environment to use, as `export` lines: eval "$(scripts/wasmedge-env.sh)".
set -euo pipefail
cd "$(dirname "$0")/.."

root="$PWD/.wasmedge"
sysroot="$root/sysroot"
suite=trixie
packages=(libwasmedge-dev libwasmedge0)

if [ ! -e "$sysroot/.complete" ]; then
    apt_dir="$root/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" \
        "$apt_dir/sources.list.d"
    # The machine's own Debian mirror (not its security or snapshot lines).
    mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list.d/*.list 2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' \
        | head -1 | tr -d ' ' || true)
    echo "deb [trusted=yes] ${mirror:-http://deb.debian.org/debian} $suite main" \
        >"$apt_dir/sources.list"
    apt_opts=(
        -o Dir::Etc::SourceList="$apt_dir/sources.list"
        -o Dir::Etc::SourceParts="$apt_dir/sources.list.d"
        -o Dir::State::Lists="$apt_dir/lists"
        -o Dir::Cache="$apt_dir/cache"
        -o Dir::State::Status=/dev/null
        -o APT::Get::List-Cleanup=0
        -o APT::Sandbox::User=root
    )
    apt-get "${apt_opts[@]}" update -qq >&2
    # Every package the WasmEdge packages need at run time, by the suite's own rules.
    mapfile -t needed < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends \
        --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends \
        "${packages[@]}" | grep -E '^[a-z0-9]' | grep -v '^<' | sort -u)
    (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" download -qq "${needed[@]}" >&2)
    rm -rf "$sysroot"
    mkdir -p "$sysroot"
    for deb in "$apt_dir"/debs/*.deb; do
        dpkg-deb -x "$deb" "$sysroot"
    done
    touch "$sysroot/.complete"
fi

# wasmedge-sys's build script puts its library directory on LD_LIBRARY_PATH while
# compiling: that directory must hold libwasmedge alone, or rustc would load trixie's
# libc with this machine's loader.
mkdir -p "$root/lib"
for lib in "$sysroot"/usr/lib/x86_64-linux-gnu/libwasmedge.so*; do
    ln -sf "$lib" "$root/lib/"
done

# Binaries linked to libwasmedge run with trixie's own loader and libraries; cargo runs
# test binaries through this runner.
libdirs="$sysroot/usr/lib/x86_64-linux-gnu:$sysroot/lib/x86_64-linux-gnu"
loader="$sysroot/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
echo "export WASMEDGE_INCLUDE_DIR=$sysroot/usr/include"
echo "export WASMEDGE_LIB_DIR=$root/lib"
echo "export WASMEDGE_RUN=\"$loader --library-path $libdirs\""
echo "export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=\"$loader --library-path $libdirs\""
