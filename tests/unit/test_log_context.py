"""The log context (licence_service.logs): the application and correlation ids of the request or
message in hand, stamped on every line logged meanwhile by ContextFilter."""

from __future__ import annotations

import io
import json
import logging
import uuid

from licence_service.logs import (
    ContextFilter,
    JsonFormatter,
    bind_log_context,
    clear_log_context,
    current_log_context,
    log_context,
)


def json_logger() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"test.log_context.{uuid.uuid4().hex}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_lines_logged_inside_a_log_context_carry_its_ids_and_lines_after_it_do_not():
    logger, stream = json_logger()
    with log_context(application_id="a1", correlation_id="c1"):
        logger.info("inside")
    logger.info("after")

    inside, after = lines(stream)
    assert (inside["application_id"], inside["correlation_id"]) == ("a1", "c1")
    assert "application_id" not in after and "correlation_id" not in after


def test_a_field_given_with_the_line_wins_over_the_context():
    logger, stream = json_logger()
    with log_context(application_id="a1", correlation_id="c1"):
        logger.info("explicit", extra={"application_id": "a2"})

    (line,) = lines(stream)
    assert (line["application_id"], line["correlation_id"]) == ("a2", "c1")


def test_empty_values_are_left_out_and_non_strings_are_written_as_text():
    logger, stream = json_logger()
    the_id = uuid.uuid4()
    with log_context(application_id=the_id, correlation_id=None):  # type: ignore[arg-type]
        logger.info("a UUID from a route converter")

    (line,) = lines(stream)
    assert line["application_id"] == str(the_id) and "correlation_id" not in line


def test_bind_adds_to_the_context_until_it_is_cleared():
    clear_log_context()
    bind_log_context(correlation_id="c1")
    bind_log_context(application_id="a1")
    assert dict(current_log_context()) == {"correlation_id": "c1", "application_id": "a1"}
    clear_log_context()
    assert dict(current_log_context()) == {}
