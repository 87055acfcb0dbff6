"""Evaluation: run a checkpoint -> results Dataset (docs/RESULTS_SCHEMA.md) + metrics summary."""
from diffpose_viz.evaluation.results import build_results, load_results, validate_results, write_results

__all__ = ["build_results", "load_results", "validate_results", "write_results"]
