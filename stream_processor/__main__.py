"""``python -m stream_processor processor|replay ...``: the commands without the CLI group."""

from stream_processor.cli import main

main()
