#!/bin/sh
# Idempotent: creates the buckets and a non-root user limited to them, so engines never hold
# MinIO's root credentials.
set -eu
until mc alias set akko http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
  echo "waiting for minio:9000"; sleep 3
done
mc mb --ignore-existing akko/akko-warehouse
mc mb --ignore-existing akko/mlflow-artifacts
cat > /tmp/akko-rw.json <<'JSON'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:*"],
     "Resource": ["arn:aws:s3:::akko-warehouse", "arn:aws:s3:::akko-warehouse/*",
                  "arn:aws:s3:::mlflow-artifacts", "arn:aws:s3:::mlflow-artifacts/*"]}
  ]
}
JSON
mc admin policy create akko akko-rw /tmp/akko-rw.json
mc admin user add akko "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
mc admin policy attach akko akko-rw --user "$S3_ACCESS_KEY" || true  # already attached on rerun
mc ls akko
