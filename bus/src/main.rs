fn main() { varde_bus::cli::main() }
