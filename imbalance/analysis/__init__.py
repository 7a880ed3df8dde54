"""Results read back from MLflow: episode rows (episodes.py), group summaries (summary.py),
honest statistics (stats.py), the text report (text.py) and the plots (plots.py)."""
