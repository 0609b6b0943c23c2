//! The scenario's e-mails seen where they arrive: the HTTP view of an SMTP sink (`jtcrm mock smtp
//! --http-port M`, `GET /messages`), given with `--smtp-sink`. Without one (a deployment with a
//! real relay), the sections check only the e-mails the API stored.

#[allow(unused_imports)]
use super::*;

/// How long a queued e-mail may take to reach the sink (the worker polls, SMTP retries back off).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls the sink until a message to `to` whose text contains `needle` has arrived; its subject.
pub(super) async fn wait_delivered(
    c: &Client,
    sink: &str,
    to: &str,
    needle: &str,
) -> Result<String> {
    let url = format!("{}/messages", sink.trim_end_matches('/'));
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let res = c
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url} (SMTP sink)"))?;
        if !res.status().is_success() {
            return Err(anyhow!("GET {url} (SMTP sink): status {}", res.status()));
        }
        let msgs: Vec<Value> = res
            .json()
            .await
            .with_context(|| format!("GET {url}: not a JSON array"))?;
        let to_matches = |m: &Value| {
            m["to"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|r| r.as_str().is_some_and(|r| r.eq_ignore_ascii_case(to)))
            })
        };
        if let Some(m) = msgs
            .iter()
            .find(|m| to_matches(m) && m["body"].as_str().is_some_and(|b| b.contains(needle)))
        {
            return Ok(m["subject"].as_str().unwrap_or_default().to_string());
        }
        if Instant::now() >= deadline {
            let seen: Vec<String> = msgs
                .iter()
                .filter(|m| to_matches(m))
                .map(|m| format!("{:?}", m["subject"].as_str().unwrap_or_default()))
                .collect();
            return Err(anyhow!(
                "no e-mail to {to} containing {needle} reached the SMTP sink within {}s \
                 ({} message(s) in the sink, to {to}: [{}])",
                DELIVERY_TIMEOUT.as_secs(),
                msgs.len(),
                seen.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A checked step "`name`" when the run has an SMTP sink; otherwise a note that it was skipped.
pub(super) async fn delivered_step(c: &Client, name: &str, to: &str, needle: &str) -> Result<()> {
    match c.smtp_sink.as_deref() {
        Some(sink) => {
            c.step(name, async || {
                let subject = wait_delivered(c, sink, to, needle).await?;
                if c.verbose {
                    println!("  subject: {subject}");
                }
                Ok(())
            })
            .await
        }
        None => {
            println!("– {name}: skipped (no --smtp-sink; the stored e-mail was checked)");
            Ok(())
        }
    }
}
