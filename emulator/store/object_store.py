"""S3 access for the control plane: artifacts, bundles and presigned URLs for containers."""

from __future__ import annotations

import boto3
import botocore.config
import botocore.exceptions


class ObjectStore:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, region: str,
                 container_endpoint: str | None = None):
        self.endpoint = endpoint
        self.container_endpoint = container_endpoint or endpoint
        self._session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        config = botocore.config.Config(
            s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
            signature_version="s3v4",
        )
        self.client = self._session.client("s3", endpoint_url=endpoint, config=config)
        # Presigned URLs embed the host, so they are signed for the address containers use.
        self._presigner = self._session.client("s3", endpoint_url=self.container_endpoint, config=config)

    def ensure_bucket(self, bucket: str) -> None:
        try:
            self.client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError:
            self.client.create_bucket(Bucket=bucket)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> str:
        response = self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return response.get("ETag", "").strip('"')

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def head(self, bucket: str, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError:
            return None

    def exists(self, bucket: str, key: str) -> bool:
        return self.head(bucket, key) is not None

    def presign_get(self, bucket: str, key: str, expires: int = 3600) -> str:
        return self._presigner.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )

    def wait_writable(self, bucket: str, timeout: float = 60) -> None:
        """A fresh SeaweedFS answers S3 before its volumes accept writes; wait until one succeeds."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.put_bytes(bucket, ".pipelocal-probe", b"ok")
                self.client.delete_object(Bucket=bucket, Key=".pipelocal-probe")
                return
            except (botocore.exceptions.ClientError, botocore.exceptions.EndpointConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def healthy(self) -> bool:
        try:
            self.client.list_buckets()
            return True
        except Exception:
            return False
