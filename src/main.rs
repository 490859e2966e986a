fn main() -> std::process::ExitCode {
    otp_service::cli::main()
}
