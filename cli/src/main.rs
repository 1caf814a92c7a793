//! The `varde` binary: all logic lives in the library (`varde_cli`).

fn main() -> std::process::ExitCode {
    varde_cli::main()
}
