//! FlyERP adapter: the contract body, then the client against the mock over real HTTP.

// Wrapped in a module so `cargo test -p jtcrm-integrations flyerp` selects every test here.
mod flyerp {
    use anyhow::{Context, Result, bail};
    use chrono::NaiveDate;
    use jtcrm_integrations::flyerp::mock::{self, MockFlyErpHandle, MockOptions};
    use jtcrm_integrations::flyerp::{
        Client, ClientConfig, ContractService, ContractSync, Customer, ErpError, ErpProvider,
        contract_body,
    };
    use serde_json::{Value, json};
    use tokio::net::TcpListener;

    const CNPJ_MASKED: &str = "11.222.333/0001-81";
    const CNPJ_BARE: &str = "11222333000181";

    fn day(y: i32, m: u32, d: u32) -> Result<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d).context("valid date")
    }

    fn contract(reference: &str, cnpj: &str) -> Result<ContractSync> {
        Ok(ContractSync {
            reference: reference.into(),
            customer: Customer {
                cnpj_cpf: cnpj.into(),
                razao_social: "Provedor Exemplo Ltda".into(),
                nome_fantasia: Some("ExemploNet".into()),
                state_registration: Some("123.456.789.110".into()),
                street: Some("Rua das Flores".into()),
                number: Some("100".into()),
                complement: None,
                district: Some("Centro".into()),
                city: Some("Campinas".into()),
                state: Some("SP".into()),
                cep: Some("13010-000".into()),
                phones: vec!["(19) 3232-1000".into(), "(19) 99876-5432".into()],
                email: Some("financeiro@exemplo.net.br".into()),
                contact_name: Some("Carla".into()),
                contact_phone: Some("(19) 99876-5432".into()),
                notes: None,
            },
            services: vec![
                ContractService {
                    product_code: "LINK-500M".into(),
                    quantity: 1,
                    unit_price_cents: 12990,
                    description: Some("Link dedicado 500 Mbps".into()),
                    start_date: Some(day(2026, 3, 5)?),
                    non_billable: false,
                },
                ContractService {
                    product_code: "ROUTER-COMODATO".into(),
                    quantity: 2,
                    unit_price_cents: 0,
                    description: None,
                    start_date: None,
                    non_billable: true,
                },
            ],
            description: Some("Contrato CRM 2026-0042".into()),
            first_due_date: day(2026, 4, 10)?,
            due_day: 10,
            start_date: day(2026, 3, 5)?,
            end_date: Some(day(2027, 3, 4)?),
            recurrence_months: 1,
            seller_code: Some("V07".into()),
            notes: Some("Origem: jtcrm".into()),
        })
    }

    async fn start_mock(opts: MockOptions) -> Result<MockFlyErpHandle> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Ok(mock::serve(listener, opts).await?)
    }

    fn client_for(mock: &MockFlyErpHandle) -> Result<Client> {
        Ok(Client::new(mock.client_config())?)
    }

    /// POSTs a raw body to the mock's `CadastrarContrato`, returning the HTTP status and JSON.
    async fn raw_post(mock: &MockFlyErpHandle, body: &Value) -> Result<(u16, Value)> {
        let resp = reqwest::Client::new()
            .post(format!("{}/apis/CadastrarContrato", mock.base_url()))
            .bearer_auth(mock.token())
            .json(body)
            .send()
            .await?;
        Ok((resp.status().as_u16(), resp.json().await?))
    }

    #[test]
    fn contract_body_has_flyerp_names_dates_and_decimals() -> Result<()> {
        let body = contract_body(&contract("2026-0042", CNPJ_MASKED)?);
        assert_eq!(body["cnpj_cpf_cliente"], CNPJ_MASKED);
        assert_eq!(body["referencia"], "2026-0042");
        assert_eq!(body["descricao"], "Contrato CRM 2026-0042");
        assert_eq!(body["data_primeiro_vencimento"], "10/04/2026");
        assert_eq!(body["dia_vencimento"], json!(10));
        assert!(body["dia_vencimento"].is_u64());
        assert_eq!(body["data_vigencia_inicial"], "05/03/2026");
        assert_eq!(body["data_vigencia_final"], "04/03/2027");
        assert_eq!(body["recorrencia"], json!(1));
        assert_eq!(body["codigo_vendedor"], "V07");
        assert_eq!(body["observacao_nao_fiscal"], "Origem: jtcrm");

        let s0 = &body["servicos"][0];
        assert_eq!(s0["referencia"], "LINK-500M");
        assert_eq!(s0["quantidade"], json!(1));
        assert!(s0["valor_unitario"].is_f64());
        assert_eq!(s0["valor_unitario"].as_f64(), Some(129.9));
        assert_eq!(s0["complemento"], "Link dedicado 500 Mbps");
        assert_eq!(s0["data_inicio_servico"], "05/03/2026");
        assert_eq!(s0["nao_faturavel"], json!(false));
        let s1 = &body["servicos"][1];
        assert_eq!(s1["valor_unitario"].as_f64(), Some(0.0));
        assert_eq!(s1["nao_faturavel"], json!(true));
        assert!(s1.get("complemento").is_none() && s1.get("data_inicio_servico").is_none());

        let c = &body["cliente"];
        assert_eq!(c["cnpj_cpf"], CNPJ_MASKED);
        assert_eq!(c["razao_social_nome"], "Provedor Exemplo Ltda");
        assert_eq!(c["nome_fantasia_apelido"], "ExemploNet");
        assert_eq!(c["inscricao_estadual_RG"], "123.456.789.110");
        assert_eq!(c["endereco"], "Rua das Flores");
        assert_eq!(c["numero"], "100");
        assert_eq!(c["bairro"], "Centro");
        assert_eq!(c["cidade"], "Campinas");
        assert_eq!(c["estado"], "SP");
        assert_eq!(c["cep"], "13010-000");
        assert_eq!(c["telefone1"], "(19) 3232-1000");
        assert_eq!(c["telefone2"], "(19) 99876-5432");
        assert_eq!(c["contato_nome"], "Carla");
        assert_eq!(c["email"], "financeiro@exemplo.net.br");
        assert!(
            c.get("complemento").is_none(),
            "absent optionals are omitted, not null"
        );

        // Money is a JSON number with a decimal point, never a string or cents.
        let text = serde_json::to_string(&body)?;
        assert!(text.contains("\"valor_unitario\":129.9"), "{text}");
        assert!(!text.contains("null"));

        // Cents that are not representable exactly still print as two decimals at most.
        let mut odd = contract("x", CNPJ_BARE)?;
        odd.services[0].unit_price_cents = 1_234_567_891;
        let text = serde_json::to_string(&contract_body(&odd))?;
        assert!(text.contains("\"valor_unitario\":12345678.91"), "{text}");
        Ok(())
    }

    #[test]
    fn structural_validation() -> Result<()> {
        let good = contract("R1", CNPJ_MASKED)?;
        assert!(good.validate().is_ok());
        let mut c = good.clone();
        c.reference = "  ".into();
        assert!(matches!(c.validate(), Err(ErpError::InvalidInput(_))));
        let mut c = good.clone();
        c.due_day = 32;
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.services.clear();
        assert!(c.validate().is_err());
        let mut c = good.clone();
        c.services[0].unit_price_cents = -1;
        assert!(c.validate().is_err());
        let mut c = good;
        c.end_date = Some(day(2020, 1, 1)?);
        assert!(c.validate().is_err());

        assert!(ClientConfig::for_company("minhaempresa", "t").is_ok());
        assert_eq!(
            ClientConfig::for_company("MinhaEmpresa", "t")?.base_url,
            "https://minhaempresa.flyerp.com.br"
        );
        for bad in ["", "evil.com/x", "a b", "-x", "x@y"] {
            assert!(ClientConfig::for_company(bad, "t").is_err(), "{bad}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn create_then_find_same_id_and_customer_upserted() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let client = client_for(&mock)?;
        let erp: &dyn ErpProvider = &client;
        erp.test_credentials().await?;

        let first = erp
            .upsert_contract(&contract("2026-0042", CNPJ_MASKED)?)
            .await?;
        assert!(first.created);
        assert_eq!(first.id, "1001");
        let stored = mock.contracts();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].body["data_primeiro_vencimento"], "10/04/2026");
        assert_eq!(
            stored[0].body["servicos"][0]["valor_unitario"].as_f64(),
            Some(129.9)
        );
        assert_eq!(mock.customers().len(), 1);
        assert_eq!(mock.customers()[0].key, CNPJ_BARE);

        // Same reference again: found, not re-created.
        let again = erp
            .upsert_contract(&contract("2026-0042", CNPJ_BARE)?)
            .await?;
        assert_eq!(again.id, first.id);
        assert!(!again.created);
        assert_eq!(mock.contracts_received(), 1);

        let found = erp
            .find_contract_by_reference(CNPJ_BARE, "2026-0042")
            .await?;
        assert_eq!(found.map(|f| f.id), Some(first.id.clone()));
        assert_eq!(
            erp.find_contract_by_reference(CNPJ_MASKED, "nope").await?,
            None
        );

        // A second contract of the same customer, unmasked CNPJ: the customer is reused.
        let other = erp
            .upsert_contract(&contract("2026-0043", CNPJ_BARE)?)
            .await?;
        assert_eq!(other.id, "1002");
        assert_eq!(mock.customers().len(), 1);
        assert_eq!(mock.contracts().len(), 2);

        // GetClienteEFornecedores answers an array.
        let clientes: Value = reqwest::Client::new()
            .get(format!("{}/apis/GetClienteEFornecedores", mock.base_url()))
            .bearer_auth(mock.token())
            .query(&[
                ("codigo", ""),
                ("enquadramento", "1"),
                ("buscarEmTodasFiliais", "true"),
            ])
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(clientes.as_array().map(Vec::len), Some(1));
        assert_eq!(clientes[0]["razao_social_nome"], "Provedor Exemplo Ltda");
        Ok(())
    }

    #[tokio::test]
    async fn business_errors_are_rejected_and_not_retryable() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let client = client_for(&mock)?;

        // Invalid CNPJ check digit: Sucesso:false → Rejected.
        let err = client
            .upsert(&contract("R-BAD", "11.222.333/0001-82")?)
            .await
            .err()
            .context("bad CNPJ accepted")?;
        assert!(
            matches!(&err, ErpError::Rejected(m) if m.contains("inválido")),
            "{err:?}"
        );
        assert!(!err.is_retryable());

        // The same reference already used by another customer: the lookup (by customer) misses,
        // the ERP refuses the duplicate, the second lookup misses too → Rejected.
        client.upsert(&contract("R-1", CNPJ_MASKED)?).await?;
        let err = client
            .upsert(&contract("R-1", "529.982.247-25")?)
            .await
            .err()
            .context("duplicate reference accepted")?;
        assert!(
            matches!(&err, ErpError::Rejected(m) if m.contains("referencia")),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(mock.contracts().len(), 1);

        // Product references checked when the mock knows the catalogue.
        let strict = start_mock(MockOptions {
            products: Some(vec!["LINK-500M".into()]),
            ..MockOptions::default()
        })
        .await?;
        let err = client_for(&strict)?
            .upsert(&contract("R-2", CNPJ_MASKED)?)
            .await
            .err()
            .context("unknown product accepted")?;
        assert!(matches!(&err, ErpError::Rejected(m) if m.contains("ROUTER-COMODATO")));

        // Local validation never reaches the ERP.
        let before = mock.requests();
        let mut c = contract("R-3", CNPJ_MASKED)?;
        c.services.clear();
        assert!(matches!(
            client.upsert(&c).await,
            Err(ErpError::InvalidInput(_))
        ));
        assert_eq!(mock.requests(), before);
        Ok(())
    }

    #[tokio::test]
    async fn mock_business_rules_over_raw_http() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let mut body = contract_body(&contract("RAW-1", CNPJ_MASKED)?);

        // Bad CNPJ → HTTP 200, Sucesso:false.
        body["cnpj_cpf_cliente"] = json!("11.222.333/0001-80");
        body["cliente"]["cnpj_cpf"] = json!("11.222.333/0001-80");
        let (status, v) = raw_post(&mock, &body).await?;
        assert_eq!(status, 200);
        assert_eq!(v["Sucesso"], json!(false));
        assert!(v["Mensagem"].as_str().is_some_and(|m| m.contains("CNPJ")));

        // Unknown customer and no cliente block.
        let mut no_cliente = contract_body(&contract("RAW-2", CNPJ_MASKED)?);
        if let Some(m) = no_cliente.as_object_mut() {
            m.remove("cliente");
        }
        let (status, v) = raw_post(&mock, &no_cliente).await?;
        assert_eq!((status, v["Sucesso"].clone()), (200, json!(false)));
        assert!(
            v["Mensagem"]
                .as_str()
                .is_some_and(|m| m.contains("Cliente não encontrado"))
        );

        // Wrong date format, money as a string.
        let mut iso = contract_body(&contract("RAW-3", CNPJ_MASKED)?);
        iso["data_primeiro_vencimento"] = json!("2026-04-10");
        assert_eq!(raw_post(&mock, &iso).await?.1["Sucesso"], json!(false));
        let mut text_money = contract_body(&contract("RAW-4", CNPJ_MASKED)?);
        text_money["servicos"][0]["valor_unitario"] = json!("129,90");
        assert_eq!(
            raw_post(&mock, &text_money).await?.1["Sucesso"],
            json!(false)
        );
        assert!(mock.contracts().is_empty());

        // Created with the block, then the customer is known without it (masked or not).
        let (_, v) = raw_post(&mock, &contract_body(&contract("RAW-5", CNPJ_MASKED)?)).await?;
        assert_eq!(v["Sucesso"], json!(true));
        assert!(v["Id"].is_i64());
        no_cliente["cnpj_cpf_cliente"] = json!(CNPJ_BARE);
        let (_, v) = raw_post(&mock, &no_cliente).await?;
        assert_eq!(v["Sucesso"], json!(true), "{v}");

        // Duplicate referencia.
        let (status, v) = raw_post(&mock, &no_cliente).await?;
        assert_eq!((status, v["Sucesso"].clone()), (200, json!(false)));
        assert_eq!(mock.contracts().len(), 2);

        // Unknown action and missing token.
        let http = reqwest::Client::new();
        let resp = http
            .get(format!("{}/apis/CadastrarCliente", mock.base_url()))
            .bearer_auth(mock.token())
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 404);
        let resp = http
            .get(format!("{}/apis/GetContrato", mock.base_url()))
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 401);
        Ok(())
    }

    #[tokio::test]
    async fn unauthorized_token() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let bad = Client::new(ClientConfig::new(mock.base_url(), "wrong-token"))?;
        assert_eq!(bad.check_credentials().await, Err(ErpError::Unauthorized));
        let err = bad
            .upsert(&contract("R", CNPJ_MASKED)?)
            .await
            .err()
            .context("accepted")?;
        assert_eq!(err, ErpError::Unauthorized);
        assert!(!err.is_retryable());
        assert!(mock.contracts().is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn transient_500s_are_retryable_and_a_retry_loop_creates_one_contract() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let client = client_for(&mock)?;
        let c = contract("2026-0100", CNPJ_MASKED)?;
        mock.fail_next(3);
        let mut attempts = 0;
        let created = loop {
            attempts += 1;
            match client.upsert(&c).await {
                Ok(r) => break r,
                Err(e) if e.is_retryable() && attempts < 10 => {
                    assert!(matches!(e, ErpError::Transport(_)));
                }
                Err(e) => bail!("gave up after {attempts}: {e}"),
            }
        };
        assert_eq!(attempts, 4);
        assert!(created.created);
        assert_eq!(mock.contracts().len(), 1);

        // Network failure: nothing listening.
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            l.local_addr()?
        };
        let gone = Client::new(ClientConfig::new(format!("http://{addr}"), "t"))?;
        let err = gone.check_credentials().await.err().context("connected")?;
        assert!(err.is_retryable());
        Ok(())
    }

    #[tokio::test]
    async fn lost_response_retry_returns_the_same_id() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let client = client_for(&mock)?;
        let c = contract("2026-0200", CNPJ_MASKED)?;

        mock.lose_next_responses(1);
        let err = client
            .upsert(&c)
            .await
            .err()
            .context("lost response not surfaced")?;
        assert!(err.is_retryable(), "{err:?}");
        let stored = mock.contracts();
        assert_eq!(stored.len(), 1, "the ERP did store it");

        let retry = client.upsert(&c).await?;
        assert_eq!(retry.id, stored[0].id.to_string());
        assert!(!retry.created);
        assert_eq!(mock.contracts().len(), 1);
        assert_eq!(
            mock.contracts_received(),
            1,
            "the retry found it without posting"
        );
        Ok(())
    }

    #[tokio::test]
    async fn duplicate_reference_refusal_falls_back_to_the_lookup() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let client = client_for(&mock)?;
        let c = contract("2026-0300", CNPJ_MASKED)?;
        let first = client.upsert(&c).await?;

        // The pre-create lookup reads a stale replica and misses; the ERP then refuses the
        // duplicate; the second lookup finds the original.
        mock.stale_next_reads(1);
        let again = client.upsert(&c).await?;
        assert_eq!(again.id, first.id);
        assert!(!again.created);
        assert_eq!(mock.contracts_received(), 2);
        assert_eq!(mock.contracts().len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn lookup_pages_through_500_contract_pages() -> Result<()> {
        let mock = start_mock(MockOptions::default()).await?;
        let http = reqwest::Client::new();
        let base = contract_body(&contract("P-0", CNPJ_MASKED)?);
        for i in 0..501 {
            let mut body = base.clone();
            body["referencia"] = json!(format!("P-{i}"));
            let v: Value = http
                .post(format!("{}/apis/CadastrarContrato", mock.base_url()))
                .bearer_auth(mock.token())
                .json(&body)
                .send()
                .await?
                .json()
                .await?;
            if v["Sucesso"] != json!(true) {
                bail!("seed {i}: {v}");
            }
        }
        let client = client_for(&mock)?;
        let all = client.contracts_of(CNPJ_BARE).await?;
        assert_eq!(all.len(), 501);
        assert_eq!(mock.calls("GetContrato"), 2);
        let last = client.find_by_reference(CNPJ_MASKED, "P-500").await?;
        assert_eq!(last.map(|r| r.id), Some("1501".to_string()));

        let page2: Value = http
            .get(format!("{}/apis/GetContrato", mock.base_url()))
            .bearer_auth(mock.token())
            .query(&[
                ("cnpj_cpf_cliente", CNPJ_MASKED),
                ("inicioRegistros", "500"),
            ])
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(page2["contratos"].as_array().map(Vec::len), Some(1));
        assert_eq!(page2["contratos"][0]["referencia"], "P-500");
        assert_eq!(
            page2["contratos"][0]["data_primeiro_vencimento"],
            "10/04/2026"
        );
        Ok(())
    }
}
