"""Reports over saved runs: the cross-environment comparison table, ratios, roofline, plots and history.

``pytest-tee report`` (``command.py``) reads runs with ``data.load_inputs``, computes everything once in
``model.build_report`` (and ``history.build_history``), and hands the result to ``render`` and ``plots``.
Nothing is imported here, so that ``pytest-tee --help`` stays fast.
"""
