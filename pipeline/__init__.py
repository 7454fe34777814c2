"""churn-pipeline: entry points, configuration, data contract, I/O and orchestration."""
