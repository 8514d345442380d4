fn main() {
    std::process::exit(cmkm::cli::main());
}
