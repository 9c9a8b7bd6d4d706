# Column masks: Trino's GetColumnMask (opa.policy.column-masking-uri, one column per request) and
# its batched form (opa.policy.batch-column-masking-uri, input.action.filterResources).
#
# A column's class comes from its dbt meta tag (data.akko.pii, generated from the dbt manifest);
# columns the manifest did not tag but whose name is a well-known PII name are classified by name,
# so a new model that forgets the tag still masks card_pan. A class is clear only for the roles the
# matrix lists (data.akko.rbac.column_classes); an unknown class is masked for everyone.
package trino

import rego.v1

column_class(column) := class if {
	class := data.akko.pii.tables[table_key(column)][lower(column.columnName)]
} else := class if {
	class := data.akko.rbac.default_pii_columns[lower(column.columnName)]
}

clear_for_caller(class) if {
	some role in akko_roles
	role in data.akko.rbac.column_classes[class].clear_for
}

masked(column) if {
	class := column_class(column)
	not clear_for_caller(class)
}

# A SQL expression, per Trino's contract; the same text runs on DuckDB locally.
mask := {"expression": data.akko.rbac.mask_expression}

columnMask := mask if {
	input.action.operation == "GetColumnMask"
	masked(input.action.resource.column)
}

batchColumnMasks contains {"index": i, "viewExpression": mask} if {
	input.action.operation == "GetColumnMask"
	some i, resource in input.action.filterResources
	masked(resource.column)
}
