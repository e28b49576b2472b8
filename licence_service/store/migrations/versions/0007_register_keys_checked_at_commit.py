"""the register's foreign keys that the legacy import fills (licences → people, licence classes and
cards → licences) are DEFERRABLE INITIALLY DEFERRED: checked at each transaction's commit

Why (issue 5): SQLite decides when it compiles an INSERT of many rows into a table whose foreign key
is immediate that the statement may have to undo its own part, and keeps a statement journal of
every existing page it changes; `PRAGMA defer_foreign_keys` does not change that decision, only a
key declared deferred does. A missing parent still fails the transaction, at its commit.

On SQLite the change is made in the schema's text, the way SQLite's documentation prescribes for
changes that leave what is stored on disk as it is ("Making Other Kinds Of Table Schema Changes",
lang_altertable.html: removing or changing a FOREIGN KEY constraint is one): no table is copied, so
a register of millions of licences migrates at once. On PostgreSQL, ALTER CONSTRAINT.

Revision ID: 0007_register_keys_at_commit
Revises: 0006_portal_sync_one_index
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

import re

from alembic import op

revision = '0007_register_keys_at_commit'
down_revision = '0006_portal_sync_one_index'
branch_labels = None
depends_on = None

# (table, constraint): the names the naming convention gave them in 0001.
_KEYS = (
    ("licences", "fk_licences_person_id_people"),
    ("licence_classes", "fk_licence_classes_licence_number_licences"),
    ("cards", "fk_cards_licence_number_licences"),
)
_DEFERRED = " DEFERRABLE INITIALLY DEFERRED"


def upgrade() -> None:
    _set(deferred=True)


def downgrade() -> None:
    _set(deferred=False)


def _set(*, deferred: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        timing = _DEFERRED.strip() if deferred else "NOT DEFERRABLE"
        for table, name in _KEYS:
            op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT {name} {timing}")
        return
    if bind.dialect.name != "sqlite":
        raise NotImplementedError(f"no migration of foreign keys for {bind.dialect.name}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        for table, name in _KEYS:
            sql = bind.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one()
            bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                                 (_with_timing(sql, name, deferred=deferred), table))
        # Other connections reread the schema when its version moves on.
        bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    # The edited definitions read back: one SQLite could not parse fails here, in the migration's
    # transaction, which takes the edit back with it. (No integrity_check: the rows are untouched,
    # and it reads the whole database, ten seconds for a 300 MB register.)
    for table, _ in _KEYS:
        if not bind.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all():
            raise RuntimeError(f"the edited definition of {table} has lost its foreign key")


def _with_timing(sql: str, name: str, *, deferred: bool) -> str:
    """``sql`` (a CREATE TABLE) with the constraint ``name`` declared deferred, or not any more; a
    definition not in the form 0001 and the batch copies since wrote it stops the migration."""
    clause = re.compile(rf"(CONSTRAINT {name} FOREIGN KEY\s*\([^)]*\) REFERENCES \w+ \([^)]*\))({_DEFERRED})?")
    changed, n = clause.subn(lambda m: m.group(1) + (_DEFERRED if deferred else ""), sql)
    if n != 1:
        raise RuntimeError(f"constraint {name} not found, or found {n} times, in: {sql}")
    return changed
