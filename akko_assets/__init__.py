"""AKKO Banking Fraud: an offline-first fraud-analytics lakehouse run as a Dagster asset graph."""
