"""Write ~/.pgpass (mode 600) on the head from the database password in AWS Secrets Manager, so that
MLflow reaches PostgreSQL (RDS) with no password in a command line, a URI or a file `ray up` copies.

    LOTTERY_DB_SECRET=<secret id or ARN> MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@HOST:5432/mlflow \
        python tune/cluster/pgpass_from_secret.py

The secret is RDS's own (`manage master user password`) or any secret whose JSON holds `password`
(and `username`); it is read with the head's instance profile (secretsmanager:GetSecretValue on it).
One line per database URI in MLFLOW_BACKEND_STORE_URI and MLFLOW_AUTH_DATABASE_URI. Used by
tune/cluster/aws-gpu.yaml's head setup; docs/cluster-aws.md.
"""
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit


def pgpass_lines(uris: list[str], secret: dict) -> list[str]:
    """`host:port:database:user:password` for each postgresql:// URI (`:` and `\\` escaped)."""
    def field(value) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    lines = []
    for uri in uris:
        parts = urlsplit(uri)
        if not parts.scheme.startswith("postgresql"):
            continue
        if parts.password:
            raise SystemExit(f"{parts.scheme}://...: the URI holds a password; leave it out (this file writes ~/.pgpass)")
        user = parts.username or secret.get("username", "")
        lines.append(":".join(field(v) for v in (parts.hostname, parts.port or 5432, parts.path.lstrip("/") or "*",
                                                 user, secret["password"])))
    return lines


def main() -> int:
    import boto3

    secret_id = os.environ.get("LOTTERY_DB_SECRET")
    uris = [os.environ[k] for k in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI") if os.environ.get(k)]
    if not secret_id or not uris:
        print("pgpass_from_secret: set LOTTERY_DB_SECRET and MLFLOW_BACKEND_STORE_URI (~/.lottery/mlflow-db)",
              file=sys.stderr)
        return 2
    secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    target = Path.home() / ".pgpass"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(pgpass_lines(uris, secret)) + "\n")
    target.chmod(0o600)
    print(f"pgpass_from_secret: {target} holds the password of {len(uris)} database(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
