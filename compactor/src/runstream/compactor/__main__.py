"""``python -m runstream.compactor``: the same as ``runstream compactor``, logging at INFO."""

import logging

from runstream.compactor.cli import compactor

if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    compactor(prog_name="python -m runstream.compactor")
