"""The figures' limits, in a module of their own so that the CLI's renderer can read them
without importing torch (``secli --help`` and ``secli report`` stay fast)."""

MAX_PLOTTED_CLASSES = 10  # one tab10 colour each; more is unreadable in one legend
