//! D4Sign adapter: webhook verification/parsing (pure) and the client against the mock over
//! real HTTP (port 0).

// Wrapped in a module so `cargo test -p jtcrm-integrations d4sign` selects every test here.
mod d4sign {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use anyhow::{Context, Result, bail, ensure};
    use axum::Router;
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use jtcrm_integrations::d4sign::mock::{self, MockD4SignHandle, MockOptions, SafeIdKey};
    use jtcrm_integrations::d4sign::{
        Client, ClientConfig, DocumentState, HMAC_HEADER, Postback, PostbackError, PostbackKind,
        SignError, SignatureProvider, Signer, SignerAct, compute_hmac, parse_postback, verify_hmac,
    };
    use jtcrm_types::br::Cpf;
    use tokio::net::TcpListener;

    const UUID: &str = "8a3b6c1e-2f4d-4e5a-9b7c-0d1e2f3a4b5c";
    const SECRET: &str = "s3cr3t-da-conta";
    const PDF: &[u8] =
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

    // ---------------------------------------------------------------------------------------------
    // HMAC
    // ---------------------------------------------------------------------------------------------

    #[test]
    fn hmac_good_signature_verifies() {
        let header = compute_hmac(SECRET, UUID);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), "sha256=".len() + 64);
        assert!(verify_hmac(SECRET, UUID, &header));
        // Surrounding whitespace from header folding is tolerated.
        assert!(verify_hmac(SECRET, UUID, &format!("  {header} ")));
    }

    #[test]
    fn hmac_matches_an_independent_computation() {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes())
            .unwrap_or_else(|_| unreachable!());
        m.update(UUID.as_bytes());
        let expected = format!("sha256={}", hex::encode(m.finalize().into_bytes()));
        assert_eq!(compute_hmac(SECRET, UUID), expected);
    }

    #[test]
    fn hmac_bad_signature_is_refused() {
        let header = compute_hmac(SECRET, UUID);
        assert!(!verify_hmac("other-secret", UUID, &header));
        assert!(!verify_hmac(
            SECRET,
            "8a3b6c1e-2f4d-4e5a-9b7c-0d1e2f3a4b5d",
            &header
        ));
        // One flipped hex digit.
        let mut flipped = header.clone();
        let last = flipped.pop().unwrap_or('0');
        flipped.push(if last == '0' { '1' } else { '0' });
        assert!(!verify_hmac(SECRET, UUID, &flipped));
        // Truncated, empty, not hex, empty secret.
        assert!(!verify_hmac(SECRET, UUID, &header[..header.len() - 2]));
        assert!(!verify_hmac(SECRET, UUID, ""));
        assert!(!verify_hmac(SECRET, UUID, "sha256="));
        assert!(!verify_hmac(SECRET, UUID, "sha256=zzzz"));
        assert!(!verify_hmac("", UUID, &compute_hmac("", UUID)));
    }

    #[test]
    fn hmac_without_prefix_is_refused() {
        let header = compute_hmac(SECRET, UUID);
        let bare = header.trim_start_matches("sha256=");
        assert!(!verify_hmac(SECRET, UUID, bare));
        assert!(!verify_hmac(SECRET, UUID, &format!("sha1={bare}")));
        assert!(!verify_hmac(SECRET, UUID, &format!("sha256:{bare}")));
    }

    #[test]
    fn hmac_letter_case() {
        let header = compute_hmac(SECRET, UUID);
        let hex = header.trim_start_matches("sha256=");
        // Upper-case hex digits and prefix are the same bytes: accepted.
        assert!(verify_hmac(
            SECRET,
            UUID,
            &format!("sha256={}", hex.to_uppercase())
        ));
        assert!(verify_hmac(SECRET, UUID, &format!("SHA256={hex}")));
        // The UUID is the signed message: another case is another message.
        assert!(!verify_hmac(SECRET, &UUID.to_uppercase(), &header));
        // The secret is case-sensitive too.
        assert!(!verify_hmac(&SECRET.to_uppercase(), UUID, &header));
    }

    // ---------------------------------------------------------------------------------------------
    // Postback parsing
    // ---------------------------------------------------------------------------------------------

    #[test]
    fn postback_kinds_parse() -> Result<()> {
        let p = parse_postback(
            format!("uuid={UUID}&type_post=1&message=Finished+document").as_bytes(),
        )?;
        assert_eq!(p.uuid, UUID);
        assert_eq!(p.kind, PostbackKind::Finished);
        assert_eq!(p.message, "Finished document");

        let p = parse_postback(
            format!("uuid={UUID}&type_post=2&message=E-mail+not+sent&email=ana%40x.com.br")
                .as_bytes(),
        )?;
        assert_eq!(
            p.kind,
            PostbackKind::EmailNotSent {
                email: "ana@x.com.br".into()
            }
        );

        let p = parse_postback(format!("type_post=3&uuid={UUID}").as_bytes())?;
        assert_eq!(p.kind, PostbackKind::Cancelled);
        assert_eq!(p.message, "");

        let p = parse_postback(
            format!(
                "uuid={UUID}&type_post=4&message=Signed&email=jo%C3%A3o%40x.com&extra=1&foo[]=2"
            )
            .as_bytes(),
        )?;
        assert_eq!(
            p.kind,
            PostbackKind::Signed {
                email: "joão@x.com".into()
            }
        );
        Ok(())
    }

    #[test]
    fn postback_round_trips_through_its_fields() -> Result<()> {
        let original = Postback {
            uuid: UUID.into(),
            kind: PostbackKind::Signed {
                email: "a+b@x.com".into(),
            },
            message: "Signed & sealed".into(),
        };
        let body = serde_urlencoded::to_string(original.to_fields())?;
        assert_eq!(parse_postback(body.as_bytes())?, original);
        Ok(())
    }

    #[test]
    fn postback_bad_input_is_a_typed_error() {
        let cases: Vec<(&[u8], PostbackError)> = vec![
            (b"type_post=1", PostbackError::MissingField("uuid")),
            (b"uuid=&type_post=1", PostbackError::MissingField("uuid")),
            (
                b"uuid=8a3b6c1e-2f4d-4e5a-9b7c-0d1e2f3a4b5c",
                PostbackError::MissingField("type_post"),
            ),
            (
                b"uuid=8a3b6c1e-2f4d-4e5a-9b7c-0d1e2f3a4b5c&type_post=4",
                PostbackError::MissingField("email"),
            ),
            (
                b"uuid=8a3b6c1e-2f4d-4e5a-9b7c-0d1e2f3a4b5c&type_post=2&email=",
                PostbackError::MissingField("email"),
            ),
            (
                b"uuid=8a3b6c1e-2f4d-4e5a-9b7c-0d1e2f3a4b5c&type_post=9",
                PostbackError::UnknownType("9".into()),
            ),
            (
                b"uuid=../../etc&type_post=1",
                PostbackError::InvalidUuid("../../etc".into()),
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(
                parse_postback(body),
                Err(expected),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // JSON, binary junk and an empty body: errors, never panics.
        for body in [
            &br#"{"uuid":"x","type_post":"1"}"#[..],
            &[0xff, 0xfe, 0x00, b'=', 0x80][..],
            b"",
            b"%%%&&&===",
        ] {
            assert!(parse_postback(body).is_err());
        }
    }

    #[test]
    fn status_rank_refuses_to_move_backwards() {
        use DocumentState::*;
        let order = [
            Editing,
            Processing,
            WaitingSigners,
            WaitingSignatures,
            Finished,
            Archived,
        ];
        for w in order.windows(2) {
            assert!(w[0].rank() < w[1].rank());
            assert!(w[0].may_advance_to(w[1]));
            assert!(!w[1].may_advance_to(w[0]));
        }
        assert!(!Finished.may_advance_to(Finished));
        assert!(!Finished.may_advance_to(WaitingSignatures));
        assert!(!Finished.may_advance_to(Cancelled));
        assert!(!Cancelled.may_advance_to(Finished));
        assert!(WaitingSignatures.may_advance_to(Cancelled));
        assert!(Finished.is_terminal() && Cancelled.is_terminal());

        // Out-of-order postbacks: Finished arrives before the last Signed, plus a duplicate.
        let arrivals = [
            PostbackKind::Signed {
                email: "a@x".into(),
            },
            PostbackKind::Finished,
            PostbackKind::Signed {
                email: "b@x".into(),
            },
            PostbackKind::Finished,
            PostbackKind::EmailNotSent {
                email: "c@x".into(),
            },
        ];
        let mut state = WaitingSignatures;
        for kind in &arrivals {
            if let Some(next) = kind.implied_state()
                && state.may_advance_to(next)
            {
                state = next;
            }
        }
        assert_eq!(state, Finished);
        assert_eq!(DocumentState::from_status_id("3"), Some(WaitingSignatures));
        assert_eq!(DocumentState::from_status_id(" 7 "), Some(Editing));
        assert_eq!(DocumentState::from_status_id("8"), None);
    }

    // ---------------------------------------------------------------------------------------------
    // Against the mock
    // ---------------------------------------------------------------------------------------------

    async fn start_mock(opts: MockOptions) -> Result<MockD4SignHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(mock::serve(listener, opts).await?)
    }

    fn client_for(mock: &MockD4SignHandle) -> Result<Client> {
        Ok(Client::new(mock.client_config())?)
    }

    /// Polls `check` every 10 ms for up to 5 s.
    async fn eventually(what: &str, check: impl Fn() -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !check() {
            if tokio::time::Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// A tiny webhook receiver: records each postback with whether its HMAC verified, and answers
    /// 500 to the first `fail_first` requests.
    #[derive(Clone, Default)]
    struct Receiver {
        got: Arc<Mutex<Vec<(Postback, bool)>>>,
        hits: Arc<Mutex<usize>>,
        fail_first: usize,
    }

    impl Receiver {
        fn received(&self) -> Vec<(Postback, bool)> {
            self.got.lock().map(|g| g.clone()).unwrap_or_default()
        }
        fn hits(&self) -> usize {
            self.hits.lock().map(|h| *h).unwrap_or_default()
        }
    }

    async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let n = {
            let Ok(mut hits) = r.hits.lock() else {
                return StatusCode::INTERNAL_SERVER_ERROR;
            };
            *hits += 1;
            *hits
        };
        if n <= r.fail_first {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        let is_form = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let Ok(p) = parse_postback(&body) else {
            return StatusCode::BAD_REQUEST;
        };
        let hmac = headers
            .get(HMAC_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let ok = is_form && verify_hmac(SECRET, &p.uuid, hmac);
        if let Ok(mut got) = r.got.lock() {
            got.push((p, ok));
        }
        StatusCode::OK
    }

    async fn start_receiver(fail_first: usize) -> Result<(Receiver, String)> {
        let r = Receiver {
            fail_first,
            ..Receiver::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/d4sign/postback", listener.local_addr()?);
        let app = Router::new()
            .route("/d4sign/postback", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((r, url))
    }

    fn opts() -> MockOptions {
        MockOptions {
            webhook_secret: SECRET.into(),
            ..MockOptions::default()
        }
    }

    fn signers() -> Result<Vec<Signer>> {
        Ok(vec![
            Signer::new("cliente@provedor.com.br", "Ana Cliente", SignerAct::Sign)
                .with_cpf(Cpf::parse("529.982.247-25")?),
            Signer::new(
                "testemunha@jt.com.br",
                "Bruno Testemunha",
                SignerAct::Witness,
            ),
        ])
    }

    #[tokio::test]
    async fn full_flow_upload_sign_finish_webhook_download() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let (receiver, hook_url) = start_receiver(0).await?;
        let client = client_for(&mock)?;
        let provider: &dyn SignatureProvider = &client;

        let doc = provider
            .upload_document(mock.safe_id(), "contrato-0042.pdf", Bytes::from_static(PDF))
            .await?;
        let status = provider.status(&doc).await?;
        assert_eq!(status.state, DocumentState::WaitingSigners);
        assert_eq!(status.name, "contrato-0042.pdf");
        assert!(status.signers.is_empty());

        provider.register_webhook(&doc, &hook_url).await?;
        let signers = signers()?;
        let keys = provider.add_signers(&doc, &signers).await?;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].email, "cliente@provedor.com.br");
        assert_ne!(keys[0].key, keys[1].key);
        // Name and CPF went through addinfo.
        let stored = mock.document(&doc).context("document stored")?;
        assert_eq!(stored.signers[0].name, "Ana Cliente");
        assert_eq!(stored.signers[0].documentation, "529.982.247-25");
        assert_eq!(stored.signers[1].act, "5");
        assert_eq!(stored.signers[0].foreign, "0");

        provider
            .send_to_signers(&doc, "Segue o contrato para assinatura.")
            .await?;
        let status = provider.status(&doc).await?;
        assert_eq!(status.state, DocumentState::WaitingSignatures);
        assert!(!status.all_signed());
        assert_eq!(status.signers[1].act, Some(SignerAct::Witness));

        mock.sign_as(&doc, "cliente@provedor.com.br")?;
        let status = provider.status(&doc).await?;
        assert_eq!(status.state, DocumentState::WaitingSignatures);
        let first = &status.signers[0];
        assert!(first.signed);
        assert_eq!(first.ip.as_deref(), Some("127.0.0.1"));
        assert!(first.signed_at.is_some());
        assert!(!status.signers[1].signed);
        assert_eq!(status.signers[1].ip, None);

        mock.sign_as(&doc, "TESTEMUNHA@jt.com.br")?;
        let status = provider.status(&doc).await?;
        assert_eq!(status.state, DocumentState::Finished);
        assert!(status.all_signed());

        // Postbacks: 4 per signer, then 1, all with a valid HMAC.
        eventually("3 postbacks", || receiver.received().len() >= 3).await?;
        let got = receiver.received();
        assert!(got.iter().all(|(_, hmac_ok)| *hmac_ok));
        let kinds: Vec<PostbackKind> = got.iter().map(|(p, _)| p.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                PostbackKind::Signed {
                    email: "cliente@provedor.com.br".into()
                },
                PostbackKind::Signed {
                    email: "testemunha@jt.com.br".into()
                },
                PostbackKind::Finished,
            ]
        );
        assert!(got.iter().all(|(p, _)| p.uuid == doc));
        // The mock counts a delivery when it reads the 2xx, just after the receiver recorded it.
        eventually("the mock to count 3 deliveries", || {
            mock.webhooks_delivered() == 3
        })
        .await?;

        let pdf = provider.download_pdf(&doc).await?;
        assert!(pdf.starts_with(b"%PDF"));
        assert!(pdf.starts_with(PDF), "the uploaded bytes come first");
        assert!(pdf.len() > PDF.len(), "the mock appends its marker");
        let tail = String::from_utf8_lossy(&pdf[PDF.len()..]).to_string();
        assert!(tail.contains("Finalizado") && tail.contains("testemunha@jt.com.br"));
        Ok(())
    }

    #[tokio::test]
    async fn add_signers_twice_does_not_duplicate() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let client = client_for(&mock)?;
        let doc = client
            .upload(mock.safe_id(), "c.pdf", Bytes::from_static(PDF))
            .await?;
        let signers = signers()?;
        let first = client.create_signer_list(&doc, &signers).await?;
        let before = mock.requests();
        let again = client.create_signer_list(&doc, &signers).await?;
        assert_eq!(first, again);
        assert_eq!(
            mock.requests() - before,
            1,
            "only the signer list is read again"
        );
        assert_eq!(mock.document(&doc).map(|d| d.signers.len()), Some(2));
        Ok(())
    }

    #[tokio::test]
    async fn missing_or_wrong_credentials_are_refused() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let bad = Client::new(ClientConfig::new(mock.base_url(), "wrong", "wrong"))?;
        let err = bad
            .list_safes()
            .await
            .err()
            .context("wrong credentials accepted")?;
        assert_eq!(err, SignError::Unauthorized);
        assert!(!err.is_retryable());

        let empty = Client::new(ClientConfig::new(mock.base_url(), "", ""))?;
        let err = empty
            .list_safes()
            .await
            .err()
            .context("no credentials accepted")?;
        assert!(matches!(
            err,
            SignError::Unauthorized | SignError::Rejected(_)
        ));

        // Raw: a call lacking cryptKey gets a 4xx JSON {"message"}.
        let http = reqwest::Client::new();
        let resp = http
            .get(format!("{}/safes", mock.base_url()))
            .query(&[("tokenAPI", mock.options().token_api.as_str())])
            .send()
            .await?;
        assert!(resp.status().is_client_error());
        let body: serde_json::Value = resp.json().await?;
        assert!(body["message"].is_string());

        // tokenAPI as a header (the newer style) plus cryptKey in the query is accepted.
        let resp = http
            .get(format!("{}/safes", mock.base_url()))
            .header("tokenAPI", mock.options().token_api.as_str())
            .query(&[("cryptKey", mock.options().crypt_key.as_str())])
            .send()
            .await?;
        assert_eq!(resp.status(), StatusCode::OK);
        Ok(())
    }

    #[tokio::test]
    async fn server_errors_are_retryable_and_4xx_are_not() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let client = client_for(&mock)?;
        mock.fail_next(1);
        let err = client
            .list_safes()
            .await
            .err()
            .context("500 not surfaced")?;
        assert!(matches!(&err, SignError::Transport(m) if m.contains("Server error.")));
        assert!(err.is_retryable());
        assert_eq!(client.list_safes().await?.len(), 1);

        let err = client
            .status("00000000-0000-0000-0000-000000000000")
            .await
            .err()
            .context("unknown document accepted")?;
        assert!(matches!(&err, SignError::Rejected(m) if m.contains("not found")));
        assert!(!err.is_retryable());
        // An id that would change the URL never leaves the process.
        let err = client.status("../safes").await.err().context("path id")?;
        assert!(matches!(err, SignError::Rejected(_)));
        Ok(())
    }

    #[tokio::test]
    async fn network_failures_and_timeouts_are_retryable() -> Result<()> {
        // Nothing listens here any more.
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            l.local_addr()?
        };
        let client = Client::new(ClientConfig::new(format!("http://{addr}/api/v1"), "t", "c"))?;
        let err = client
            .list_safes()
            .await
            .err()
            .context("connected to nothing")?;
        assert!(err.is_retryable(), "{err:?}");

        // Accepts connections (kernel backlog) but never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await?;
        let mut config =
            ClientConfig::new(format!("http://{}/api/v1", silent.local_addr()?), "t", "c");
        config.timeout = Duration::from_millis(200);
        let err = Client::new(config)?
            .list_safes()
            .await
            .err()
            .context("silent server answered")?;
        assert!(matches!(err, SignError::Transport(_)));
        drop(silent);
        Ok(())
    }

    #[tokio::test]
    async fn safes_with_either_id_spelling() -> Result<()> {
        for key in [SafeIdKey::Dash, SafeIdKey::Underscore] {
            let mock = start_mock(MockOptions {
                safe_id_key: key,
                ..opts()
            })
            .await?;
            let safes = client_for(&mock)?.list_safes().await?;
            assert_eq!(safes.len(), 1);
            assert_eq!(safes[0].id, mock.safe_id());
            assert_eq!(safes[0].name, "Contratos");
        }
        Ok(())
    }

    #[tokio::test]
    async fn upload_requires_multipart_file_and_a_known_safe() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let http = reqwest::Client::new();
        let creds = [
            ("tokenAPI", mock.options().token_api.clone()),
            ("cryptKey", mock.options().crypt_key.clone()),
        ];
        let url = format!("{}/documents/{}/upload", mock.base_url(), mock.safe_id());

        let resp = http
            .post(&url)
            .query(&creds)
            .json(&serde_json::json!({ "file": "JVBERi0=" }))
            .send()
            .await?;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.json::<serde_json::Value>().await?["message"].is_string());

        let wrong_part = reqwest::multipart::Form::new().part(
            "arquivo",
            reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("c.pdf"),
        );
        let resp = http
            .post(&url)
            .query(&creds)
            .multipart(wrong_part)
            .send()
            .await?;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        let client = client_for(&mock)?;
        let err = client
            .upload(
                "11111111-1111-1111-1111-111111111111",
                "c.pdf",
                Bytes::from_static(PDF),
            )
            .await
            .err()
            .context("unknown safe accepted")?;
        assert!(matches!(err, SignError::Rejected(_)));
        let err = client
            .upload(mock.safe_id(), "c.pdf", Bytes::from_static(b"not a pdf"))
            .await
            .err()
            .context("junk accepted as PDF")?;
        assert!(matches!(err, SignError::Rejected(_)));
        assert!(mock.documents().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn form_encoded_bodies_are_accepted_and_values_are_strings() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let client = client_for(&mock)?;
        let doc = client
            .upload(mock.safe_id(), "c.pdf", Bytes::from_static(PDF))
            .await?;
        let http = reqwest::Client::new();
        let creds = [
            ("tokenAPI", mock.options().token_api.clone()),
            ("cryptKey", mock.options().crypt_key.clone()),
        ];
        let resp = http
            .post(format!("{}/documents/{doc}/createlist", mock.base_url()))
            .query(&creds)
            .form(&[
                ("signers[0][email]", "a@x.com.br"),
                ("signers[0][act]", "1"),
                ("signers[0][foreign]", "0"),
                ("signers[0][certificadoicpbr]", "0"),
                ("signers[0][assinatura_presencial]", "0"),
            ])
            .send()
            .await?;
        assert_eq!(resp.status(), StatusCode::OK);
        let v: serde_json::Value = resp.json().await?;
        assert_eq!(v["message"][0]["status"], "created");
        assert!(v["message"][0]["key_signer"].is_string());

        // A required field missing → 400 {"message"}.
        let resp = http
            .post(format!("{}/documents/{doc}/createlist", mock.base_url()))
            .query(&creds)
            .json(&serde_json::json!({ "signers": [{ "email": "b@x.com.br", "act": "1" }] }))
            .send()
            .await?;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        let resp = http
            .post(format!("{}/documents/{doc}/sendtosigner", mock.base_url()))
            .query(&creds)
            .form(&[("message", "oi"), ("skip_email", "0"), ("workflow", "0")])
            .send()
            .await?;
        assert_eq!(resp.status(), StatusCode::OK);

        let v: serde_json::Value = http
            .get(format!("{}/documents/{doc}/list", mock.base_url()))
            .query(&creds)
            .send()
            .await?
            .json()
            .await?;
        let d = &v[0];
        assert_eq!(d["statusId"], "3");
        assert_eq!(d["list"][0]["signed"], "0");
        for value in d.as_object().context("doc object")?.values() {
            assert!(value.is_string() || value.is_array(), "{value}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn processing_then_waiting_signers() -> Result<()> {
        let mock = start_mock(MockOptions {
            processing_time: Duration::from_millis(150),
            ..opts()
        })
        .await?;
        let client = client_for(&mock)?;
        let doc = client
            .upload(mock.safe_id(), "c.pdf", Bytes::from_static(PDF))
            .await?;
        assert_eq!(client.status(&doc).await?.state, DocumentState::Processing);
        let err = client.create_signer_list(&doc, &signers()?).await.err();
        assert!(matches!(err, Some(SignError::Rejected(_))));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if client.status(&doc).await?.state == DocumentState::WaitingSigners {
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "still processing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    #[tokio::test]
    async fn webhook_retried_until_the_receiver_accepts() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let (receiver, hook_url) = start_receiver(2).await?;
        let client = client_for(&mock)?;
        let doc = client
            .upload(mock.safe_id(), "c.pdf", Bytes::from_static(PDF))
            .await?;
        client.add_webhook(&doc, &hook_url).await?;
        client
            .create_signer_list(&doc, &[Signer::new("a@x.com.br", "", SignerAct::Sign)])
            .await?;
        client.send_to_signer(&doc, "assine").await?;
        mock.sign_as(&doc, "a@x.com.br")?;
        eventually("both postbacks delivered", || {
            mock.webhooks_delivered() == 2
        })
        .await?;
        assert!(mock.webhook_attempts() >= 4, "{}", mock.webhook_attempts());
        assert_eq!(receiver.hits(), mock.webhook_attempts());
        let got = receiver.received();
        assert!(got.iter().all(|(_, ok)| *ok));
        let mut kinds: Vec<u8> = got.iter().map(|(p, _)| p.kind.code()).collect();
        kinds.sort_unstable();
        assert_eq!(kinds, vec![1, 4]);
        Ok(())
    }

    #[tokio::test]
    async fn duplicate_and_out_of_order_postbacks_end_finished_with_the_rank_helper() -> Result<()>
    {
        let mock = start_mock(MockOptions {
            duplicate_webhooks: true,
            out_of_order_webhooks: true,
            ..opts()
        })
        .await?;
        let (receiver, hook_url) = start_receiver(0).await?;
        let client = client_for(&mock)?;
        let doc = client
            .upload(mock.safe_id(), "c.pdf", Bytes::from_static(PDF))
            .await?;
        client.add_webhook(&doc, &hook_url).await?;
        client.create_signer_list(&doc, &signers()?).await?;
        client.send_to_signer(&doc, "assine").await?;
        mock.sign_as(&doc, "cliente@provedor.com.br")?;
        mock.sign_as(&doc, "testemunha@jt.com.br")?;
        eventually("6 postbacks", || receiver.received().len() >= 6).await?;
        let got = receiver.received();
        assert_eq!(got.len(), 6);
        let codes: Vec<u8> = got.iter().map(|(p, _)| p.kind.code()).collect();
        assert_eq!(
            codes,
            vec![4, 4, 1, 1, 4, 4],
            "finished overtakes the last signature"
        );

        // What a CRM would store applying them in arrival order with the rank helper.
        let mut state = DocumentState::WaitingSignatures;
        for (p, hmac_ok) in &got {
            assert!(hmac_ok);
            if let Some(next) = p.kind.implied_state()
                && state.may_advance_to(next)
            {
                state = next;
            }
        }
        assert_eq!(state, DocumentState::Finished);
        Ok(())
    }

    #[tokio::test]
    async fn refusal_and_cancel_end_cancelled() -> Result<()> {
        let mock = start_mock(opts()).await?;
        let (receiver, hook_url) = start_receiver(0).await?;
        let client = client_for(&mock)?;

        let doc = client
            .upload(mock.safe_id(), "a.pdf", Bytes::from_static(PDF))
            .await?;
        client.add_webhook(&doc, &hook_url).await?;
        client.create_signer_list(&doc, &signers()?).await?;
        client.send_to_signer(&doc, "assine").await?;
        mock.refuse(&doc, "cliente@provedor.com.br", "Valor errado")?;
        let status = client.status(&doc).await?;
        assert_eq!(status.state, DocumentState::Cancelled);
        assert_eq!(status.comment.as_deref(), Some("Valor errado"));
        assert_eq!(
            status.cancelled_by.as_deref(),
            Some("cliente@provedor.com.br")
        );
        assert!(mock.sign_as(&doc, "testemunha@jt.com.br").is_err());
        eventually("cancel postback", || {
            receiver
                .received()
                .iter()
                .any(|(p, _)| p.kind == PostbackKind::Cancelled && p.uuid == doc)
        })
        .await?;

        let doc2 = client
            .upload(mock.safe_id(), "b.pdf", Bytes::from_static(PDF))
            .await?;
        client.create_signer_list(&doc2, &signers()?).await?;
        client.send_to_signer(&doc2, "assine").await?;
        client.cancel(&doc2, "Cliente desistiu").await?;
        let status = client.status(&doc2).await?;
        assert_eq!(status.state, DocumentState::Cancelled);
        assert_eq!(status.comment.as_deref(), Some("Cliente desistiu"));
        let err = client.cancel(&doc2, "de novo").await.err();
        assert!(matches!(err, Some(SignError::Rejected(_))));
        Ok(())
    }

    #[tokio::test]
    async fn undeliverable_email_posts_type_2_to_the_account_webhook() -> Result<()> {
        let (receiver, hook_url) = start_receiver(0).await?;
        let mock = start_mock(MockOptions {
            default_webhook_url: Some(hook_url),
            ..opts()
        })
        .await?;
        let client = client_for(&mock)?;
        let doc = client
            .upload(mock.safe_id(), "c.pdf", Bytes::from_static(PDF))
            .await?;
        client
            .create_signer_list(
                &doc,
                &[Signer::new("ninguem@dominio.invalid", "", SignerAct::Sign).foreign()],
            )
            .await?;
        client.send_to_signer(&doc, "assine").await?;
        eventually("email-not-sent postback", || {
            !receiver.received().is_empty()
        })
        .await?;
        assert_eq!(
            receiver.received()[0].0.kind,
            PostbackKind::EmailNotSent {
                email: "ninguem@dominio.invalid".into()
            }
        );
        assert_eq!(
            mock.document(&doc).map(|d| d.signers[0].foreign.clone()),
            Some("1".into())
        );
        Ok(())
    }
}
