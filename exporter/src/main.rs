fn main() {
    std::process::exit(lbtriage::cli::main());
}
