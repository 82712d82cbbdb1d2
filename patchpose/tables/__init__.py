"""Tables 1-3 of the paper, an extended table and the figures, from the evaluated prediction files (no torch).

* ``layout``: the printed words: the paper's action columns, labels, the averaging convention, the marks;
* ``plan``: which prediction files (columns) each table shows, from the baselines and the updater plan;
* ``numbers``: a table's tidy numbers (errors with bootstrap intervals), its CSV writer and reader;
* ``render``: the wide frames, the bold cells, and pandas' Styler writing LaTeX (booktabs) and HTML;
* ``paper``: the paper's own Tables 1-3 (``patchpose/data/paper_tables.csv``) and relative gains beside ours;
* ``build``: one table from its per-frame error files to its CSV, LaTeX and HTML (the ``make_table`` rule);
* ``figures``: the report's figures (matplotlib, Agg): per-action bars, error by rarity decile, qualitative.

The package ``__init__`` imports nothing, so a rule's code digest covers only the modules its script uses.
"""
