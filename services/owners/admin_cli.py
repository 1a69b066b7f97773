"""Admin CLI: `python -m services.owners.admin_cli owner create NAME`, `key create OWNER`, `key revoke ID`."""

import argparse
import sys

from core.config import get_settings
from core.errors import ShoeboxError
from db.session import get_engine, session_factory, session_scope, upgrade_schema
from services.owners.service import create_owner, get_owner_by_name, issue_key, list_keys, revoke_key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoebox-admin", description="Manage Shoebox owners and API keys")
    sub = parser.add_subparsers(dest="command", required=True)
    owner_create = sub.add_parser("owner-create", help="create an owner and print its first API key")
    owner_create.add_argument("name")
    key_create = sub.add_parser("key-create", help="issue a new API key for an owner")
    key_create.add_argument("owner")
    key_create.add_argument("--name", default="")
    key_list = sub.add_parser("key-list", help="list an owner's keys (prefixes only)")
    key_list.add_argument("owner")
    key_revoke = sub.add_parser("key-revoke", help="revoke a key by its id")
    key_revoke.add_argument("key_id")
    args = parser.parse_args(argv)

    settings = get_settings()
    upgrade_schema(settings.database_url)
    factory = session_factory(get_engine(settings.database_url))
    try:
        with session_scope(factory) as db:
            if args.command == "owner-create":
                owner = create_owner(db, name=args.name)
                issued = issue_key(db, owner_id=owner.id, name="first")
                print(f"owner {owner.name} ({owner.id})\nkey id {issued.id}\napi key {issued.key}")
            elif args.command == "key-create":
                owner = get_owner_by_name(db, name=args.owner)
                issued = issue_key(db, owner_id=owner.id, name=args.name)
                print(f"key id {issued.id}\napi key {issued.key}")
            elif args.command == "key-list":
                owner = get_owner_by_name(db, name=args.owner)
                for key in list_keys(db, owner_id=owner.id):
                    state = "revoked" if key.revoked_at else "active"
                    print(f"{key.id}  {key.prefix}…  {state}  {key.name}")
            elif args.command == "key-revoke":
                revoked = revoke_key(db, key_id=args.key_id)
                print(f"revoked {revoked.id}")
    except ShoeboxError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
