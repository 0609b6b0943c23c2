//! The PABX adapter layer: dialling rule, normaliser, parser tolerance, and the suite client
//! against the mock over real HTTP on port 0.
//!
//! Every test lives in `mod pabx` so that `cargo test -p jtcrm-integrations pabx` runs them.
//!
//! Timing: tests never sleep and then assert absence. Absence is only asserted when the CDR
//! delay is an hour (so nothing can appear), then the mock clock is advanced and the test polls
//! for presence with a deadline.

mod pabx {
    use std::collections::{BTreeSet, HashSet};
    use std::future::Future;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result, anyhow, bail, ensure};
    use axum::http::{HeaderMap, HeaderValue, header};
    use jtcrm_integrations::pabx::dial::{DialError, DialPlan, dial_string, normalise_number};
    use jtcrm_integrations::pabx::mock::{
        self, EventFormat, InboundCall, MockOutcome, MockPabxHandle, MockPabxOptions, fixtures,
    };
    use jtcrm_integrations::pabx::suite::{
        RecordContext, SuiteClient, SuiteConfig, record_from_json,
    };
    use jtcrm_integrations::pabx::{
        CallFilter, CallRecord, Direction, ExtensionSpec, Outcome, Pabx, PabxError, PageRequest,
        ParseError,
    };
    use serde_json::{Value, json};
    use tokio::net::TcpListener;

    // -------------------------------------------------------------------------------------------
    // Helpers
    // -------------------------------------------------------------------------------------------

    async fn start(opts: MockPabxOptions) -> Result<(MockPabxHandle, SuiteClient)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mock = mock::serve(listener, opts).await;
        let client = SuiteClient::new(mock.suite_config(11))?;
        Ok((mock, client))
    }

    fn instant_cdrs() -> MockPabxOptions {
        MockPabxOptions {
            cdr_delay: Duration::ZERO,
            ..MockPabxOptions::default()
        }
    }

    /// Polls `f` every 50 ms until it yields `Some`, for at most 10 s.
    async fn poll<T, F, Fut>(what: &str, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = f().await? {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find_call(pabx: &dyn Pabx, id: &str) -> Result<Option<CallRecord>> {
        let filter = CallFilter {
            call_id: Some(id.to_owned()),
            ..CallFilter::default()
        };
        let page = pabx.list_calls(&filter, PageRequest::first(10)).await?;
        Ok(page.items.into_iter().find(|r| r.provider_call_id == id))
    }

    async fn all_calls(pabx: &dyn Pabx, page_size: u32) -> Result<(Vec<CallRecord>, usize)> {
        let mut out = Vec::new();
        let mut req = Some(PageRequest::first(page_size));
        let mut pages = 0;
        while let Some(r) = req {
            let page = pabx.list_calls(&CallFilter::default(), r).await?;
            pages += 1;
            ensure!(pages < 100, "pagination does not end");
            req = page.next_request(page_size);
            out.extend(page.items);
        }
        Ok((out, pages))
    }

    // -------------------------------------------------------------------------------------------
    // Dialling rule
    // -------------------------------------------------------------------------------------------

    #[test]
    fn dial_local_drops_country_code_and_ddd() -> Result<()> {
        assert_eq!(dial_string("+5511987654321", 11, None)?, "987654321"); // mobile
        assert_eq!(dial_string("+551134567890", 11, None)?, "34567890"); // landline
        assert_eq!(dial_string(" +5555998765432 ", 55, None)?, "998765432"); // DDD 55 ≠ country
        // A CSP is never used for a local call.
        assert_eq!(dial_string("+5511987654321", 11, Some(15))?, "987654321");
        Ok(())
    }

    #[test]
    fn dial_long_distance_uses_trunk_zero_and_optional_csp() -> Result<()> {
        assert_eq!(dial_string("+5521987654321", 11, None)?, "021987654321");
        assert_eq!(dial_string("+552134567890", 11, None)?, "02134567890");
        assert_eq!(dial_string("+5511987654321", 21, None)?, "011987654321");
        assert_eq!(
            dial_string("+5521987654321", 11, Some(15))?,
            "01521987654321"
        );
        assert_eq!(dial_string("+552134567890", 11, Some(21))?, "0212134567890");
        assert_eq!(
            dial_string("+5548999990000", 11, Some(41))?,
            "04148999990000"
        );
        let plan = DialPlan::new(61)?.with_csp(21)?;
        assert_eq!(plan.dial_string("+556132345678")?, "32345678");
        assert_eq!(plan.dial_string("+558532345678")?, "0218532345678");
        Ok(())
    }

    #[test]
    fn dial_international_and_non_geographic() -> Result<()> {
        assert_eq!(dial_string("+14155550100", 11, None)?, "0014155550100");
        assert_eq!(dial_string("+351912345678", 11, None)?, "00351912345678");
        assert_eq!(
            dial_string("+14155550100", 11, Some(21))?,
            "002114155550100"
        );
        assert_eq!(dial_string("+558001234567", 11, None)?, "08001234567");
        assert_eq!(dial_string("+558001234567", 11, Some(15))?, "08001234567");
        Ok(())
    }

    #[test]
    fn dial_rejects_invalid_input() {
        let err = |n: &str| dial_string(n, 11, None).err();
        assert!(matches!(err("11987654321"), Some(DialError::NotE164(_)))); // no +
        assert!(matches!(
            err("+55 11 98765-4321"),
            Some(DialError::NotE164(_))
        )); // masked
        assert!(matches!(err("+5511"), Some(DialError::NotE164(_)))); // too short
        assert!(matches!(
            err("+5511987654321123"),
            Some(DialError::NotE164(_))
        )); // 16 digits
        assert!(matches!(err("+0551198765432"), Some(DialError::NotE164(_))));
        assert!(matches!(err(""), Some(DialError::NotE164(_))));
        assert!(matches!(
            err("+5520987654321"),
            Some(DialError::InvalidBrazilianNumber(_))
        )); // DDD 20
        assert!(matches!(
            err("+5523987654321"),
            Some(DialError::InvalidBrazilianNumber(_))
        )); // DDD 23
        assert!(matches!(
            err("+551198765432"),
            Some(DialError::InvalidBrazilianNumber(_))
        )); // 8-digit "mobile"
        assert!(matches!(
            err("+551191234567"),
            Some(DialError::InvalidBrazilianNumber(_))
        )); // landline with 9
        assert!(matches!(
            err("+5511887654321"),
            Some(DialError::InvalidBrazilianNumber(_))
        )); // 9 digits, not 9…
        assert!(matches!(
            err("+55011987654321"),
            Some(DialError::InvalidBrazilianNumber(_))
        )); // trunk 0 in E.164
        assert_eq!(
            dial_string("+5511987654321", 20, None),
            Err(DialError::InvalidAreaCode(20))
        );
        assert_eq!(
            dial_string("+5511987654321", 11, Some(5)),
            Err(DialError::InvalidCsp(5))
        );
    }

    #[test]
    fn dialled_strings_normalise_back() -> Result<()> {
        let numbers = [
            "+5511987654321",
            "+551134567890",
            "+5521987654321",
            "+558532345678",
            "+5599912345678",
        ];
        for own in [11u8, 21, 85, 99] {
            for csp in [None, Some(15), Some(41)] {
                for n in numbers {
                    let dialled = dial_string(n, own, csp)?;
                    assert_eq!(
                        normalise_number(&dialled, Some(own)).as_deref(),
                        Some(n),
                        "{n} from {own} csp {csp:?}: {dialled}"
                    );
                }
            }
        }
        Ok(())
    }

    // -------------------------------------------------------------------------------------------
    // Normaliser
    // -------------------------------------------------------------------------------------------

    #[test]
    fn normaliser_accepts_what_pabxes_send() {
        let n = |raw: &str, ddd: Option<u8>| normalise_number(raw, ddd);
        let m = Some("+5511987654321".to_owned());
        assert_eq!(n("011987654321", None), m);
        assert_eq!(n("11987654321", None), m);
        assert_eq!(n("987654321", Some(11)), m);
        assert_eq!(n("+5511987654321", None), m);
        assert_eq!(n("5511987654321", None), m);
        assert_eq!(n("+55 (11) 98765-4321", None), m);
        assert_eq!(n("(11) 98765-4321", None), m);
        assert_eq!(n("01511987654321", None), m); // 0 + CSP + DDD + number
        assert_eq!(n("34567890", Some(21)).as_deref(), Some("+552134567890"));
        assert_eq!(n("02134567890", Some(11)).as_deref(), Some("+552134567890"));
        assert_eq!(n("0152134567890", None).as_deref(), Some("+552134567890"));
        assert_eq!(n("5532345678", None).as_deref(), Some("+555532345678")); // DDD 55
        assert_eq!(n("08001234567", None).as_deref(), Some("+558001234567"));
        assert_eq!(n("+14155550100", None).as_deref(), Some("+14155550100"));
        assert_eq!(n("0014155550100", None).as_deref(), Some("+14155550100"));
        assert_eq!(n("005511987654321", None), m);
    }

    #[test]
    fn normaliser_refuses_extensions_and_junk() {
        let n = |raw: &str, ddd: Option<u8>| normalise_number(raw, ddd);
        for raw in [
            "1001",
            "42",
            "190",
            "100001",
            "",
            "  ",
            "+",
            "+55",
            "anonymous",
            "grupolr-1001",
            "sip:1001@pabx",
            "11 9876x4321",
        ] {
            assert_eq!(n(raw, Some(11)), None, "{raw:?}");
        }
        assert_eq!(n("987654321", None), None); // no DDD to assume
        assert_eq!(n("987654321", Some(20)), None); // invalid default DDD
        assert_eq!(n("2034567890", None), None); // DDD 20
        assert_eq!(n("1198765432", None), None); // 8-digit mobile without the ninth digit
        assert_eq!(n("1191234567", None), None); // landline starting with 9
        assert_eq!(n("123456789012345678901", None), None); // too long
        assert_eq!(n("+0123456789", None), None);
    }

    // -------------------------------------------------------------------------------------------
    // Parser tolerance (history records and events)
    // -------------------------------------------------------------------------------------------

    #[test]
    fn history_records_tolerate_both_recording_shapes_and_mixed_types() -> Result<()> {
        let ctx = RecordContext {
            area_code: Some(11),
            ..RecordContext::default()
        };
        let read = |v: Value| -> Result<CallRecord> {
            let obj = v.as_object().context("object")?;
            record_from_json(obj, &ctx).context("record")
        };
        let a = read(
            json!({"chamada_id": 1, "data": "05/03/2025 14:03:07", "origem": "1001", "destino": "021987654321",
            "status": "Atendido", "sip_code": 200, "duracao": "00:01:05", "duracao_real": "00:00:59",
            "tempo_espera_total_filas": "00:00:06", "link_gravacao": "http://x/a.wav"}),
        )?;
        let b = read(
            json!({"chamada_id": "2", "data": "05/03/2025 14:04:00", "origem": "011987654321", "destino": "1002",
            "status": "1", "sip_code": "200", "duracao": 65, "duracao_real": "59", "link_gravacao": ["http://x/b1.wav", "http://x/b2.wav"]}),
        )?;
        let c = read(
            json!({"chamada_id": 3, "origem": "1001", "destino": "987654321", "status": "0", "sip_code": "480",
            "duracao": "00:00:30", "duracao_real": "00:00:00", "link_gravacao": ""}),
        )?;
        let d = read(
            json!({"chamada_id": 4, "origem": "1001", "destino": "1002", "sip_code": 486, "link_gravacao": null}),
        )?;
        assert_eq!(a.recording_urls, vec!["http://x/a.wav"]);
        assert_eq!(b.recording_urls, vec!["http://x/b1.wav", "http://x/b2.wav"]);
        assert!(c.recording_urls.is_empty() && d.recording_urls.is_empty());
        assert_eq!((a.duration_s, a.talk_s, a.wait_s), (65, 59, 6));
        assert_eq!((b.duration_s, b.talk_s), (65, 59));
        assert_eq!(
            (a.provider_call_id.as_str(), b.provider_call_id.as_str()),
            ("1", "2")
        );
        assert_eq!(
            (a.outcome, b.outcome, c.outcome, d.outcome),
            (
                Outcome::Answered,
                Outcome::Answered,
                Outcome::NoAnswer,
                Outcome::Busy
            )
        );
        assert_eq!(
            (a.direction, b.direction, c.direction, d.direction),
            (
                Direction::Outbound,
                Direction::Inbound,
                Direction::Outbound,
                Direction::Internal
            )
        );
        assert_eq!(b.from.e164.as_deref(), Some("+5511987654321"));
        assert_eq!(c.to.e164.as_deref(), Some("+5511987654321"));
        assert_eq!(
            a.started_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2025-03-05T17:03:07+00:00")
        );
        assert_eq!(c.started_at, None);
        Ok(())
    }

    #[test]
    fn events_tolerate_trailing_commas_string_numbers_and_forms() -> Result<()> {
        let client = SuiteClient::new(SuiteConfig::new(
            "http://127.0.0.1:9/suite/api",
            "u",
            "t",
            11,
        ))?;
        let json_ct = {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h
        };
        let e = client.parse_event(&json_ct, fixtures::EVENT_TRAILING_COMMA.as_bytes())?;
        assert_eq!(e.provider_call_id, "1000001");
        assert_eq!(e.direction, Direction::Outbound);
        assert_eq!(e.extension.as_deref(), Some("1001"));
        assert_eq!(
            e.to.as_ref().and_then(|p| p.e164.as_deref()),
            Some("+5521987654321")
        );
        assert_eq!(e.duration_s, Some(52));
        assert_eq!(e.occurred_at.map(|t| t.timestamp()), Some(1_741_194_187));
        assert_eq!(e.recording_urls.len(), 1);

        let e = client.parse_event(&json_ct, fixtures::EVENT_INTS_AND_ARRAY.as_bytes())?;
        assert_eq!(e.provider_call_id, "1000002");
        assert_eq!(e.direction, Direction::Inbound);
        assert_eq!(e.extension.as_deref(), Some("1002"));
        assert_eq!(e.duration_s, Some(65));
        assert_eq!(e.recording_urls.len(), 1);

        // The form fixture, sent with a wrong content type: the body is sniffed.
        let e = client.parse_event(&json_ct, fixtures::EVENT_FORM.as_bytes())?;
        assert_eq!(e.provider_call_id, "1000003");
        assert_eq!(
            e.to.as_ref().and_then(|p| p.e164.as_deref()),
            Some("+5511987654321")
        );
        assert_eq!(e.duration_s, Some(0));
        assert!(e.recording_urls.is_empty());

        let e = client.parse_event(
            &HeaderMap::new(),
            br#"{"callid":"5","a":[1,2,],"b":{"c":{},},}"#,
        )?;
        assert_eq!(e.provider_call_id, "5");
        Ok(())
    }

    #[test]
    fn events_with_odd_bodies_are_typed_errors() -> Result<()> {
        let client = SuiteClient::new(SuiteConfig::new(
            "http://127.0.0.1:9/suite/api",
            "u",
            "t",
            11,
        ))?;
        let h = HeaderMap::new();
        assert_eq!(client.parse_event(&h, b""), Err(ParseError::Empty));
        assert!(matches!(
            client.parse_event(&h, &[0x00, 0x9f, 0x92, 0x96, 0xff]),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            client.parse_event(&h, "[".repeat(50_000).as_bytes()),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            client.parse_event(&h, b"{\"callid\":1e400}"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            client.parse_event(&h, b"{\"callid\":99999999999999999999999}"),
            Err(ParseError::InvalidField { .. })
        ));
        assert_eq!(
            client.parse_event(&h, b"{\"origem\":\"1001\"}"),
            Err(ParseError::MissingCallId)
        );
        assert_eq!(
            client.parse_event(&h, b"\"callid\""),
            Err(ParseError::NotAnObject)
        );
        assert!(matches!(
            client.parse_event(&h, &vec![b'{'; 1 << 20]),
            Err(ParseError::TooLarge { .. })
        ));
        Ok(())
    }

    // -------------------------------------------------------------------------------------------
    // Client against the mock
    // -------------------------------------------------------------------------------------------

    #[tokio::test]
    async fn bad_credentials_are_unauthorized() -> Result<()> {
        let (mock, _) = start(instant_cdrs()).await?;
        let mut config = mock.suite_config(11);
        config.token = "wrong".into();
        let client = SuiteClient::new(config)?;
        let err = client.list_extensions().await.err().context("must fail")?;
        assert!(
            matches!(err, PabxError::Unauthorized(ref m) if m.contains("inválido")),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        let err = client
            .click_to_call("1001", "+5511987654321")
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::Unauthorized(_)), "{err:?}");
        let err = client
            .list_calls(&CallFilter::default(), PageRequest::first(10))
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::Unauthorized(_)), "{err:?}");
        assert!(mock.calls().is_empty());

        // The mock answers the envelope inside an HTTP 200: 401 without headers, 403 when wrong.
        let url = format!("{}/listar_ramais?ramal_id=0", mock.base_url());
        let resp = reqwest::get(&url).await?;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await?;
        assert_eq!(body["http_response_code"], 401);
        assert!(body["mensagem"].as_str().is_some_and(|m| !m.is_empty()));
        let body: Value = reqwest::Client::new()
            .get(&url)
            .header("usuario", "jtcrm")
            .header("token", "nope")
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(body["http_response_code"], 403);
        Ok(())
    }

    #[tokio::test]
    async fn unknown_or_blocked_extension_is_rejected() -> Result<()> {
        let (mock, client) = start(instant_cdrs()).await?;
        let err = client
            .click_to_call("1999", "+5511987654321")
            .await
            .err()
            .context("must fail")?;
        assert!(
            matches!(err, PabxError::Rejected(ref m) if m.contains("1999")),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        mock.add_extension(ExtensionSpec {
            blocked: true,
            ..ExtensionSpec::new("1500", "Bloqueado")
        });
        let err = client
            .click_to_call("1500", "+5511987654321")
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::Rejected(_)), "{err:?}");
        // Refused before sending: not E.164, bad extension.
        let before = mock.requests().len();
        let err = client
            .click_to_call("1001", "11987654321")
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::InvalidInput(_)), "{err:?}");
        let err = client
            .click_to_call("", "+5511987654321")
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::InvalidInput(_)), "{err:?}");
        assert!(
            mock.requests()[before..]
                .iter()
                .all(|r| r.path != "/discar_numero")
        );
        assert!(mock.calls().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn click_to_call_cdr_appears_only_after_the_delay() -> Result<()> {
        let (mock, client) = start(MockPabxOptions {
            cdr_delay: Duration::from_secs(3600),
            ..MockPabxOptions::default()
        })
        .await?;
        let pabx: Arc<dyn Pabx> = Arc::new(client);
        let started = chrono::Utc::now();
        let call = pabx.click_to_call("1001", "+5521987654321").await?;
        let id = call.provider_call_id.context("chamada_id")?;
        // With an hour of delay the CDR cannot be there yet.
        assert!(find_call(pabx.as_ref(), &id).await?.is_none());
        assert!(mock.calls().iter().all(|c| !c.visible));
        mock.advance(Duration::from_secs(3600));
        let rec = poll("the CDR", || find_call(pabx.as_ref(), &id)).await?;
        assert_eq!(rec.direction, Direction::Outbound);
        assert_eq!(rec.extension.as_deref(), Some("1001"));
        assert_eq!(rec.from.raw, "1001");
        assert_eq!(rec.to.raw, "021987654321"); // long distance from DDD 11
        assert_eq!(rec.to.e164.as_deref(), Some("+5521987654321"));
        assert_eq!((rec.outcome, rec.sip_code), (Outcome::Answered, Some(200)));
        assert_eq!((rec.duration_s, rec.talk_s), (47, 42));
        assert_eq!(rec.operator.as_deref(), Some("Recepção"));
        assert!(rec.transcription.is_some() && rec.summary.is_some());
        assert_eq!(rec.recording_urls.len(), 1);
        let at = rec.started_at.context("started_at")?;
        // The mock writes seconds in local time; allow for the truncation.
        assert!(
            at >= started - chrono::Duration::seconds(1) && at <= chrono::Utc::now(),
            "{at}"
        );

        // The recording is a WAV.
        let wav = reqwest::get(&rec.recording_urls[0]).await?;
        assert_eq!(wav.status(), 200);
        assert_eq!(
            wav.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"audio/wav"[..])
        );
        let bytes = wav.bytes().await?;
        assert!(bytes.starts_with(b"RIFF") && bytes.len() > 1024);
        Ok(())
    }

    #[tokio::test]
    async fn cdr_appears_after_a_short_real_delay() -> Result<()> {
        let (mock, client) = start(MockPabxOptions {
            cdr_delay: Duration::from_millis(300),
            ..MockPabxOptions::default()
        })
        .await?;
        let call = client.click_to_call("1002", "+5511987654321").await?;
        let id = call.provider_call_id.context("chamada_id")?;
        let rec = poll("the CDR", || find_call(&client, &id)).await?;
        assert_eq!(rec.to.raw, "987654321"); // local call: DDD dropped
        assert!(mock.calls().iter().all(|c| c.visible));
        Ok(())
    }

    #[tokio::test]
    async fn dialling_uses_the_extension_area_code_and_csp() -> Result<()> {
        let (mock, _) = start(instant_cdrs()).await?;
        mock.add_extension(ExtensionSpec {
            area_code: Some(21),
            ..ExtensionSpec::new("2101", "Filial Rio")
        });
        let mut config = mock.suite_config(11);
        config.csp = Some(15);
        let client = SuiteClient::new(config)?;
        client.click_to_call("2101", "+5521987654321").await?; // local for the Rio extension
        client.click_to_call("2101", "+5511987654321").await?; // long distance with CSP
        client.click_to_call("1001", "+5521987654321").await?; // long distance from São Paulo
        client.click_to_call("1001", "+14155550100").await?; // international with CSP
        let dialled: Vec<String> = mock.calls().into_iter().map(|c| c.destino).collect();
        assert_eq!(
            dialled,
            [
                "987654321",
                "01511987654321",
                "01521987654321",
                "001514155550100"
            ]
        );
        // The body carries the extension as a number and empty variables.
        let req = mock
            .requests()
            .into_iter()
            .find(|r| r.path == "/discar_numero")
            .context("request")?;
        let body: Value = serde_json::from_str(&req.body)?;
        assert_eq!(body["dados"]["numero_ramal_origem"], 2101);
        assert_eq!(body["dados"]["variaveis"], json!([]));

        // Without the extension lookup, the tenant DDD is used.
        let mut config = mock.suite_config(11);
        config.use_extension_area_code = false;
        let client = SuiteClient::new(config)?;
        client.click_to_call("2101", "+5521987654321").await?;
        assert_eq!(
            mock.calls().last().map(|c| c.destino.clone()).as_deref(),
            Some("021987654321")
        );
        Ok(())
    }

    #[tokio::test]
    async fn scripted_outcomes_and_inbound_calls() -> Result<()> {
        let (mock, client) = start(instant_cdrs()).await?;
        mock.script_call("+5511911111111", MockOutcome::Busy);
        mock.script_call("+5511922222222", MockOutcome::NoAnswer { ring_s: 30 });
        mock.script_call(
            "+5511933333333",
            MockOutcome::Answered {
                ring_s: 12,
                talk_s: 100,
            },
        );
        mock.script_call("+5511944444444", MockOutcome::Failed);
        mock.script_call("+5511955555555", MockOutcome::Canceled { ring_s: 4 });
        let mut ids = Vec::new();
        for n in [
            "+5511911111111",
            "+5511922222222",
            "+5511933333333",
            "+5511944444444",
            "+5511955555555",
        ] {
            ids.push(
                client
                    .click_to_call("1001", n)
                    .await?
                    .provider_call_id
                    .context("id")?,
            );
        }
        let missed = mock.push_inbound(InboundCall {
            from: "+5521987654321".into(),
            extension: "1002".into(),
            outcome: MockOutcome::NoAnswer { ring_s: 25 },
        });
        let answered = mock.push_inbound(InboundCall {
            from: "+5511987654321".into(),
            extension: "1003".into(),
            outcome: MockOutcome::Answered {
                ring_s: 8,
                talk_s: 60,
            },
        });
        let mut got = Vec::new();
        for id in ids.iter().chain([&missed, &answered]) {
            got.push(poll("the CDR", || find_call(&client, id)).await?);
        }
        let summary: Vec<(Outcome, Option<u16>)> =
            got.iter().map(|r| (r.outcome, r.sip_code)).collect();
        assert_eq!(
            summary,
            [
                (Outcome::Busy, Some(486)),
                (Outcome::NoAnswer, Some(480)),
                (Outcome::Answered, Some(200)),
                (Outcome::Failed, Some(404)),
                (Outcome::Canceled, Some(487)),
                (Outcome::NoAnswer, Some(480)),
                (Outcome::Answered, Some(200)),
            ]
        );
        assert_eq!((got[2].duration_s, got[2].talk_s), (112, 100));
        assert_eq!((got[1].duration_s, got[1].talk_s), (30, 0));
        for r in &got[..5] {
            assert_eq!(r.direction, Direction::Outbound);
        }
        let (m, a) = (&got[5], &got[6]);
        assert_eq!(
            (m.direction, m.extension.as_deref()),
            (Direction::Inbound, Some("1002"))
        );
        assert_eq!(m.from.e164.as_deref(), Some("+5521987654321"));
        assert_eq!((m.wait_s, m.talk_s), (25, 0));
        assert!(m.recording_urls.is_empty());
        assert_eq!(
            (a.direction, a.extension.as_deref()),
            (Direction::Inbound, Some("1003"))
        );
        assert_eq!(a.from.e164.as_deref(), Some("+5511987654321"));
        assert_eq!(m.from.raw, "021987654321"); // the PABX's format, normalised back above
        assert_eq!(a.recording_urls.len(), 1);
        // An unscripted call gets the default outcome.
        let id = client
            .click_to_call("1001", "+5511911111111")
            .await?
            .provider_call_id
            .context("id")?;
        assert_eq!(
            poll("the CDR", || find_call(&client, &id)).await?.outcome,
            Outcome::Answered
        );
        Ok(())
    }

    #[tokio::test]
    async fn pagination_across_three_pages_returns_every_record_once() -> Result<()> {
        let (mock, client) = start(instant_cdrs()).await?;
        let pabx: Arc<dyn Pabx> = Arc::new(client);
        for i in 0..25u32 {
            if i % 5 == 4 {
                mock.push_inbound(InboundCall {
                    from: format!("+55119{:08}", 87_650_000 + i),
                    extension: "1001".into(),
                    outcome: MockOutcome::NoAnswer { ring_s: 10 },
                });
            } else {
                pabx.click_to_call("1002", &format!("+55219{:08}", 87_650_000 + i))
                    .await?;
            }
        }
        let first = pabx
            .list_calls(&CallFilter::default(), PageRequest::first(10))
            .await?;
        assert_eq!(
            (first.items.len(), first.total, first.next_offset),
            (10, Some(25), Some(10))
        );
        let (records, pages) = all_calls(pabx.as_ref(), 10).await?;
        assert_eq!(pages, 3);
        let ids: Vec<&str> = records
            .iter()
            .map(|r| r.provider_call_id.as_str())
            .collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!((ids.len(), unique.len()), (25, 25));
        let expected: BTreeSet<String> = mock.calls().iter().map(|c| c.id.to_string()).collect();
        assert_eq!(
            unique
                .into_iter()
                .map(str::to_owned)
                .collect::<BTreeSet<_>>(),
            expected
        );
        // The last page stops, a page past the end is empty.
        let past = pabx
            .list_calls(
                &CallFilter::default(),
                PageRequest {
                    offset: 25,
                    limit: 10,
                },
            )
            .await?;
        assert!(past.items.is_empty() && past.next_offset.is_none());
        // A huge page size is clamped to 1000.
        let big = pabx
            .list_calls(&CallFilter::default(), PageRequest::first(50_000))
            .await?;
        assert_eq!(big.items.len(), 25);
        let req = mock
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == "/listar_historico_chamada")
            .context("request")?;
        assert!(req.query.contains("quantidade=1000"), "{}", req.query);
        assert!(
            req.query.contains("retorna_transcricao=sim")
                && req.query.contains("retorna_resumo=sim")
        );
        Ok(())
    }

    #[tokio::test]
    async fn mock_mixes_wire_types_and_the_client_reads_them() -> Result<()> {
        let (mock, client) = start(instant_cdrs()).await?;
        for _ in 0..4 {
            client.click_to_call("1001", "+5511987654321").await?;
        }
        mock.push_inbound(InboundCall {
            from: "+5511987654321".into(),
            extension: "1001".into(),
            outcome: MockOutcome::Busy,
        });
        let body: Value = reqwest::Client::new()
            .get(format!(
                "{}/listar_historico_chamada?quantidade=10&pos_registro_inicial=0",
                mock.base_url()
            ))
            .header("usuario", "jtcrm")
            .header("token", "mock-token")
            .send()
            .await?
            .json()
            .await?;
        let dados = body["dados"].as_array().context("dados")?;
        assert_eq!(dados.len(), 5);
        assert!(dados[0]["link_gravacao"].is_string() && dados[1]["link_gravacao"].is_array());
        assert_eq!(dados[1]["link_gravacao"].as_array().map(Vec::len), Some(2));
        assert!(dados[0]["chamada_id"].is_u64() && dados[1]["chamada_id"].is_string());
        assert!(dados[0]["sip_code"].is_u64() && dados[1]["sip_code"].is_string());
        assert_eq!(dados[4]["link_gravacao"], "");
        assert!(dados[0].get("transcricao").is_none()); // not asked for
        let date = dados[0]["data"].as_str().context("data")?;
        assert!(
            date.len() == 19 && &date[2..3] == "/" && &date[5..6] == "/" && &date[13..14] == ":",
            "{date}"
        );
        assert_eq!(dados[0]["duracao"], "00:00:47");
        let (records, _) = all_calls(&client, 100).await?;
        let urls: Vec<usize> = records.iter().map(|r| r.recording_urls.len()).collect();
        assert_eq!(urls, [1, 2, 1, 1, 0]);
        for url in records.iter().flat_map(|r| &r.recording_urls) {
            let bytes = reqwest::get(url).await?.error_for_status()?.bytes().await?;
            ensure!(bytes.starts_with(b"RIFF"), "{url} is not a WAV");
        }
        let missing = reqwest::get(format!("{}/gravacoes/1-1.wav", mock.origin())).await?;
        assert_eq!(missing.status(), 404);
        Ok(())
    }

    #[tokio::test]
    async fn period_and_call_id_filters() -> Result<()> {
        let (mock, client) = start(instant_cdrs()).await?;
        let id = client
            .click_to_call("1001", "+5511987654321")
            .await?
            .provider_call_id
            .context("id")?;
        client.click_to_call("1001", "+5511987654322").await?;
        let now = chrono::Utc::now();
        let around = CallFilter {
            since: Some(now - chrono::Duration::minutes(5)),
            until: Some(now + chrono::Duration::minutes(1)),
            call_id: None,
        };
        assert_eq!(
            client
                .list_calls(&around, PageRequest::first(10))
                .await?
                .items
                .len(),
            2
        );
        let later = CallFilter {
            since: Some(now + chrono::Duration::days(2)),
            until: Some(now + chrono::Duration::days(3)),
            call_id: None,
        };
        assert!(
            client
                .list_calls(&later, PageRequest::first(10))
                .await?
                .items
                .is_empty()
        );
        let one = CallFilter {
            call_id: Some(id.clone()),
            ..around
        };
        let page = client.list_calls(&one, PageRequest::first(10)).await?;
        assert_eq!(
            page.items
                .iter()
                .map(|r| r.provider_call_id.as_str())
                .collect::<Vec<_>>(),
            [id.as_str()]
        );
        let req = mock
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == "/listar_historico_chamada")
            .context("request")?;
        for key in [
            "data_inicial=",
            "hora_inicial=",
            "data_final=",
            "hora_final=",
            "chamada_id=",
        ] {
            assert!(req.query.contains(key), "{key} missing in {}", req.query);
        }
        Ok(())
    }

    #[tokio::test]
    async fn extension_crud() -> Result<()> {
        let (mock, client) = start(instant_cdrs()).await?;
        let pabx: &dyn Pabx = &client;
        let initial = pabx.list_extensions().await?;
        assert_eq!(
            initial
                .iter()
                .map(|e| e.number.as_str())
                .collect::<Vec<_>>(),
            ["1001", "1002", "1003"]
        );
        assert!(
            initial
                .iter()
                .all(|e| e.area_code == Some(11) && e.record_calls && !e.blocked)
        );

        let spec = ExtensionSpec {
            group: Some("Comercial".into()),
            area_code: Some(21),
            external_caller_id: Some("2130001000".into()),
            record_calls: false,
            ..ExtensionSpec::new("2001", "Ana")
        };
        // Two inserts: the mock answers one with the record and the other with only the id.
        let created = pabx.create_extension(&spec).await?;
        let other = pabx
            .create_extension(&ExtensionSpec::new("2002", "Bruno"))
            .await?;
        assert_ne!(created.provider_id, other.provider_id);
        assert_eq!(
            (created.number.as_str(), created.name.as_str()),
            ("2001", "Ana")
        );
        assert_eq!(
            (created.area_code, created.record_calls, created.blocked),
            (Some(21), false, false)
        );
        assert_eq!(other.number, "2002");
        let listed = pabx.list_extensions().await?;
        assert_eq!(listed.len(), 5);
        assert!(listed.contains(&created));

        let update = ExtensionSpec {
            name: "Ana Souza".into(),
            blocked: true,
            area_code: Some(31),
            ..spec.clone()
        };
        let updated = pabx.update_extension(&created.provider_id, &update).await?;
        assert_eq!(
            (updated.name.as_str(), updated.blocked, updated.area_code),
            ("Ana Souza", true, Some(31))
        );
        let listed = pabx.list_extensions().await?;
        assert_eq!(
            listed.iter().find(|e| e.provider_id == created.provider_id),
            Some(&updated)
        );

        pabx.delete_extension(&created.provider_id).await?;
        let listed = pabx.list_extensions().await?;
        assert!(listed.iter().all(|e| e.provider_id != created.provider_id));
        assert_eq!(mock.extensions().len(), 4);

        // Business errors.
        let err = pabx
            .delete_extension(&created.provider_id)
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::Rejected(_)), "{err:?}");
        let err = pabx
            .create_extension(&ExtensionSpec::new("1001", "Dup"))
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::Rejected(_)), "{err:?}");
        let err = pabx
            .update_extension("999", &spec)
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::Rejected(_)), "{err:?}");
        let err = pabx
            .create_extension(&ExtensionSpec::new("12a", "Bad"))
            .await
            .err()
            .context("must fail")?;
        assert!(matches!(err, PabxError::InvalidInput(_)), "{err:?}");
        Ok(())
    }

    #[tokio::test]
    async fn server_errors_and_timeouts_are_retryable_transport_errors() -> Result<()> {
        let (mock, client) = start(instant_cdrs()).await?;
        mock.fail_next(1, 500);
        let err = client.list_extensions().await.err().context("must fail")?;
        assert!(
            matches!(err, PabxError::Transport(ref m) if m.contains("500")),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert_eq!(client.list_extensions().await?.len(), 3); // the retry works

        mock.fail_next(1, 503);
        let err = client
            .list_calls(&CallFilter::default(), PageRequest::first(5))
            .await
            .err()
            .context("must fail")?;
        assert!(err.is_retryable(), "{err:?}");

        mock.set_latency(Duration::from_secs(5));
        let mut config = mock.suite_config(11);
        config.timeout = Duration::from_millis(200);
        let slow = SuiteClient::new(config)?;
        let err = slow
            .list_extensions()
            .await
            .err()
            .context("must time out")?;
        assert!(
            matches!(err, PabxError::Transport(ref m) if m.contains("timeout")),
            "{err:?}"
        );
        mock.set_latency(Duration::ZERO);

        // Nobody listening.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            l.local_addr()?.port()
        };
        let gone = SuiteClient::new(SuiteConfig::new(
            format!("http://127.0.0.1:{port}/suite/api"),
            "u",
            "t",
            11,
        ))?;
        let err = gone.list_extensions().await.err().context("must fail")?;
        assert!(err.is_retryable(), "{err:?}");

        // A 200 that is not the envelope.
        let wrong = SuiteClient::new(SuiteConfig::new(
            format!("{}/gravacoes", mock.origin()),
            "u",
            "t",
            11,
        ))?;
        let err = wrong.list_extensions().await.err().context("must fail")?;
        assert!(
            matches!(err, PabxError::Rejected(_) | PabxError::InvalidResponse(_)),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        Ok(())
    }

    #[tokio::test]
    async fn call_end_events_are_posted_in_every_format_and_parse() -> Result<()> {
        use axum::body::Bytes;
        use axum::routing::post;

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(HeaderMap, Bytes)>();
        let receiver = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((headers, body));
                    "ok"
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let hook = format!("http://{}/hook", listener.local_addr()?);
        let server = tokio::spawn(async move { axum::serve(listener, receiver).await });

        let (mock, client) = start(MockPabxOptions {
            cdr_delay: Duration::from_secs(3600),
            event_url: Some(hook),
            event_format: EventFormat::Rotate,
            ..MockPabxOptions::default()
        })
        .await?;
        let a = client
            .click_to_call("1001", "+5511987654321")
            .await?
            .provider_call_id
            .context("id")?;
        let b = client
            .click_to_call("1002", "+5521987654321")
            .await?
            .provider_call_id
            .context("id")?;
        let c = mock.push_inbound(InboundCall {
            from: "+5531987654321".into(),
            extension: "1003".into(),
            outcome: MockOutcome::NoAnswer { ring_s: 20 },
        });
        let mut events = Vec::new();
        let mut trailing_commas = 0;
        let mut forms = 0;
        for _ in 0..3 {
            let (headers, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await?
                .ok_or_else(|| anyhow!("receiver closed"))?;
            let text = String::from_utf8_lossy(&body).into_owned();
            trailing_commas += usize::from(text.ends_with(",}"));
            forms += usize::from(text.starts_with("callid="));
            events.push(client.parse_event(&headers, &body)?);
        }
        assert_eq!((trailing_commas, forms), (1, 1));
        events.sort_by(|x, y| x.provider_call_id.cmp(&y.provider_call_id));
        let ids: Vec<&str> = events.iter().map(|e| e.provider_call_id.as_str()).collect();
        assert_eq!(ids, [a.as_str(), b.as_str(), c.as_str()]);
        assert_eq!(events[0].direction, Direction::Outbound);
        assert_eq!(
            events[1].to.as_ref().and_then(|p| p.e164.as_deref()),
            Some("+5521987654321")
        );
        assert_eq!(
            (events[2].direction, events[2].extension.as_deref()),
            (Direction::Inbound, Some("1003"))
        );
        assert_eq!(
            events[2].from.as_ref().and_then(|p| p.e164.as_deref()),
            Some("+5531987654321")
        );
        assert_eq!(events[0].recording_urls.len(), 1);
        assert!(events[2].recording_urls.is_empty());
        // The event arrives before the CDR: the CRM then polls the history.
        assert!(find_call(&client, &a).await?.is_none());
        mock.release_all();
        poll("the CDR", || find_call(&client, &a)).await?;
        let sent = poll("the delivery log", || {
            let sent = mock.events_sent();
            async move { Ok((sent.len() == 3).then_some(sent)) }
        })
        .await?;
        assert!(sent.iter().all(|e| e.status == Some(200)), "{sent:?}");
        server.abort();
        Ok(())
    }
}
