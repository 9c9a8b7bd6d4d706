"""Build Superset's import bundle (a zip of YAML files) from superset_assets/dashboard.yaml.

The readable spec names charts by a few fields (kind, dataset, metric, x); this module expands
them into what Superset stores: `params` (the form data the frontend renders from) and
`query_context` (what GET /api/v1/chart/<id>/data/ runs). UUIDs are uuid5 of the spec keys, so
every build of the same spec yields the same objects and re-imports overwrite instead of adding.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from akko_assets.contract import TRANSACTION_SCHEMA
from akko_assets.settings import REPO_ROOT

SPEC_PATH = REPO_ROOT / "superset_assets" / "dashboard.yaml"
BUNDLE_ROOT = "akko_banking_fraud"
EXPORT_VERSION = "1.0.0"  # Superset rejects bundles whose metadata.yaml says anything else
_NAMESPACE = uuid.UUID("6f3b0e52-6a51-4f0e-9d0c-a4b0c0a11ce5")
# Chart ids in a bundle are placeholders: Superset assigns real ids on import, and
# provision.py writes the real dataset id into each query_context afterwards.
_UNKNOWN_ID = 0


def stable_uuid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"akko/{kind}/{key}"))


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    dashboard_uuid: str
    slug: str
    chart_uuids: dict[str, str] = field(default_factory=dict)
    dataset_uuids: dict[str, str] = field(default_factory=dict)


def load_spec(spec_path: Path = SPEC_PATH) -> dict[str, Any]:
    return yaml.safe_load(Path(spec_path).read_text())


def trino_source_uri(env: Mapping[str, str] | None = None, user: str = "svc-superset") -> str:
    """The k8s profile's dashboard source: Trino as the dashboard's service user, so Trino's OPA
    access control masks for that identity (akko-analyst: card_pan masked)."""
    import os

    from akko_assets.governance.trino import TrinoEngine

    env = os.environ if env is None else env
    # The executor's own TRINO_* parsing; deploy.sh builds the bundle outside the cluster, where
    # TRINO_HOST is unset, so the in-cluster service name is the default here.
    trino = TrinoEngine.from_env({**env, "TRINO_HOST": env.get("TRINO_HOST", "").strip() or "trino"})
    return f"trino://{user}@{trino.host}:{trino.port}/{trino.catalog}"


def build_bundle(out_path: Path, serving_db: Path | str, spec_path: Path = SPEC_PATH) -> BundleInfo:
    """Write the import zip to `out_path`. `serving_db` is what Superset reads: the local serving
    DuckDB file (a Path), or a SQLAlchemy URI (the k8s profile: `trino_source_uri()`)."""
    spec = load_spec(spec_path)
    files = bundle_files(spec, serving_db if isinstance(serving_db, str) else Path(serving_db))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(_zip(files))
    return BundleInfo(
        path=out_path,
        dashboard_uuid=stable_uuid("dashboard", spec["dashboard"]["slug"]),
        slug=spec["dashboard"]["slug"],
        chart_uuids={key: stable_uuid("chart", key) for key in spec["charts"]},
        dataset_uuids={key: stable_uuid("dataset", key) for key in spec["datasets"]},
    )


def bundle_files(spec: Mapping[str, Any], serving_db: Path | str) -> dict[str, dict[str, Any]]:
    """All bundle documents by path inside the zip (before YAML serialisation)."""
    db_uuid = stable_uuid("database", "akko_serving")
    files: dict[str, dict[str, Any]] = {
        "metadata.yaml": {"version": EXPORT_VERSION, "type": "Dashboard", "timestamp": "2026-01-01T00:00:00+00:00"},
        "databases/akko_serving.yaml": _database(spec["database"]["name"], db_uuid, serving_db),
    }
    for key, ds in spec["datasets"].items():
        files[f"datasets/akko_serving/{key}.yaml"] = _dataset(key, ds, db_uuid)
    for key, chart in spec["charts"].items():
        files[f"charts/{key}.yaml"] = _chart(key, chart, spec["datasets"][chart["dataset"]])
    slug = spec["dashboard"]["slug"]
    files[f"dashboards/{slug}.yaml"] = _dashboard(spec)
    return files


def with_dataset_ids(bundle: bytes, dataset_ids: Mapping[str, int]) -> bytes:
    """Return the bundle with each chart's query_context pointing at the imported dataset id.

    Superset's importer fixes `params.datasource` but leaves `query_context` as written, and the
    chart data endpoint runs the saved query_context, so the real ids must be written in.
    """
    out: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        for name in zf.namelist():
            doc = yaml.safe_load(zf.read(name))
            rel = name.split("/", 1)[1]
            if rel.startswith("charts/") and doc.get("dataset_uuid") in dataset_ids:
                ds_id = dataset_ids[doc["dataset_uuid"]]
                qc = json.loads(doc["query_context"])
                qc["datasource"]["id"] = ds_id
                qc["form_data"]["datasource"] = f"{ds_id}__table"
                doc["params"]["datasource"] = f"{ds_id}__table"
                doc["query_context"] = json.dumps(qc, sort_keys=True)
            out[rel] = doc
    return _zip(out)


# Superset model name -> bundle folders its import endpoint reads. A dashboard import never
# overwrites the charts, datasets or databases it contains, so provisioning imports each level
# through its own endpoint with overwrite=true, bottom-up.
IMPORT_LEVELS = {
    "Database": ("databases/",),
    "SqlaTable": ("databases/", "datasets/"),
    "Slice": ("databases/", "datasets/", "charts/"),
    "Dashboard": ("databases/", "datasets/", "charts/", "dashboards/"),
}


def sub_bundle(bundle: bytes, model: str) -> bytes:
    """The part of `bundle` one import endpoint takes, with metadata.yaml typed for it."""
    folders = IMPORT_LEVELS[model]
    out: dict[str, dict[str, Any]] = {}
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        for name in zf.namelist():
            rel = name.split("/", 1)[1]
            if rel == "metadata.yaml":
                out[rel] = {**yaml.safe_load(zf.read(name)), "type": model}
            elif rel.startswith(folders):
                out[rel] = yaml.safe_load(zf.read(name))
    return _zip(out)


# -- documents -----------------------------------------------------------------------------


def _zip(files: Mapping[str, Mapping[str, Any]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, doc in sorted(files.items()):
            # Fixed timestamps keep the zip byte-identical across builds of the same spec.
            info = zipfile.ZipInfo(f"{BUNDLE_ROOT}/{rel}", date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True))
    return buf.getvalue()


def _database(name: str, db_uuid: str, serving_db: Path | str) -> dict[str, Any]:
    if isinstance(serving_db, str):
        uri, connect_args = serving_db, {}  # Trino: the engine enforces the service user's policies
    else:
        uri = f"duckdb:///{Path(serving_db).resolve()}"
        connect_args = {
            # read_only: many Superset readers may share the file and never lock it.
            # enable_external_access=false: SQL through this connection cannot read any
            # other file (read_parquet, iceberg_scan, ATTACH), so the masked serving
            # file is all svc-superset can reach.
            "read_only": True,
            "config": {"enable_external_access": False},
        }
    return {
        "database_name": name,
        "sqlalchemy_uri": uri,
        "cache_timeout": None,
        # Dashboard-only: SQL Lab would let any Superset user type arbitrary SQL.
        "expose_in_sqllab": False,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {
            "engine_params": {"connect_args": connect_args},
            "metadata_params": {},
            "schemas_allowed_for_file_upload": [],
        },
        "uuid": db_uuid,
        "version": EXPORT_VERSION,
    }


def _duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "VARCHAR"
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP WITH TIME ZONE" if arrow_type.tz else "TIMESTAMP"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    raise ValueError(f"no DuckDB type mapping for {arrow_type}: extend _duckdb_type")


def _dataset_columns(ds: Mapping[str, Any]) -> dict[str, str]:
    if "columns" in ds:
        return dict(ds["columns"])
    columns = {f.name: _duckdb_type(f.type) for f in TRANSACTION_SCHEMA}
    columns.update(ds.get("extra_columns", {}))
    return columns


def _column(name: str, col_type: str, expression: str | None = None) -> dict[str, Any]:
    return {
        "column_name": name,
        "verbose_name": None,
        "is_dttm": col_type.startswith(("DATE", "TIMESTAMP")),
        "is_active": True,
        "type": col_type,
        "advanced_data_type": None,
        "groupby": True,
        "filterable": True,
        "expression": expression,
        "description": None,
        "python_date_format": None,
        "extra": None,
    }


def _dataset(key: str, ds: Mapping[str, Any], db_uuid: str) -> dict[str, Any]:
    columns = [_column(n, t) for n, t in _dataset_columns(ds).items()]
    columns += [_column(n, c["type"], c["expression"]) for n, c in ds.get("calculated_columns", {}).items()]
    metrics = [
        {
            "metric_name": name,
            "verbose_name": m["label"],
            "metric_type": None,
            "expression": m["expression"],
            "description": m.get("description"),
            "d3format": m.get("d3format"),
            "currency": None,
            "extra": None,
            "warning_text": None,
        }
        for name, m in ds["metrics"].items()
    ]
    return {
        "table_name": key,
        "main_dttm_col": ds.get("main_dttm_col"),
        "description": ds.get("description"),
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "catalog": None,
        "schema": ds["schema"],
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "uuid": stable_uuid("dataset", key),
        "metrics": metrics,
        "columns": columns,
        "version": EXPORT_VERSION,
        "database_uuid": db_uuid,
    }


def _axis(column: str, time_grain: str | None = None) -> dict[str, Any]:
    """The x-axis column as the frontend sends it (an adhoc column flagged as base axis)."""
    col: dict[str, Any] = {"columnType": "BASE_AXIS", "sqlExpression": column, "label": column, "expressionType": "SQL"}
    if time_grain:
        col["timeGrain"] = time_grain
    return col


def _query(
    *,
    columns: list[Any],
    metrics: list[str] | None,
    row_limit: int,
    orderby: list[list[Any]] | None = None,
    filters: list[dict[str, Any]] | None = None,
    post_processing: list[dict[str, Any]] | None = None,
    series_columns: list[str] | None = None,
    time_grain: str | None = None,
) -> dict[str, Any]:
    extras: dict[str, Any] = {"having": "", "where": ""}
    if time_grain:
        extras["time_grain_sqla"] = time_grain
    return {
        "filters": filters or [],
        "extras": extras,
        "applied_time_extras": {},
        "columns": columns,
        "metrics": metrics,
        "orderby": orderby or [],
        "annotation_layers": [],
        "row_limit": row_limit,
        "series_columns": series_columns or [],
        "series_limit": 0,
        "order_desc": True,
        "url_params": {},
        "custom_params": {},
        "custom_form_data": {},
        "post_processing": post_processing or [],
    }


def _fmt(ds: Mapping[str, Any], metric: str) -> str:
    return ds["metrics"][metric].get("d3format") or "SMART_NUMBER"


def _no_time_filter(column: str) -> dict[str, Any]:
    return {"clause": "WHERE", "subject": column, "operator": "TEMPORAL_RANGE", "comparator": "No filter", "expressionType": "SIMPLE"}


def _chart_body(chart: Mapping[str, Any], ds: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(viz_type, kind-specific params, queries) for one spec chart."""
    kind = chart["kind"]
    if kind == "kpi":
        metric = chart["metric"]
        params = {
            "metric": metric,
            "subheader": chart.get("subheader", ""),
            "y_axis_format": _fmt(ds, metric),
            "header_font_size": 0.4,
            "subheader_font_size": 0.15,
            "time_format": "smart_date",
        }
        return "big_number_total", params, [_query(columns=[], metrics=[metric], row_limit=10)]
    if kind == "bar":
        metric, x = chart["metric"], chart["x"]
        stack = [chart["stack_by"]] if chart.get("stack_by") else []
        horizontal = bool(chart.get("horizontal"))
        params = {
            "x_axis": x,
            "metrics": [metric],
            "groupby": stack,
            "orientation": "horizontal" if horizontal else "vertical",
            "x_axis_sort": metric if not stack else x,
            "x_axis_sort_asc": horizontal or bool(stack),
            "x_axis_sort_series": "sum",
            "x_axis_sort_series_ascending": False,
            "stack": "Stack" if stack else None,
            "show_legend": bool(stack),
            "legendOrientation": "top",
            "show_value": bool(chart.get("show_value", not stack)),
            "y_axis_format": _fmt(ds, metric),
            "rich_tooltip": True,
            "row_limit": 1000,
            "truncate_metric": True,
            "order_desc": True,
            "zoomable": False,
            "x_axis_title": chart.get("x_title", ""),
            "x_axis_title_margin": 30 if chart.get("x_title") else 15,
            "y_axis_title_margin": 15,
            # Numeric bands (amount_band) are categories on the axis, in numeric order.
            "xAxisForceCategorical": True,
            "label_colors": dict(chart.get("colors", {})),
        }
        post = []
        if stack:
            # Same shape the frontend asks for: one column per stacked series.
            post = [
                {"operation": "pivot", "options": {"index": [x], "columns": stack, "aggregates": {metric: {"operator": "mean"}}, "drop_missing_columns": False}},
                {"operation": "flatten"},
            ]
        query = _query(columns=[_axis(x), *stack], metrics=[metric], orderby=[[metric, False]], row_limit=1000, series_columns=stack, post_processing=post)
        return "echarts_timeseries_bar", params, [query]
    if kind == "daily":
        x, bars, line = chart["x"], chart["bars"], chart["line"]
        params = {
            "x_axis": x,
            "time_grain_sqla": "P1D",
            "metrics": [bars],
            "metrics_b": [line],
            "groupby": [],
            "groupby_b": [],
            "adhoc_filters_b": [_no_time_filter(x)],
            "seriesType": "bar",
            "seriesTypeB": "line",
            "yAxisIndex": 0,
            "yAxisIndexB": 1,
            "y_axis_format": _fmt(ds, bars),
            "y_axis_format_secondary": _fmt(ds, line),
            "show_legend": True,
            "legendOrientation": "top",
            "legendType": "scroll",
            "rich_tooltip": True,
            "x_axis_time_format": "%b %d",
            "tooltipTimeFormat": "%Y-%m-%d",
            "markerEnabledB": True,
            "markerSizeB": 4,
            "opacity": 0.6,
            "row_limit": 10000,
            "row_limit_b": 10000,
            "order_desc": True,
            "order_desc_b": True,
            "truncate_metric": True,
            "truncate_metric_b": True,
            "zoomable": False,
        }
        queries = [
            _query(columns=[_axis(x, "P1D")], metrics=[metric], orderby=[], row_limit=10000, time_grain="P1D",
                   post_processing=[
                       {"operation": "pivot", "options": {"index": [x], "columns": [], "aggregates": {metric: {"operator": "mean"}}, "drop_missing_columns": False}},
                       {"operation": "flatten"},
                   ])
            for metric in (bars, line)
        ]
        return "mixed_timeseries", params, queries
    if kind == "table":
        columns, order, limit = list(chart["columns"]), chart["order_by"], int(chart["limit"])
        where = chart.get("where")
        params = {
            "query_mode": "raw",
            "all_columns": columns,
            "order_by_cols": [json.dumps([order, False])],
            "row_limit": limit,
            "server_pagination": False,
            "include_search": False,
            "show_cell_bars": True,
            "table_timestamp_format": "%Y-%m-%d %H:%M",
            "column_config": {
                "fraud_score": {"d3NumberFormat": ".3f"},
                "memo_sentiment": {"d3NumberFormat": ".2f"},
                "amount": {"d3NumberFormat": ",.2f"},
            },
            "groupby": [],
            "metrics": [],
            "percent_metrics": [],
        }
        filters = []
        if where:
            params["adhoc_filters"] = [{"clause": "WHERE", "subject": where, "operator": "IS TRUE", "comparator": None, "expressionType": "SIMPLE"}]
            filters = [{"col": where, "op": "IS TRUE"}]
        query = _query(columns=columns, metrics=None, orderby=[[order, False]], row_limit=limit, filters=filters)
        return "table", params, [query]
    raise ValueError(f"chart kind {kind!r} is unknown: use kpi, bar, daily or table")


