"""The queue names, the stages that consume them and the Procfile agree."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from licence_service.config import PROJECT_ROOT
from licence_service.messaging.names import (
    QUEUE_PREFIX,
    STAGE_BINDINGS,
    STAGES,
    QueueNames,
    RoutingKeys,
    prefix_problem,
    stage_for_routing_key,
    stage_queues,
)
from workers.__main__ import PROCESSES


def procfile_workers() -> dict[str, str]:
    """Procfile process name -> the `python -m workers <name>` it runs."""
    out = {}
    for line in (PROJECT_ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        match = re.fullmatch(r"python -m workers (\w+)", command.strip())
        if match:
            out[name.strip()] = match.group(1)
    return out


def test_every_stage_has_a_procfile_line_and_every_worker_line_is_a_stage_the_relay_or_the_sweeper():
    lines = procfile_workers()
    assert all(name == target for name, target in lines.items()), lines
    assert set(lines.values()) == set(STAGE_BINDINGS) | {"relay", "sweeper"}
    assert set(PROCESSES) == set(lines.values())


def test_every_stage_queue_is_named_in_queue_names_and_consumed_by_its_stage():
    assert sorted(q for q, _keys in STAGE_BINDINGS.values()) == sorted(QueueNames.all_stage_queues())
    for stage, (queue, keys) in STAGE_BINDINGS.items():
        assert queue == f"{QUEUE_PREFIX}licence.{stage}"
        assert [(q.name, q.routing_key) for q in stage_queues(stage)] == [(queue, k) for k in keys]


def test_every_routing_key_goes_to_exactly_one_stage():
    keys = [v for k, v in vars(RoutingKeys).items() if k.isupper()]
    bound = [key for _queue, stage_keys in STAGES.values() for key in stage_keys]
    assert sorted(bound) == sorted(keys)
    assert stage_for_routing_key(RoutingKeys.PAID) == "conversion"
    assert stage_for_routing_key("application.unknown") is None


def test_queue_prefix_goes_in_front_of_the_exchange_and_every_queue():
    code = ("from licence_service.messaging.names import EXCHANGE_NAME, QueueNames, all_queues;"
            "print(EXCHANGE_NAME); print(sorted({q.name for q in all_queues()}));"
            "print({q.exchange.name for q in all_queues()})")
    env = {**os.environ, "QUEUE_PREFIX": "ci-42.", "PYTHONPATH": str(PROJECT_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    exchange, queues, exchanges = out.stdout.splitlines()
    assert exchange == "ci-42.licence.events"
    assert queues == str(sorted(f"ci-42.licence.{s}" for s in STAGES))
    assert exchanges == "{'ci-42.licence.events'}"


def test_a_queue_prefix_may_only_hold_name_characters():
    assert prefix_problem("") is None and prefix_problem("ci-42.run_7:") is None
    assert prefix_problem("a b") and prefix_problem("x/y") and prefix_problem("x" * 65)
