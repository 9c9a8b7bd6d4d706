package trino_test

import rego.v1

column(schema, table, name) := {
	"catalogName": "iceberg", "schemaName": schema, "tableName": table,
	"columnName": name, "columnType": "varchar",
}

mask_request(groups, col) := {
	"context": {"identity": {"user": "someone", "groups": groups}},
	"action": {"operation": "GetColumnMask", "resource": {"column": col}},
}

batch_request(groups, cols) := {
	"context": {"identity": {"user": "someone", "groups": groups}},
	"action": {"operation": "GetColumnMask", "filterResources": [{"column": c} | some c in cols]},
}

masked_value := {"expression": "'***MASKED***'"}

pan := column("marts", "fct_transactions", "card_pan")

name := column("marts", "fct_transactions", "customer_name")

amount := column("marts", "fct_transactions", "amount")

test_pan_clear_only_for_admin_and_engineer if {
	not data.trino.columnMask with input as mask_request(["akko-admin"], pan)
	not data.trino.columnMask with input as mask_request(["akko-engineer"], pan)
	every role in {"akko-analyst", "akko-user", "akko-viewer"} {
		data.trino.columnMask == masked_value with input as mask_request([role], pan)
	}
}

test_name_clear_for_analyst_masked_for_user_and_viewer if {
	not data.trino.columnMask with input as mask_request(["akko-analyst"], name)
	data.trino.columnMask == masked_value with input as mask_request(["akko-user"], name)
	data.trino.columnMask == masked_value with input as mask_request(["akko-viewer"], name)
}

test_non_pii_columns_never_masked if {
	every role in data.akko.rbac.roles {
		not data.trino.columnMask with input as mask_request([role], amount)
	}
}

test_no_role_masks_every_pii_column if {
	data.trino.columnMask == masked_value with input as mask_request([], pan)
	data.trino.columnMask == masked_value with input as mask_request(["offline_access"], name)
}

test_most_permissive_role_wins if {
	not data.trino.columnMask with input as mask_request(["akko-viewer", "akko-analyst"], name)
}

test_untagged_column_with_pii_name_is_masked if {
	data.trino.columnMask == masked_value with input as mask_request(["akko-user"], column("staging", "stg_new", "CARD_PAN"))
}

test_classification_comes_from_data if {
	memo := column("marts", "fct_transactions", "memo")
	data.trino.columnMask == masked_value with input as mask_request(["akko-analyst"], memo)
		with data.akko.pii.tables as {"marts.fct_transactions": {"memo": "pan"}}
}

test_unknown_class_masked_for_everyone if {
	col := column("marts", "fct_transactions", "memo")
	data.trino.columnMask == masked_value with input as mask_request(["akko-admin"], col)
		with data.akko.pii.tables as {"marts.fct_transactions": {"memo": "health"}}
}

test_batch_masks_by_index if {
	masks := data.trino.batchColumnMasks with input as batch_request(["akko-user"], [amount, name, pan])
	masks == {{"index": 1, "viewExpression": masked_value}, {"index": 2, "viewExpression": masked_value}}
}

test_batch_masks_for_analyst if {
	masks := data.trino.batchColumnMasks with input as batch_request(["akko-analyst"], [name, amount, pan])
	masks == {{"index": 2, "viewExpression": masked_value}}
}

test_batch_masks_empty_for_admin if {
	count(data.trino.batchColumnMasks) == 0 with input as batch_request(["akko-admin"], [name, pan])
}

test_no_mask_for_other_operations if {
	req := json.patch(mask_request(["akko-user"], pan), [{"op": "replace", "path": "/action/operation", "value": "SelectFromColumns"}])
	not data.trino.columnMask with input as req
}
