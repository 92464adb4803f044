"""The head's access to MLflow's PostgreSQL (RDS): ~/.pgpass (mode 600) from the password in AWS
Secrets Manager, so that MLflow logs in with no password in a command line, a URI or a file that
`ray up` copies; then the logins database of MLflow's basic-auth app, made when it is missing.

    LOTTERY_DB_SECRET=<secret id or ARN> MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@HOST:5432/mlflow \
    MLFLOW_AUTH_DATABASE_URI=postgresql://mlflow@HOST:5432/mlflow_auth python tune/cluster/mlflow_db.py

The secret is RDS's own (`manage master user password`) or any secret whose JSON holds `password`
(and `username`); it is read with the head's instance profile (secretsmanager:GetSecretValue on it).
One ~/.pgpass line per database server. Without LOTTERY_DB_SECRET, ~/.pgpass is left as it is (write
it yourself). Used by the head setup of tune/cluster/aws-gpu.yaml; docs/cluster-aws.md.
"""
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def pgpass_lines(uris: list[str], secret: dict) -> list[str]:
    """`host:port:*:user:password` for each server the postgresql:// URIs name (`:` and `\\` escaped):
    every database there, the server's `postgres` one included (where the logins database is made)."""
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
        line = ":".join([field(parts.hostname), field(parts.port or 5432), "*", field(user), field(secret["password"])])
        if line not in lines:
            lines.append(line)
    return lines


def create_database(uri: str) -> bool:
    """Make the database `uri` names, connected to the server's `postgres` database; False when it exists."""
    import psycopg2

    parts = urlsplit(uri)
    name = parts.path.lstrip("/")
    connection = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    connection.autocommit = True   # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone():
                return False
            cursor.execute(f'CREATE DATABASE "{name}"')
            return True
    finally:
        connection.close()


def main() -> int:
    uris = [os.environ[k] for k in ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI") if os.environ.get(k)]
    if not uris:
        print("mlflow_db: set MLFLOW_BACKEND_STORE_URI (and MLFLOW_AUTH_DATABASE_URI) in ~/.lottery/mlflow-db",
              file=sys.stderr)
        return 2
    secret_id = os.environ.get("LOTTERY_DB_SECRET")
    if secret_id:
        import boto3

        secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
        target = Path.home() / ".pgpass"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(pgpass_lines(uris, secret)) + "\n")
        target.chmod(0o600)
        print(f"mlflow_db: {target} holds the password of {len(uris)} database(s)")
    auth = os.environ.get("MLFLOW_AUTH_DATABASE_URI", "")
    if auth.startswith("postgresql") and create_database(auth):
        print(f"mlflow_db: made the database {urlsplit(auth).path.lstrip('/')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
