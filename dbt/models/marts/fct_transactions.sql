-- Transaction grain with the fraud features the model and akko_ai_anomaly() use. Computing the
-- features here, in SQL, keeps training and scoring on exactly the same definitions.
with transactions as (
    select * from {{ ref('stg_transactions') }}
),

with_history as (
    select
        *,
        cast(amount as double) as amount_value,
        avg(cast(amount as double)) over (partition by customer_id) as customer_avg_amount,
        stddev_samp(cast(amount as double)) over (partition by customer_id) as customer_std_amount,
        {{ rolling_count('card_pan', 'ts', 1) }} as txn_count_1h,
        {{ rolling_count('card_pan', 'ts', 24) }} as txn_count_24h,
        row_number() over (partition by card_pan, merchant order by ts, transaction_id) as merchant_visit,
        row_number() over (partition by card_pan order by ts, transaction_id) as card_txn_number,
        lag(country) over (partition by card_pan order by ts, transaction_id) as previous_country
    from transactions
),

final as (
    select
        -- ids
        transaction_id,
        customer_id,
        -- customer
        customer_name,
        card_pan,
        status,
        -- transaction
        amount,
        currency,
        merchant,
        merchant_category,
        channel,
        region,
        country,
        memo,
        is_fraud,
        -- timestamps
        ts,
        cast(ts as date) as txn_date,
        updated_at,
        -- features
        {{ hour_utc('ts') }} as hour_of_day,
        case when {{ hour_utc('ts') }} < 6 then 1 else 0 end as is_night,
        -- rounded: parallel window sums differ in the last bits between runs; rebuilds must be identical
        case
            when customer_std_amount is null or customer_std_amount = 0 then 0.0
            else round((amount_value - customer_avg_amount) / customer_std_amount, 6)
        end as amount_zscore,
        txn_count_1h,
        txn_count_24h,
        -- a first visit counts only once the card has some history, else every early row is "new"
        case when merchant_visit = 1 and card_txn_number > 5 then 1 else 0 end as is_new_merchant,
        case when previous_country is not null and previous_country <> country then 1 else 0 end as country_changed
    from with_history
)

select * from final
