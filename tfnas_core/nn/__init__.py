"""The networks as modules: MBInvRes ops (``ops``), the static net of a spec (``model``), the
elastic block with channel-sliced widths (``elastic``, ``fast_ops``), the mixed op (``mixed_op``),
the three depth spaces of Sec. 3.3 (``depth_spaces``), the supernet of Sec. 3 (``supernet``), and
FLOPs (``flops``).  Nothing here knows a latency table, a search or a run."""
