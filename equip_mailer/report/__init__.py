"""Report: what each quarter's newsletter drew, computed from the store.

``compute`` turns the store's rows into tables with pure functions; ``output`` writes the
same tables as a self-contained HTML page, an Excel workbook, CSVs and a terminal summary.
The HTML template lives in ``templates/``.
"""
