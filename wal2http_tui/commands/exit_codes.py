"""The exit statuses of every command, in one place (the README's Guarantees section lists them)."""

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and something failed (a check, a replay, the engine)
EXIT_CONFIG_ERROR = 2  # bad configuration or usage: nothing was started
