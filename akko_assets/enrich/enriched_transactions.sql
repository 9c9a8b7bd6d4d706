-- marts.enriched_transactions: every transaction with its fraud score, flag and memo sentiment.
-- One statement; akko_ai_anomaly and akko_ai_sentiment are the functions in trino_udfs/ (DuckDB
-- locally, Trino Python UDFs on k8s). The threshold parameter is the production model's registered one.
select
    scored.*,
    scored.fraud_score > $threshold as is_flagged
from (
    select
        f.*,
        akko_ai_anomaly(
            cast(f.amount as double),
            cast(f.hour_of_day as double),
            cast(f.is_night as double),
            cast(f.amount_zscore as double),
            cast(f.txn_count_1h as double),
            cast(f.txn_count_24h as double),
            cast(f.is_new_merchant as double),
            cast(f.country_changed as double)
        ) as fraud_score,
        akko_ai_sentiment(f.memo) as memo_sentiment
    from marts.fct_transactions as f
) as scored
