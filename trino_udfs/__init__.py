"""Pure standard-library SQL functions akko_ai_anomaly / akko_ai_sentiment, their DuckDB
registration and Trino CREATE FUNCTION generation (see DESIGN.md, enrichment)."""
