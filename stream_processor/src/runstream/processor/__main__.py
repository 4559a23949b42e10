"""``python -m runstream.processor processor|replay ...``: the commands without the CLI group."""

from runstream.processor.cli import main

main()
