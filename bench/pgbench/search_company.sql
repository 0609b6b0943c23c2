-- The SQL the API issues for this scenario, as captured from PostgreSQL's statement log (sqlx
-- prepared statements; run with pgbench -M prepared). Variables: -D tenant=… owner=… prefix=… upper=…
-- nids=… nphones=… lim=51 one=1 status=qualified (LIMIT and the IN list are bound parameters in
-- the app too, which matters for generic plans); bench_ids / bench_phones are filled by bench/run.sh.
-- GET /api/leads?q=<company prefix> (sorted by creation, the default): the custom field
-- definitions, then a window of the first token's matches in id order (UUID v7 = creation order)
-- straight from the term index, then the page among those (the app binds the window's ids as an
-- IN list; here they travel as one array parameter through \gset).
SELECT "lead_field_defs"."tenant_id", "lead_field_defs"."id", "lead_field_defs"."key", "lead_field_defs"."label", "lead_field_defs"."field_type", "lead_field_defs"."required", "lead_field_defs"."options", "lead_field_defs"."position", "lead_field_defs"."created_at", "lead_field_defs"."updated_at", "lead_field_defs"."version" FROM "lead_field_defs" WHERE "lead_field_defs"."tenant_id" = :tenant ORDER BY "lead_field_defs"."position" ASC, "lead_field_defs"."id" ASC;
SELECT '{' || string_agg("lead_id"::text, ',') || '}' AS ids FROM (SELECT DISTINCT "lead_terms"."lead_id" FROM "lead_terms" WHERE "lead_terms"."tenant_id" = :tenant AND "lead_terms"."term" >= :prefix AND "lead_terms"."term" < :upper ORDER BY "lead_terms"."lead_id" DESC LIMIT 204) w \gset
SELECT "leads"."tenant_id", "leads"."id", "leads"."name", "leads"."name_sort", "leads"."email", "leads"."phone", "leads"."company", "leads"."cnpj", "leads"."position", "leads"."source", "leads"."status", "leads"."owner_id", "leads"."tags", "leads"."custom_fields", "leads"."cep", "leads"."city", "leads"."state", "leads"."notes", "leads"."score", "leads"."signal_points", "leads"."last_contacted_at", "leads"."merged_into", "leads"."created_at", "leads"."updated_at", "leads"."deleted_at", "leads"."version" FROM "leads" WHERE "leads"."tenant_id" = :tenant AND "leads"."deleted_at" IS NULL AND "leads"."id" = ANY (:ids::uuid[]) ORDER BY "leads"."created_at" DESC, "leads"."id" DESC LIMIT :lim;
