"""SCB console: the Textual admin console."""
