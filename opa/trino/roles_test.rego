package trino_test

import rego.v1

identity(groups) := {"context": {"identity": {"user": "someone", "groups": groups}}}

test_only_known_roles_count if {
	roles := data.trino.akko_roles with input as identity(["akko-analyst", "offline_access", "default-roles-akko"])
	roles == {"akko-analyst"}
}

test_no_groups_means_no_role if {
	not data.trino.has_akko_role with input as identity([])
}

test_missing_identity_means_no_role if {
	not data.trino.has_akko_role with input as {}
}

test_lookalike_role_is_not_a_role if {
	not data.trino.has_akko_role with input as identity(["AKKO-ADMIN", "akko-admin ", "akko"])
}

test_engineer_is_privileged_not_admin if {
	data.trino.privileged with input as identity(["akko-engineer"])
	not data.trino.admin with input as identity(["akko-engineer"])
}

test_table_key_ignores_catalog_and_case if {
	data.trino.table_key({"catalogName": "iceberg", "schemaName": "MARTS", "tableName": "Fct_Transactions"}) == "marts.fct_transactions"
}

test_governed_tables_come_from_pii_data if {
	data.trino.governed_table({"catalogName": "x", "schemaName": "banking", "tableName": "transactions"})
	not data.trino.governed_table({"catalogName": "x", "schemaName": "staging", "tableName": "secrets"})
}
