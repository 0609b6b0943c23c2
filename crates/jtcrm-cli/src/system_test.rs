pub async fn run(_url: &str, _verbose: bool) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("system-test: em construção")
}
