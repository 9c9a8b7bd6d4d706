"""Five malformed source rows, one per quarantine reason, shared by the replicator tests
(pyiceberg in test_lakehouse, Spark in test_spark_replication).

Insert them into akko.raw_transactions with `MALFORMED`; a replication then quarantines them in
akko.raw_transactions_rejects with the reasons counted in `MALFORMED_COUNTS`. They are named
BAD1..BAD5; BAD4 is the future-dated one.
"""

MALFORMED = """
INSERT INTO akko.raw_transactions (transaction_id, customer_id, customer_name, card_pan, amount, currency,
    merchant, merchant_category, channel, region, country, status, memo, ts, is_fraud)
SELECT 'BAD' || n, 'C1', 'X', pan, amount, 'EUR', 'm', 'grocery', 'pos', region, 'DE', 'active', '', ts, false
FROM (VALUES (1, '4539578763621486', 10.0, 'ATLANTIS', now() - interval '1 day'),
             (2, '4539578763621486', -5.0, 'EU', now() - interval '1 day'),
             (3, '1234567890123456', 5.0, 'EU', now() - interval '1 day'),
             (4, '4539578763621486', 5.0, 'EU', now() + interval '30 days'),
             (5, '4539578763621486', NULL, 'EU', now() - interval '1 day'))
     AS v(n, pan, amount, region, ts)
"""
MALFORMED_COUNTS = {"unknown region": 1, "negative amount": 1, "invalid card_pan": 1,
                    "future or missing ts": 1, "null amount": 1}
