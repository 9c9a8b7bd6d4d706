with source as (
    select * from {{ source('banking', 'transactions') }}
),

renamed as (
    select
        -- ids
        transaction_id,
        customer_id,
        -- customer
        customer_name,
        card_pan,
        status,
        -- transaction
        cast(amount as decimal(12, 2)) as amount,
        currency,
        merchant,
        merchant_category,
        channel,
        region,
        country,
        coalesce(memo, '') as memo,
        is_fraud,
        -- timestamps
        ts,
        updated_at
    from source
    where transaction_id is not null
)

select * from renamed
