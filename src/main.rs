//! The `rbuild` binary: everything lives in the library.

fn main() {
    std::process::exit(rbuild::cli::main());
}
