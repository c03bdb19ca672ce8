"""The networks as modules: MBInvRes ops (``ops``), the static net of a spec (``model``), the
elastic block with channel-sliced widths (``elastic``, ``fast_ops``), the mixed op, the three depth
spaces and the supernet of Sec. 3 (``supernet``), and FLOPs (``flops``).  Nothing here knows a
latency table, a search or a run."""
