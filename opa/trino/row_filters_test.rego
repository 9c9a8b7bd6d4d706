package trino_test

import rego.v1

filter_request(groups) := {
	"context": {"identity": {"user": "someone", "groups": groups}},
	"action": {"operation": "GetRowFilters", "resource": {"table": {
		"catalogName": "iceberg", "schemaName": "marts", "tableName": "enriched_transactions",
	}}},
}

test_viewer_sees_active_eu_apac_only if {
	data.trino.rowFilters == {{"expression": "region IN ('EU','APAC') AND status = 'active'"}} with input as filter_request(["akko-viewer"])
}

test_other_roles_unfiltered if {
	every role in {"akko-admin", "akko-engineer", "akko-analyst", "akko-user"} {
		count(data.trino.rowFilters) == 0 with input as filter_request([role])
	}
}

test_unfiltered_role_lifts_the_filter if {
	count(data.trino.rowFilters) == 0 with input as filter_request(["akko-viewer", "akko-user"])
}

test_no_role_keeps_no_rows if {
	data.trino.rowFilters == {{"expression": "FALSE"}} with input as filter_request(["offline_access"])
}

test_several_filtered_roles_union if {
	filters := {"akko-viewer": "region = 'EU'", "akko-user": "region = 'NA'"}
	data.trino.rowFilters == {{"expression": "(region = 'EU') OR (region = 'NA')"}} with input as filter_request(["akko-viewer", "akko-user"])
		with data.akko.rbac.row_filters as filters
}
