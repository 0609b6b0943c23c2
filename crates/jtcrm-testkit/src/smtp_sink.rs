//! The SMTP sink of `jtcrm_integrations::smtp_mock` (one implementation for tests, `jtcrm mock
//! smtp` and the system-test), plus [`SmtpSink::configure`], which points the app's settings at it.

use std::ops::Deref;

pub use jtcrm_integrations::smtp_mock::{MessageView, ReceivedMessage, decode_header_value};

/// A sink on 127.0.0.1 with a free port; derefs to the integrations' sink (messages, `stop`,
/// `fail_with`, `wait_for`, …).
pub struct SmtpSink(jtcrm_integrations::smtp_mock::SmtpSink);

impl Deref for SmtpSink {
    type Target = jtcrm_integrations::smtp_mock::SmtpSink;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl SmtpSink {
    pub async fn start_new() -> SmtpSink {
        SmtpSink(jtcrm_integrations::smtp_mock::SmtpSink::start_new().await)
    }

    /// Points `s` at this sink (`SMTP_SERVER`, `SMTP_PORT`, `SMTP_FROM`, short timeout), keeping
    /// the default TLS mode: STARTTLS is not offered, so the connection stays in clear text.
    pub fn configure(&self, s: &mut jtcrm::Settings) {
        s.smtp_server = Some(self.host());
        s.smtp_port = self.port();
        s.smtp_from = Some("no-reply@crm.jtcrm.test".into());
        s.smtp_timeout_secs = 3;
    }
}
