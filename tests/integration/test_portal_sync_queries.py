"""The sender's look-up of what to send next (PortalSyncRepository.heads) costs what its few
applications cost, not what the whole backlog of DongBoHoSoMC calls does (issue 8)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import sqlalchemy as sa

from licence_service.store import models
from licence_service.store.migrate import upgrade
from licence_service.store.portal_sync_items import _heads_stmt


def test_the_heads_of_a_few_applications_are_looked_up_by_application_not_among_the_whole_backlog(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/licence.db"
    upgrade(url)
    engine = sa.create_engine(url)
    now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    backlog = [str(uuid.uuid4()) for _ in range(300)]
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # the items alone: their applications do not matter here
        conn.execute(sa.insert(models.PortalSyncItem.__table__), [
            {"application_id": a, "seq": seq, "portal_status": seq, "state": "pending", "attempts": 0,
             "next_attempt_at": now, "created_at": now} for a in backlog for seq in (1, 2, 3)])
    asked = backlog[:3]
    with engine.connect() as conn:
        sql = _heads_stmt().params(ids=asked).compile(conn, compile_kwargs={"literal_binds": True})
        plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        # The outer search goes by application; the due index (state, next_attempt_at) would walk
        # all 900 pending items to find the three asked for.
        assert plan[0].startswith("SEARCH portal_sync_items USING INDEX sqlite_autoindex_portal_sync_items_1 "
                                  "(application_id=?)"), plan
        assert not any("ix_portal_sync_items_due" in step for step in plan), plan
        heads = conn.execute(_heads_stmt(), {"ids": asked}).all()
        assert sorted((h.application_id, h.seq) for h in heads) == sorted((a, 1) for a in asked)
    engine.dispose()
