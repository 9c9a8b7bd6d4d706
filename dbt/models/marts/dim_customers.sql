with transactions as (
    select * from {{ ref('fct_transactions') }}
),

-- A customer's home region and current status: the region they use most, the latest status.
region_ranked as (
    select
        customer_id,
        region,
        row_number() over (partition by customer_id order by count(*) desc, region) as region_rank
    from transactions
    group by customer_id, region
),

latest as (
    select
        customer_id,
        customer_name,
        card_pan,
        status,
        row_number() over (partition by customer_id order by ts desc, transaction_id desc) as recency_rank
    from transactions
),

aggregated as (
    select
        customer_id,
        min(ts) as first_seen,
        max(ts) as last_seen,
        count(*) as txn_count,
        sum(amount) as total_amount
    from transactions
    group by customer_id
)

select
    aggregated.customer_id,
    latest.customer_name,
    latest.card_pan,
    region_ranked.region,
    latest.status,
    aggregated.first_seen,
    aggregated.last_seen,
    aggregated.txn_count,
    aggregated.total_amount
from aggregated
inner join latest
    on latest.customer_id = aggregated.customer_id and latest.recency_rank = 1
inner join region_ranked
    on region_ranked.customer_id = aggregated.customer_id and region_ranked.region_rank = 1
