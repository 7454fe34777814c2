"""Forward-honest modelling: candidates, the walk-forward backtest that judges them, the
calibration fitted on its out-of-time predictions, and the refit that ships."""
