# Trino's `allow` and `batch` entry points (opa.policy.uri, opa.policy.batched-uri).
#
# Deny by default. Any akko role may open a query and read governed tables (masks and row filters
# then shape what it sees, see masks.rego / row_filters.rego); privileged roles (admin, engineer)
# may do everything else the pipelines need, except impersonation and system settings, which stay
# with the admin role.
package trino

import rego.v1

default allow := false

# Operations that reveal no table data and that every Trino session needs.
session_operations := {
	"ExecuteQuery",
	"AccessCatalog",
	"FilterCatalogs",
	"ShowSchemas",
	"FilterSchemas",
	"ShowTables",
	"ShowFunctions",
	"FilterFunctions",
	"ExecuteFunction",
}

# Table-scoped read operations: allowed on governed tables only.
table_read_operations := {"SelectFromColumns", "ShowColumns", "FilterColumns", "FilterTables"}

admin_only_operations := {
	"ImpersonateUser",
	"SetSystemSessionProperty",
	"ReadSystemInformation",
	"WriteSystemInformation",
	"KillQueryOwnedBy",
}

allow if {
	has_akko_role
	input.action.operation in session_operations
}

allow if {
	has_akko_role
	input.action.operation in table_read_operations
	readable_table(input.action.resource.table)
}

# Anyone may see and cancel their own queries.
allow if {
	has_akko_role
	input.action.operation in {"ViewQueryOwnedBy", "FilterViewQueryOwnedBy", "KillQueryOwnedBy"}
	input.action.resource.user.user == input.context.identity.user
}

allow if {
	privileged
	not input.action.operation in admin_only_operations
}

allow if admin

readable_table(t) if governed_table(t)

readable_table(_) if privileged

# Batched filtering: the indexes of filterResources the caller may see.
batch contains i if {
	has_akko_role
	input.action.operation in {"FilterCatalogs", "FilterSchemas", "FilterFunctions"}
	some i, _ in input.action.filterResources
}

batch contains i if {
	has_akko_role
	input.action.operation in {"FilterTables", "FilterColumns"}
	some i, resource in input.action.filterResources
	readable_table(resource.table)
}
