"""One module per ``spymaster`` subcommand; each has ``register(subparsers)``."""
