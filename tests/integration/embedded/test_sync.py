"""`runstream sync`: an offline log sent to Kafka; a second run changes nothing in the state."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runstream.apps.cli import main
from runstream.contract import Codec, decode_batch, encode_batch
from runstream.contract.state import RunState, fold
from runstream.core.kafka_admin import ensure_topics
from runstream.core.locallog import LogWriter
from runstream.core.logsource import events_folder
from runstream.core.settings import Settings
from runstream.core.source import read_topic
from runstream.processor.synthetic import workload

pytestmark = pytest.mark.integration


def _topic_state(settings: Settings) -> tuple[int, dict[str, RunState]]:
    codec = Codec()
    records = list(read_topic(settings, ensure_topics(settings).events))
    return len(records), fold(decode_batch(codec, r.value) for r in records)


def _sync(offline: Path, settings: Settings, *extra: str) -> str:
    result = CliRunner().invoke(
        main,
        [
            "sync",
            "--from",
            f"file://{offline}",
            "--to",
            str(settings.tracking_uri),
            "--topic-prefix",
            settings.topic_prefix,
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_sync_twice_leaves_the_state_unchanged(tmp_path: Path, kafka_settings: Settings) -> None:
    batches = workload(runs=5, events=3000, seed=2, duplicate_share=0).batches
    offline = Settings.resolve(f"file://{tmp_path}", environ={})
    writer = LogWriter(events_folder(offline) / "w.avro")
    codec = Codec()
    for batch in batches:
        writer.append([(batch.run_id, encode_batch(codec, batch))])
    writer.close()
    ensure_topics(kafka_settings)

    assert f"sent {len(batches)} batches" in _sync(tmp_path, kafka_settings)
    count, first = _topic_state(kafka_settings)
    assert count == len(batches)
    assert first == fold(batches)

    assert "sent 0 batches" in _sync(tmp_path, kafka_settings)
    assert _topic_state(kafka_settings) == (count, first)

    assert f"sent {len(batches)} batches" in _sync(tmp_path, kafka_settings, "--all")
    count_again, again = _topic_state(kafka_settings)
    assert count_again == 2 * len(batches)  # every event twice on the topic ...
    assert again == first  # ... and the state is the same
