fn main() -> std::process::ExitCode {
    varde_bridge::cli::main()
}
