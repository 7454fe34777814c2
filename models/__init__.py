"""Churn and CLV models, their baselines and their evaluation."""
