"""The command-line commands that are more than a few lines: ``run --headless``, dead letters."""
