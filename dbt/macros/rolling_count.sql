{#- Count of rows in the same partition within `hours` before the current row (inclusive).
    DuckDB and Trino both accept a RANGE frame over a timestamp with an interval offset, but
    spell the interval differently; dispatch keeps the models identical for both targets. -#}
{% macro rolling_count(partition_by, order_by, hours) -%}
    {{ return(adapter.dispatch('rolling_count', 'akko')(partition_by, order_by, hours)) }}
{%- endmacro %}

{% macro default__rolling_count(partition_by, order_by, hours) -%}
    count(*) over (
        partition by {{ partition_by }} order by {{ order_by }}
        range between interval '{{ hours }}' hour preceding and current row
    )
{%- endmacro %}

{% macro trino__rolling_count(partition_by, order_by, hours) -%}
    count(*) over (
        partition by {{ partition_by }} order by {{ order_by }}
        range between interval '{{ hours }}' hour preceding and current row
    )
{%- endmacro %}

{#- Hour of day in UTC. -#}
{% macro hour_utc(ts) -%}
    {{ return(adapter.dispatch('hour_utc', 'akko')(ts)) }}
{%- endmacro %}

{% macro default__hour_utc(ts) -%}
    cast(extract(hour from {{ ts }}) as integer)
{%- endmacro %}

{% macro trino__hour_utc(ts) -%}
    hour({{ ts }} at time zone 'UTC')
{%- endmacro %}
