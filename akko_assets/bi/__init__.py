"""BI stage: the governed serving file, the Superset server, the dashboard bundle and its import."""
