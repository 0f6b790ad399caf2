"""SCB agent: the certifier server, the host client and their command line."""
