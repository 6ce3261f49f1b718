"""Timing models side by side: ``entries`` (what to compare), ``session`` (interleaved timing of
prepared steps), ``steps``, ``timing`` (stopwatches, statistics), ``memory``, ``traffic`` (bytes
the blocks move, copy bandwidth, implied passes), ``compare``, ``ranks`` (DDP), ``environment``,
``results`` and ``workflow`` (``profile``, the whole of ``secli profile``)."""