def _chart(key: str, chart: Mapping[str, Any], ds: Mapping[str, Any]) -> dict[str, Any]:
    viz_type, body, queries = _chart_body(chart, ds)
    params: dict[str, Any] = {
        "datasource": f"{_UNKNOWN_ID}__table",
        "viz_type": viz_type,
        "adhoc_filters": [],
        "extra_form_data": {},
        "color_scheme": "supersetColors",
        "annotation_layers": [],
        "dashboards": [],
        **body,
    }
    if viz_type == "mixed_timeseries":
        params["adhoc_filters"] = [_no_time_filter(chart["x"])]
    query_context = {
        "datasource": {"id": _UNKNOWN_ID, "type": "table"},
        "force": False,
        "queries": queries,
        "form_data": params,
        "result_format": "json",
        "result_type": "full",
    }
    return {
        "slice_name": chart["title"],
        "description": chart.get("description"),
        "certified_by": None,
        "certification_details": None,
        "viz_type": viz_type,
        "params": params,
        "query_context": json.dumps(query_context, sort_keys=True),
        "cache_timeout": None,
        "uuid": stable_uuid("chart", key),
        "version": EXPORT_VERSION,
        "dataset_uuid": stable_uuid("dataset", chart["dataset"]),
    }


def _dashboard(spec: Mapping[str, Any]) -> dict[str, Any]:
    dash = spec["dashboard"]
    charts = spec["charts"]
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"type": "HEADER", "id": "HEADER_ID", "meta": {"text": dash["title"]}},
    }
    # Placeholder chart ids must be unique: the importer maps them to real ids via meta.uuid.
    placeholder = {key: i for i, key in enumerate(charts, start=1)}
    for r, row in enumerate(dash["rows"], start=1):
        row_id = f"ROW-{r}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "type": "ROW",
            "id": row_id,
            "children": [],
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for key, width in row["charts"]:
            if key not in charts:
                raise ValueError(f"dashboard row {r} names chart {key!r}, which is not under charts:")
            node_id = f"CHART-{key}"
            position[row_id]["children"].append(node_id)
            position[node_id] = {
                "type": "CHART",
                "id": node_id,
                "children": [],
                "parents": ["ROOT_ID", "GRID_ID", row_id],
                "meta": {
                    "chartId": placeholder[key],
                    "uuid": stable_uuid("chart", key),
                    "width": int(width),
                    "height": int(row["height"]),
                    "sliceName": charts[key]["title"],
                },
            }
    return {
        "dashboard_title": dash["title"],
        "description": dash.get("description"),
        "css": "",
        "slug": dash["slug"],
        "certified_by": None,
        "certification_details": None,
        "published": True,
        "uuid": stable_uuid("dashboard", dash["slug"]),
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "refresh_frequency": 0,
            "expanded_slices": {},
            # Dashboard-level colours win over chart-level ones, so fixed series colours live here.
            "label_colors": {k: v for chart in charts.values() for k, v in chart.get("colors", {}).items()},
            "timed_refresh_immune_slices": [],
            "cross_filters_enabled": False,
            "default_filters": "{}",
            "chart_configuration": {},
            "native_filter_configuration": [],
            "shared_label_colors": [],
            "color_scheme_domain": [],
        },
        "version": EXPORT_VERSION,
    }
