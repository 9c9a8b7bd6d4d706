package trino_test

import rego.v1

request(operation, groups, resource) := {
	"context": {"identity": {"user": "someone", "groups": groups}, "softwareStack": {"trinoVersion": "476"}},
	"action": {"operation": operation, "resource": resource},
}

table(schema, name) := {"table": {"catalogName": "iceberg", "schemaName": schema, "tableName": name, "columns": ["amount"]}}

test_every_role_may_execute_a_query if {
	every role in data.akko.rbac.roles {
		data.trino.allow with input as request("ExecuteQuery", [role], {})
	}
}

test_no_role_may_do_nothing if {
	not data.trino.allow with input as request("ExecuteQuery", [], {})
	not data.trino.allow with input as request("SelectFromColumns", ["offline_access"], table("marts", "fct_transactions"))
}

test_every_role_reads_governed_tables if {
	every role in data.akko.rbac.roles {
		data.trino.allow with input as request("SelectFromColumns", [role], table("marts", "fct_transactions"))
	}
}

test_unprivileged_roles_cannot_read_unknown_tables if {
	every role in {"akko-analyst", "akko-user", "akko-viewer"} {
		not data.trino.allow with input as request("SelectFromColumns", [role], table("staging", "stg_transactions"))
	}
}

test_engineer_reads_unknown_tables_and_writes if {
	data.trino.allow with input as request("SelectFromColumns", ["akko-engineer"], table("staging", "stg_transactions"))
	data.trino.allow with input as request("InsertIntoTable", ["akko-engineer"], table("banking", "transactions"))
}

test_analyst_cannot_write if {
	not data.trino.allow with input as request("InsertIntoTable", ["akko-analyst"], table("banking", "transactions"))
	not data.trino.allow with input as request("DropTable", ["akko-viewer"], table("banking", "transactions"))
}

test_impersonation_is_admin_only if {
	not data.trino.allow with input as request("ImpersonateUser", ["akko-engineer"], {"user": {"user": "alice"}})
	data.trino.allow with input as request("ImpersonateUser", ["akko-admin"], {"user": {"user": "carol"}})
}

test_own_queries_only if {
	data.trino.allow with input as request("KillQueryOwnedBy", ["akko-user"], {"user": {"user": "someone"}})
	not data.trino.allow with input as request("KillQueryOwnedBy", ["akko-user"], {"user": {"user": "alice"}})
}

test_batch_filters_tables_for_viewer if {
	req := {
		"context": {"identity": {"user": "erin", "groups": ["akko-viewer"]}},
		"action": {"operation": "FilterTables", "filterResources": [
			{"table": {"catalogName": "iceberg", "schemaName": "marts", "tableName": "dim_customers"}},
			{"table": {"catalogName": "iceberg", "schemaName": "staging", "tableName": "stg_transactions"}},
			{"table": {"catalogName": "iceberg", "schemaName": "banking", "tableName": "transactions"}},
		]},
	}
	data.trino.batch == {0, 2} with input as req
}

test_batch_empty_without_role if {
	req := {
		"context": {"identity": {"user": "x", "groups": []}},
		"action": {"operation": "FilterCatalogs", "filterResources": [{"catalog": {"name": "iceberg"}}]},
	}
	count(data.trino.batch) == 0 with input as req
}
