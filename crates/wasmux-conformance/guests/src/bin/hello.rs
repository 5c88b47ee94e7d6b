//! The hello guest: what `wasmux run examples/hello` prints.

fn main() {
    println!("Hello from a Wasm container, run by wasmux!");
}
