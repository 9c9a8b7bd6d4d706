# Who the caller is, in the platform's terms.
#
# Trino passes the authenticated user and its groups (input.context.identity); the platform maps
# Keycloak realm roles onto groups, so the caller's akko roles are the groups the RBAC data knows.
# Anything else in groups (default-roles-akko, offline_access, ...) grants nothing.
package trino

import rego.v1

akko_roles contains role if {
	some role in input.context.identity.groups
	role in data.akko.rbac.roles
}

has_akko_role if count(akko_roles) > 0

privileged if {
	some role in akko_roles
	role in data.akko.rbac.privileged_roles
}

admin if {
	some role in akko_roles
	role in data.akko.rbac.admin_roles
}

# "schema.table" in lower case: the key of the PII classification (the catalog is not part of it,
# so one classification serves DuckDB locally and Trino's iceberg catalog in k8s).
table_key(t) := lower(concat(".", [t.schemaName, t.tableName]))

governed_table(t) if table_key(t) in object.keys(data.akko.pii.tables)
