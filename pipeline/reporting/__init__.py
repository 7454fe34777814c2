"""The retention KPI report and the champion models' backtest shown in it.

Reading order: periods (the calendar months or quarters reported), kpis (the numbers per
period; cohorts and definitions beside it), backtest (the models against what happened),
cards and sections (charts and the cards that hold them), report (the page and its files)."""
