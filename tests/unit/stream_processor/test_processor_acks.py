"""The processor's consumer counts toward a commit only the acks of messages it folded: faust
acks the messages its stream skips (fetched before a rebalance, read while the flow is
suspended or after the generation changed), and a commit that counted them moved past
messages no worker folded (events missing from run states after kills, in the scale test)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from faust.types import TP, Message

from runstream.core.settings import Settings
from runstream.core.topics import Topics
from runstream.processor.app import ProcessorOptions, create_app


def test_only_acks_of_folded_messages_count_toward_a_commit(tmp_path: Path) -> None:
    settings = Settings.resolve("kafka://127.0.0.1:1", topic_prefix="acks", environ={})
    app = create_app(settings, ProcessorOptions(datadir=tmp_path))  # connects to nothing yet
    events = Topics(settings.topic_prefix).events
    app.topics.add(app.topic(events))  # what the agent subscribes to when it starts
    # its topic acks, as in a started worker (on a thread of its own: a test before this one
    # may leave an event loop running in this thread)
    indexing = threading.Thread(target=lambda: asyncio.run(app.topics._update_indices()))
    indexing.start()
    indexing.join(30)
    assert app.topics.acks_enabled_for(events)
    consumer = app.consumer
    tp = TP(events, 0)

    def message(offset: int, generation: int) -> Message:
        return Message(
            events, 0, offset, 0.0, 0, None, b"run", b"", None, tp=tp, generation_id=generation
        )

    app.consumer_generation_id = 3
    app.flow_control.resume()
    stale = message(5, generation=2)  # fetched before the rebalance, skipped by the stream
    assert consumer.ack(stale) is False and stale.acked
    app.flow_control.suspend()  # a rebalance under way: the stream skips what it reads
    skipped = message(6, generation=3)
    assert consumer.ack(skipped) is False and skipped.acked
    app.flow_control.resume()
    folded = message(7, generation=3)
    assert consumer.ack(folded) is True
    assert list(consumer._acked[tp]) == [7]  # what the next commit is computed from
