fn main() -> std::process::ExitCode {
    otp_service::startup::main()
}
