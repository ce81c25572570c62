fn main() -> std::process::ExitCode {
    mailha::cli::main()
}
