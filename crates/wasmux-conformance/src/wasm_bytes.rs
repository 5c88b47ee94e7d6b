//! Writing Wasm binary pieces by hand, for modules the tests shape byte by byte (a memory
//! of an exact size, a module made big by a custom section).

/// Appends `n` as unsigned LEB128.
pub fn leb(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Appends section `id` with `body`.
pub fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(body.len(), out);
    out.extend_from_slice(body);
}

/// Appends a custom section `name` holding `payload`: a bigger module, the same code.
pub fn custom_section(name: &str, payload: &[u8], module: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(payload.len() + name.len() + 5);
    leb(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    section(0, &body, module);
}
