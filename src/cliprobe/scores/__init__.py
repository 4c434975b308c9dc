"""Cell scores: assemble metric definitions (cliprobe.metrics) into one cell's results, with
bootstrap intervals. One module per task: retrieval, zero-shot, linear probe."""
