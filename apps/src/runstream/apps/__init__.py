"""Runstream's apps, the top layer: the ``runstream`` CLI, the demo, the embedded pipeline
(:func:`runstream.apps.embedded.process`), ``drain``, ``sync`` and ``check``. They compose the
components; nothing imports them."""
