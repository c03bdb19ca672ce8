"""What a candidate costs: the lookup table and its keys (``lut``, ``keys``), timing on this
machine (``timing``), building and fitting a table (``build``, ``fit``, ``calibration``), drift of a
table against this machine (``drift``), measured latency of whole nets (``measure``, ``measured``),
and the relaxed latency of Eq. 4/6 over a supernet (``relaxed``)."""
