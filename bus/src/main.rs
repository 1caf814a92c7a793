//! The `varde` binary: all logic lives in the library (`varde_bus::cli`).

fn main() -> std::process::ExitCode {
    varde_bus::cli::main()
}
