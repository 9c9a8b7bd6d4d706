# Row filters: Trino's GetRowFilters (opa.policy.row-filters-uri) returns a list of SQL expressions.
#
# A role listed in data.akko.rbac.row_filters sees only the rows its expression keeps; a caller with
# at least one unfiltered role sees every row; a caller with several filtered roles sees the union.
# No akko role: a filter that keeps nothing (fail closed even if `allow` were bypassed).
package trino

import rego.v1

unfiltered if {
	some role in akko_roles
	not data.akko.rbac.row_filters[role]
}

rowFilters contains {"expression": "FALSE"} if {
	input.action.operation == "GetRowFilters"
	not has_akko_role
}

rowFilters contains {"expression": expression} if {
	input.action.operation == "GetRowFilters"
	has_akko_role
	not unfiltered
	filters := sort([data.akko.rbac.row_filters[role] | some role in akko_roles])
	expression := combined(filters)
}

combined(filters) := filters[0] if count(filters) == 1

combined(filters) := concat(" OR ", [sprintf("(%s)", [f]) | some f in filters]) if count(filters) > 1
