/* The physical floor of the whole-process bench: the same greeting as the hello
 * bundle, from a static native binary (no dynamic loader), started by fork+exec. */
#include <unistd.h>

int main(void) {
    static const char greeting[] = "Hello from a Wasm container, run by wasmux!\n";
    return write(1, greeting, sizeof greeting - 1) == sizeof greeting - 1 ? 0 : 1;
}
