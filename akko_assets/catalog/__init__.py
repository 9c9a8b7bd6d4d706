"""The semantic catalog (tables, columns, PII tags, metrics, dimensions) that ADEN answers from."""

from akko_assets.catalog.semantic import (
    CATALOG_FILE,
    build_semantic_catalog,
    catalog_path,
    load_catalog,
    write_catalog,
)

__all__ = ["CATALOG_FILE", "build_semantic_catalog", "catalog_path", "load_catalog", "write_catalog"]
